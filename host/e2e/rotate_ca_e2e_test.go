package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

type caJSON struct {
	Targets []struct {
		Name, Plugin, Status, Message, Gate string
	} `json:"targets"`
	CA struct {
		PhaseBefore string `json:"phase_before"`
		PhaseAfter  string `json:"phase_after"`
		Message     string `json:"message"`
	} `json:"ca_rotation"`
}

// A staged CA rotation on a real PostgreSQL in the mTLS scope, with Vault
// PKI and a client identity, while verify-full clients reconnect in a
// loop: --abort in phase trust puts everything back; a rotation killed
// (SIGKILL) right after the first target of phase trust resumes on the
// next run; --stop-after trust lets the clients take the new bundle; then
// reissue and retire complete — each phase proven live on PostgreSQL (a
// client certificate of the next CA let in during trust, one of the old CA
// refused after retire) — and PostgreSQL serves a certificate of the new
// CA, which Vault now hands out as the trust anchor.
func TestRotateCAStaged(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "postgres", "vaultpki")
	v := testenv.VaultForTest(t)
	pg := testenv.PostgresForTest(t)
	vc := v.Target()["connection"].(map[string]any)
	pgc, _ := json.Marshal(pg.Target()["connection"])
	// PostgreSQL in the mTLS scope: clientcert=verify-full compares the
	// certificate's CN with the role harden logs in as.
	store := filepath.Join(dir, "certs")
	delivered := filepath.Join(dir, "delivered", "loader")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q, client_name: %q}
mtls: {scope: [warehouse-pg]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: %q, ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [%q]}}
  - name: warehouse-pg
    plugin: postgres
    certificate_names: [localhost]
    connection: %s
clients:
  - name: loader
    targets: [warehouse-pg]
    deliver: {dir: %q}
