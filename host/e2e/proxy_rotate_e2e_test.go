package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/testenv"
)

// harden rotate on an nginx route with Vault PKI as the source: the
// proxy plugin's inventory (fresh handshakes on the front) is the verify
// gate. After apply, --force-renew issues a new front certificate, the
// plan holds only certificate material (the files and their reload),
// nginx reloads, the gate sees the new serial in fresh handshakes, verify
// passes, and clients that trust only Vault's root and connect in a loop
// through the front meanwhile never fail.
func TestRotateNginxProxyFromVaultPKI(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "proxy", "service", "vaultpki")
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"vault", "ingest", "nginx"}, StateDir: state})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv (CI=true): %v", err)
		}
		t.Skipf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = env.Down() })
	policy := filepath.Join(state, "policy.yaml")
	run := cliRunner(t, pluginDir, filepath.Join(dir, "plugins.lock"))
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--target", "ingest-proxy", "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	var ef struct {
		Services struct {
			Nginx struct {
				Front string `json:"front"`
			} `json:"nginx"`
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
	front := strings.TrimPrefix(ef.Services.Nginx.Front, "https://")
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
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(root.Data["certificate"].(string))) {
		t.Fatal("no certificate in Vault's root")
	}
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", front, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("the front: %v", err)
		}
		defer c.Close()
		return fmt.Sprintf("%x", c.ConnectionState().PeerCertificates[0].SerialNumber)
	}
	first := served()

	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", front, &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err == nil {
				c.Close()
				ok.Add(1)
			} else {
				failed.Add(1)
				failures.Store(err.Error(), true)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r := run("rotate", "-f", policy, "--target", "ingest-proxy", "--yes", "--force-renew", "--format", "json")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("rotate --force-renew: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep rotateJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(rep.Targets) != 1 {
		t.Fatalf("rotation report: %+v", rep)
	}
	tr := rep.Targets[0]
	if tr.Status != "renewed" || len(tr.Renewed) != 1 || tr.Renewed[0].Kind != "server" || tr.Renewed[0].NewSerial == tr.Renewed[0].OldSerial ||
		!strings.Contains(tr.Gate, "served the expected certificate") {
		t.Errorf("rotation report: %+v\n%s", tr, r.stdout)
	}
	t.Logf("gate: %s; client handshakes during the rotation: %d ok, %d failed", tr.Gate, ok.Load(), failed.Load())
	if now := served(); now == first {
		t.Errorf("the front still serves serial %s after the rotation", first)
	}
	if failed.Load() > 0 || ok.Load() == 0 {
		failures.Range(func(k, _ any) bool { t.Logf("client failure: %s", k); return true })
		t.Errorf("clients during the rotation: %d ok, %d failed (want 0 failed)", ok.Load(), failed.Load())
	}
	if r := run("verify", "-f", policy, "--target", "ingest-proxy"); r.code != 0 {
		t.Errorf("verify after rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
