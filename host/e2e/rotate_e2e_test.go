package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/testenv"
)

type rotateJSON struct {
	Targets []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Gate    string `json:"gate"`
		Renewed []struct {
			Kind, Reason string
			OldSerial    string `json:"old_serial"`
			NewSerial    string `json:"new_serial"`
		} `json:"renewed"`
		Changes []struct{ Resource string } `json:"changes"`
	} `json:"targets"`
}

// harden rotate against a real PostgreSQL with Vault PKI as the source,
// while clients that hold only the Vault root reconnect in a loop with
// sslmode=verify-full: nothing is due → nothing happens; --force-renew
// issues a new key and certificate, PostgreSQL serves it after a reload,
// the gate sees it in 8 fresh handshakes, verify passes, and not one
// client connection fails; a target with another pending change is
// refused with nothing changed; --dry-run changes nothing.
func TestRotatePostgresFromVaultPKI(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "postgres", "vaultpki")
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"postgres", "vault"}, StateDir: state})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv (CI=true): %v", err)
		}
		t.Skipf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = env.Down() })
	policy := filepath.Join(state, "policy.yaml")
	lock := filepath.Join(dir, "plugins.lock")
	run := cliRunner(t, pluginDir, lock)
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	var ef struct {
		Services struct {
			Postgres struct {
				Host         string `json:"host"`
				Port         int    `json:"port"`
				User         string `json:"user"`
				PasswordFile string `json:"password_file"`
			} `json:"postgres"`
			Vault struct {
				Address   string `json:"address"`
				CAFile    string `json:"ca_file"`
				TokenFile string `json:"token_file"`
			} `json:"vault"`
		} `json:"services"`
	}
	data, _ := os.ReadFile(filepath.Join(state, "env.json"))
	if err := json.Unmarshal(data, &ef); err != nil {
		t.Fatal(err)
	}
	pg := ef.Services.Postgres
	password, _ := os.ReadFile(pg.PasswordFile)
	// The clients trust only Vault's root CA, as a consumer would.
	vi := ef.Services.Vault
	vc, err := (&testenv.Vault{Address: vi.Address, CAFile: vi.CAFile, TokenFile: vi.TokenFile}).Client()
	if err != nil {
		t.Fatal(err)
	}
	root, err := vc.Logical().Read("pki/cert/ca")
	if err != nil || root == nil {
		t.Fatalf("read the Vault root: %v", err)
	}
	rootFile := filepath.Join(dir, "vault-root.pem")
	os.WriteFile(rootFile, []byte(root.Data["certificate"].(string)+"\n"), 0o644)
	dsn := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=5",
		pg.Host, pg.Port, pg.User, strings.TrimSpace(string(password)), rootFile)

	serverPEM := filepath.Join(state, "certs", "warehouse-pg", "server.pem")
	first, _ := os.ReadFile(serverPEM)
	if r := run("rotate", "-f", policy, "--target", "warehouse-pg", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "warehouse-pg (postgres): not due") {
		t.Fatalf("rotate with nothing due: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("rotate", "-f", policy, "--target", "warehouse-pg", "--dry-run", "--force-renew"); r.code != 0 || !strings.Contains(r.stdout, "would renew") {
		t.Fatalf("dry run: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := os.ReadFile(serverPEM); !bytes.Equal(again, first) {
		t.Fatal("rotate without anything due, or a dry run, changed the stored certificate")
	}

	// Clients reconnect in a loop during the rotation.
	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				conn, err := pgx.Connect(ctx, dsn)
				if err == nil {
					var one int
					err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
					conn.Close(ctx)
				}
				cancel()
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	r := run("rotate", "-f", policy, "--target", "warehouse-pg", "--yes", "--force-renew", "--format", "json")
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("rotation took %v; client connections during it: %d ok, %d failed", took, ok.Load(), failed.Load())
	if r.code != 0 {
		t.Fatalf("rotate --force-renew: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep rotateJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	tr := rep.Targets[0]
	if tr.Status != "renewed" || len(tr.Renewed) != 1 || tr.Renewed[0].Kind != "server" || tr.Renewed[0].NewSerial == "" ||
		tr.Renewed[0].NewSerial == tr.Renewed[0].OldSerial || !strings.Contains(tr.Gate, "8 fresh handshake(s) on 1 listener(s) served the expected certificate") {
		t.Errorf("rotation report: %+v\n%s", tr, r.stdout)
	}
	t.Logf("gate: %s", tr.Gate)
	if failed.Load() > 0 || ok.Load() == 0 {
		failures.Range(func(k, _ any) bool { t.Logf("client failure: %s", k); return true })
		t.Errorf("clients during the rotation: %d ok, %d failed (want 0 failed)", ok.Load(), failed.Load())
	}
	renewed, _ := os.ReadFile(serverPEM)
	prev, _ := os.ReadFile(filepath.Join(state, "certs", "warehouse-pg", "server.prev.pem"))
	if bytes.Equal(renewed, first) || !bytes.Equal(prev, first) {
		t.Error("the store does not hold the renewed certificate with the replaced one as previous")
	}
	if r := run("verify", "-f", policy, "--target", "warehouse-pg"); r.code != 0 {
		t.Errorf("verify after rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Idempotent: a second run renews nothing.
	if r := run("rotate", "-f", policy, "--target", "warehouse-pg", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "not due") {
		t.Errorf("second rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := os.ReadFile(serverPEM); !bytes.Equal(again, renewed) {
		t.Error("the second rotate re-issued")
	}

	// Another pending change: rotate refuses and changes nothing.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER SYSTEM SET password_encryption = 'md5'", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	time.Sleep(300 * time.Millisecond)
	r = run("rotate", "-f", policy, "--target", "warehouse-pg", "--yes", "--force-renew")
	if r.code != 2 || !strings.Contains(r.stdout, "refused") || !strings.Contains(r.stdout, "pending change(s) besides certificate material") || !strings.Contains(r.stdout, "password_encryption") {
		t.Errorf("rotate with another pending change: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := os.ReadFile(serverPEM); !bytes.Equal(again, renewed) {
		t.Error("a refused rotate changed the stored certificate")
	}
	if token, _ := os.ReadFile(filepath.Join(state, "vault-token")); len(token) > 0 && strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(token))) {
		t.Error("the Vault token appears in rotate's output")
	}
}
