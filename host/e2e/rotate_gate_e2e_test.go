package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/testenv"
)

// The verify gate on its own: a TLS service that reloads its certificate
// files on SIGHUP (a real process), behind a plugin that trusts its reload
// command and confirms nothing. With a working reload the rotation passes
// the gate; with a reload that does not take (reload_command: [true]) the
// gate sees the old serial in every handshake, harden puts the previous
// material back, checks it is served, restores the store and exits 3 with
// the evidence; a stopped service is refused before anything changes.
func TestRotateGateRollsBackAReloadThatDoesNotTake(t *testing.T) {
	dir := t.TempDir()
	pluginDir, serverBin := buildTLSFileKit(t, dir)
	v := testenv.VaultForTest(t)
	// The service starts on a bootstrap certificate of another CA.
	os.MkdirAll(filepath.Join(dir, "boot"), 0o700)
	boot, err := testenv.NewCA(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	bc, bk, err := boot.Issue("svc", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pidFile := filepath.Join(dir, "svc.pem"), filepath.Join(dir, "svc-key.pem"), filepath.Join(dir, "svc.pid")
	for _, f := range [][2]string{{bc, certFile}, {bk, keyFile}} {
		data, _ := os.ReadFile(f[0])
		os.WriteFile(f[1], data, 0o600)
	}
	srv := exec.Command(serverBin, "-cert", certFile, "-key", keyFile, "-pidfile", pidFile)
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr = strings.TrimSpace(addr)
	vc := v.Target()["connection"].(map[string]any)
	writePolicy := func(reload string) string {
		p := filepath.Join(dir, "policy.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: %q, ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [harden-admin]}}
  - name: svc
    plugin: tlsfile
    connection: {address: %q, cert_file: %q, key_file: %q, reload_command: %s}
`, filepath.Join(dir, "certs"), vc["address"], vc["ca_file"], vc["token_file"], addr, certFile, keyFile, reload)), 0o600)
		return p
	}
	hup := fmt.Sprintf(`["sh", "-c", "kill -HUP $(cat %s)"]`, pidFile)
	policy := writePolicy(hup)
	lock := filepath.Join(dir, "plugins.lock")
	run := func(args ...string) result {
		t.Helper()
		var out, errb strings.Builder
		io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv}
		code := cli.Run(context.Background(), append(append([]string{"harden"}, args...), "--plugin-dir", pluginDir, "--lock-file", lock), io)
		return result{code, out.String(), errb.String()}
	}
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--target", "svc", "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	stored := filepath.Join(dir, "certs", "svc", "server.pem")
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	leafOf := func(file string) []byte {
		data, _ := os.ReadFile(file)
		pair, err := tls.X509KeyPair(data, mustRead(t, strings.TrimSuffix(file, ".pem")+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return pair.Certificate[0]
	}
	if !bytes.Equal(served(), leafOf(stored)) {
		t.Fatal("after apply the service does not serve the issued certificate")
	}
	// A reload that takes: renewed behind the gate.
	r := run("rotate", "-f", policy, "--target", "svc", "--yes", "--force-renew", "--gate-handshakes", "5")
	if r.code != 0 || !strings.Contains(r.stdout, "svc (tlsfile): renewed") || !strings.Contains(r.stdout, "gate: 5 fresh handshake(s) on 1 listener(s) served the expected certificate") {
		t.Fatalf("rotate with a working reload: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	good := leafOf(stored)
	if !bytes.Equal(served(), good) {
		t.Fatal("the renewed certificate is not served")
	}
	// A reload that does not take.
	policy = writePolicy(`["true"]`)
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = run("rotate", "-f", policy, "--target", "svc", "--yes", "--force-renew", "--gate-timeout", "2s", "--format", "json")
	var rep rotateJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
	}
	tr := rep.Targets[0]
	t.Logf("rolled back: %s", tr.Message)
	if r.code != 3 || tr.Status != "rolled_back" || !strings.Contains(tr.Message, "verify gate failed") ||
		!strings.Contains(tr.Message, "not the expected serial") || !strings.Contains(tr.Message, "is served again") || len(tr.Renewed) != 1 {
		t.Errorf("rotate with a reload that does not take: %d %+v\n%s", r.code, tr, r.stderr)
	}
	if !bytes.Equal(leafOf(stored), good) || !bytes.Equal(served(), good) {
		t.Error("after the rollback the store or the service does not hold the previous certificate")
	}
	if cur, _ := os.ReadFile(certFile); !bytes.Equal(cur, mustRead(t, stored)) {
		t.Error("the service's certificate file is not the previous one after the rollback")
	}
	// The service is down: nothing is changed, nothing issued.
	policy = writePolicy(hup)
	srv.Process.Kill()
	srv.Wait()
	r = run("rotate", "-f", policy, "--target", "svc", "--yes", "--force-renew")
	if r.code != 3 || !strings.Contains(r.stdout, "cannot tell what it serves") || !strings.Contains(r.stdout, "nothing was changed") {
		t.Errorf("rotate with the service down: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !bytes.Equal(leafOf(stored), good) {
		t.Error("a refused rotation changed the store")
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