`, store, pg.User, vc["address"], vc["ca_file"], vc["token_file"], pg.User, pgc, delivered)), 0o600)
	lock := filepath.Join(dir, "plugins.lock")
	run := cliRunner(t, pluginDir, lock)
	caRun := func(args ...string) (result, caJSON) {
		t.Helper()
		r := run(append([]string{"rotate", "-f", policy, "--ca", "--yes", "--format", "json"}, args...)...)
		var rep caJSON
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("rotate --ca %v: %d %v\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
		}
		for _, tr := range rep.Targets {
			t.Logf("rotate --ca %v: %s (%s) %s: %s; gate: %s", args, tr.Name, tr.Plugin, tr.Status, tr.Message, tr.Gate)
		}
		t.Logf("rotate --ca %v: %s -> %s: %s", args, rep.CA.PhaseBefore, rep.CA.PhaseAfter, rep.CA.Message)
		return r, rep
	}
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--yes"}, {"rotate", "-f", policy, "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	vcl, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	rootOf := func() []byte {
		sec, err := vcl.Logical().Read("pki/cert/ca")
		if err != nil || sec == nil {
			t.Fatalf("Vault root: %v", err)
		}
		return []byte(sec.Data["certificate"].(string) + "\n")
	}
	oldRoot := rootOf()
	// Clients: verify-full with a root file they re-read on every connect
	// (what a client's truststore holds), and harden's own client
	// certificate (PostgreSQL is in the mTLS scope).
	rootFile := filepath.Join(dir, "client-roots.pem")
	os.WriteFile(rootFile, oldRoot, 0o644)
	password, _ := os.ReadFile(pg.PasswordFile)
	dsn := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=5",
		pg.Host, pg.Port, pg.User, strings.TrimSpace(string(password)), rootFile)
	// The client certificate: harden's, as its store holds it now (read as
	// a consistent pair: the store writes the key, then the certificate).
	clientPair := func() (tls.Certificate, error) {
		var err error
		for range 5 {
			var c tls.Certificate
			if c, err = tls.LoadX509KeyPair(filepath.Join(store, "warehouse-pg", "client.pem"), filepath.Join(store, "warehouse-pg", "client-key.pem")); err == nil {
				return c, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return tls.Certificate{}, err
	}
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
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cfg, err := pgx.ParseConfig(dsn)
			var pair tls.Certificate
			if err == nil {
				pair, err = clientPair()
			}
			if err == nil {
				cfg.TLSConfig.Certificates = []tls.Certificate{pair}
				var conn *pgx.Conn
				if conn, err = pgx.ConnectConfig(ctx, cfg); err == nil {
					err = conn.Ping(ctx)
					conn.Close(ctx)
				}
			}
			cancel()
			if err != nil {
				failed.Add(1)
				failures.Store(err.Error(), true)
			} else {
				ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// 1. Trust, then abort: back to the current CA alone.
	r, rep := caRun("--stop-after", "trust")
	if r.code != 0 || rep.CA.PhaseAfter != "reissue" || !strings.Contains(r.stdout, "a client certificate from the next CA was accepted") {
		t.Fatalf("phase trust: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "trust" {
		t.Fatalf("abort from reissue (nothing re-issued yet): %d\n%s", r.code, r.stdout)
	}
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "none" || !strings.Contains(rep.CA.Message, "aborted") {
		t.Fatalf("abort from trust: %d\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(store, "ca-rotation.json")); !os.IsNotExist(err) {
		t.Errorf("the state file stayed after the abort: %v", err)
	}
	if r := run("plan", "-f", policy, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the abort: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// 2. Killed right after the first target of phase trust: resumes.
	cmd := exec.Command(hardenBin, "rotate", "-f", policy, "--ca", "--yes", "--stop-after", "trust", "--plugin-dir", pluginDir, "--lock-file", lock)
	cmd.Env = append(os.Environ(), "HARDEN_CRASH_AT=host:ca-trust")
	out, err := cmd.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("the crash hook did not kill rotate: %v\n%s", err, out)
	}
	state, err := os.ReadFile(filepath.Join(store, "ca-rotation.json"))
	if err != nil || !bytes.Contains(state, []byte(`"target/warehouse-pg"`)) {
		t.Fatalf("state after the kill: %v\n%s", err, state)
	}
	if r, rep = caRun("--stop-after", "trust"); r.code != 0 || rep.CA.PhaseBefore != "trust" || rep.CA.PhaseAfter != "reissue" {
		t.Fatalf("resume after the kill: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tr := range rep.Targets {
		if tr.Name == "target/warehouse-pg" {
			t.Errorf("the resumed run redid a target the killed run had finished: %+v", tr)
		}
	}
	// The clients take the new bundle (both roots) between the phases.
	var st struct {
		Next string `json:"next_root_pem"`
	}
	json.Unmarshal(mustRead(t, filepath.Join(store, "ca-rotation.json")), &st)
	os.WriteFile(rootFile, append(append([]byte{}, oldRoot...), []byte(st.Next+"\n")...), 0o644)
	if loader := mustRead(t, filepath.Join(delivered, "ca.crt")); !bytes.Contains(loader, []byte(strings.TrimSpace(st.Next))) || !bytes.Contains(loader, bytes.TrimSpace(oldRoot)) {
		t.Error("the delivered client bundle does not carry both roots after phase trust")
	}

	chainsTo := func(rootPEM string) bool {
		certs, err := sdk.ParseCertificatesPEM(mustRead(t, filepath.Join(store, "warehouse-pg", "server.pem")))
		if err != nil || len(certs) == 0 {
			return false
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(rootPEM))
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err = certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
		return err == nil
	}
	// 3. Killed in phase reissue right after PostgreSQL's new leaf was
	// pushed (before its gate): the resumed run gates it and goes on.
	cmd = exec.Command(hardenBin, "rotate", "-f", policy, "--ca", "--yes", "--stop-after", "reissue", "--plugin-dir", pluginDir, "--lock-file", lock)
	cmd.Env = append(os.Environ(), "HARDEN_CRASH_AT=host:rotate-pushed")
	out, err = cmd.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("the crash hook did not kill rotate in phase reissue: %v\n%s", err, out)
	}
	if r, rep = caRun("--stop-after", "reissue"); r.code != 0 || rep.CA.PhaseAfter != "retire" {
		t.Fatalf("resume in phase reissue: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !chainsTo(st.Next) {
		t.Fatal("after phase reissue PostgreSQL's certificate does not chain to the next root")
	}
	// 4. Abort from retire (back to reissue), then from reissue after the
	// leaves moved: the old intermediate signs again and every leaf comes
	// back to the current CA.
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "reissue" {
		t.Fatalf("abort from retire: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "trust" {
		t.Fatalf("abort from reissue: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !chainsTo(string(oldRoot)) || chainsTo(st.Next) {
		t.Fatal("after aborting phase reissue PostgreSQL's certificate does not chain to the current root again")
	}

	// 5. Forward again: reissue and retire.
	r, rep = caRun()
	if r.code != 0 || rep.CA.PhaseAfter != "none" || !strings.Contains(rep.CA.Message, "done") ||
		!strings.Contains(r.stdout, "a client certificate from the current CA was refused") {
		t.Fatalf("phases reissue and retire: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("client connections during the CA rotation: %d ok, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 || ok.Load() == 0 {
		failures.Range(func(k, _ any) bool { t.Logf("client failure: %s", k); return true })
		t.Errorf("clients during the CA rotation: %d ok, %d failed (want 0 failed)", ok.Load(), failed.Load())
	}
	newRoot := rootOf()
	if bytes.Equal(newRoot, oldRoot) || strings.TrimSpace(string(newRoot)) != strings.TrimSpace(st.Next) {
		t.Error("Vault does not hand out the new root after the rotation")
	}
	// PostgreSQL serves a leaf of the new CA; verify passes with it.
	leaf := mustRead(t, filepath.Join(store, "warehouse-pg", "server.pem"))
	certs, err := sdk.ParseCertificatesPEM(leaf)
	if err != nil || len(certs) == 0 {
		t.Fatalf("stored server certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(newRoot)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the server certificate does not chain to the new root: %v", err)
	}
	if r := run("verify", "-f", policy, "--target", "warehouse-pg"); r.code != 0 {
		t.Errorf("verify after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("plan", "-f", policy, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("rotate", "-f", policy, "--yes"); r.code != 0 || strings.Contains(r.stdout, "renewed") {
		t.Errorf("rotate after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if loader := mustRead(t, filepath.Join(delivered, "ca.crt")); bytes.Contains(loader, bytes.TrimSpace(oldRoot)) {
		t.Error("the delivered client bundle still trusts the old root")
	}
}
