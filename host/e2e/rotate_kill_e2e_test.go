package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/testenv"
)

// The real harden binary SIGKILLed in the middle of `harden rotate
// --force-renew --yes` (HARDEN_CRASH_AT): right after the store took the
// new pair and the pending marker was written (host:rotate-staged, the
// service still serves the old certificate), and right after the push
// (host:rotate-pushed, the service serves the new one, its gate never
// ran). Each time the next plain `harden rotate --yes` — nothing forced,
// nothing due — finds the marker, pushes and gates the staged pair without
// issuing another: the service ends serving the store's current
// certificate, the gate passed, the marker is gone and a third run is not
// due. When the resumed gate fails (the reload no longer takes), the
// previous certificate is pushed back and gated, the store follows what is
// served, and harden exits 3.
func TestRotateKilledMidwayResumes(t *testing.T) {
	dir := t.TempDir()
	pluginDir, serverBin := buildTLSFileKit(t, dir)
	v := testenv.VaultForTest(t)
	vc := v.Target()["connection"].(map[string]any)
	lock := filepath.Join(dir, "plugins.lock")
	harden := func(t *testing.T, crashAt string, args ...string) (result, *exec.ExitError) {
		t.Helper()
		c := exec.Command(hardenBin, append(args, "--plugin-dir", pluginDir, "--lock-file", lock)...)
		c.Env = os.Environ()
		if crashAt != "" {
			c.Env = append(c.Env, applykit.CrashEnv+"="+crashAt)
		}
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code := 0
		if ee != nil {
			code = ee.ExitCode()
		}
		return result{code, out.String(), errb.String()}, ee
	}
	run := func(t *testing.T, args ...string) result {
		t.Helper()
		r, _ := harden(t, "", args...)
		return r
	}
	if r := run(t, "plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock: %d\n%s", r.code, r.stderr)
	}

	vaultApplied := false
	newSvc := func(t *testing.T) *rkSvc {
		t.Helper()
		s := &rkSvc{dir: t.TempDir()}
		if err := os.MkdirAll(filepath.Join(s.dir, "boot"), 0o700); err != nil {
			t.Fatal(err)
		}
		boot, err := testenv.NewCA(filepath.Join(s.dir, "boot"))
		if err != nil {
			t.Fatal(err)
		}
		bc, bk, err := boot.Issue("svc", false, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		s.certFile = filepath.Join(s.dir, "svc.pem")
		keyFile, pidFile := filepath.Join(s.dir, "svc-key.pem"), filepath.Join(s.dir, "svc.pid")
		for _, f := range [][2]string{{bc, s.certFile}, {bk, keyFile}} {
			if err := os.WriteFile(f[1], mustRead(t, f[0]), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		srv := exec.Command(serverBin, "-cert", s.certFile, "-key", keyFile, "-pidfile", pidFile)
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
		s.addr = strings.TrimSpace(addr)
		s.store = filepath.Join(s.dir, "certs", "svc")
		s.hup = fmt.Sprintf(`["sh", "-c", "kill -HUP $(cat %s)"]`, pidFile)
		s.policy = func(reload string) string {
			p := filepath.Join(s.dir, "policy.yaml")
			if err := os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: harden/v1
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
`, filepath.Join(s.dir, "certs"), vc["address"], vc["ca_file"], vc["token_file"], s.addr, s.certFile, keyFile, reload)), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		pol := s.policy(s.hup)
		if !vaultApplied {
			if r := run(t, "apply", "-f", pol, "--target", "vault", "--yes"); r.code != 0 {
				t.Fatalf("apply vault: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			vaultApplied = true
		}
		if r := run(t, "apply", "-f", pol, "--target", "svc", "--yes"); r.code != 0 {
			t.Fatalf("apply svc: %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if !bytes.Equal(s.served(t), rkLeaf(t, mustRead(t, filepath.Join(s.store, "server.pem")))) {
			t.Fatal("after apply the service does not serve the issued certificate")
		}
		return s
	}
	// kill runs the forced rotation with the crash hook at phase and
	// checks harden died of SIGKILL there, taking its plugins with it,
	// and left the store staged: cur=new, prev=what was served, the
	// marker naming the new serial. It returns the old and new chains.
	kill := func(t *testing.T, s *rkSvc, phase string) (old, next []byte) {
		t.Helper()
		old = mustRead(t, filepath.Join(s.store, "server.pem"))
		r, ee := harden(t, "host:"+phase, "rotate", "-f", s.policy(s.hup), "--target", "svc", "--force-renew", "--yes")
		if ee == nil {
			t.Fatalf("rotate with %s=host:%s was not killed: %d\n%s\n%s", applykit.CrashEnv, phase, r.code, r.stdout, r.stderr)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("rotate ended with %v, want SIGKILL at %s\n%s\n%s", ee, phase, r.stdout, r.stderr)
		}
		for _, p := range []string{"tlsfile", "vaultpki"} {
			waitNoPlugin(t, filepath.Join(pluginDir, "harden-plugin-"+p), 10*time.Second)
		}
		next = mustRead(t, filepath.Join(s.store, "server.pem"))
		if _, err := tls.X509KeyPair(next, mustRead(t, filepath.Join(s.store, "server-key.pem"))); err != nil || bytes.Equal(next, old) {
			t.Fatalf("after the kill the store's current pair is not a new valid pair (%v)", err)
		}
		if prev, _ := os.ReadFile(filepath.Join(s.store, "server.prev.pem")); !bytes.Equal(prev, old) {
			t.Error("after the kill the store's previous certificate is not the one that was served")
		}
		marker, err := os.ReadFile(filepath.Join(s.store, "server.pending"))
		if err != nil || strings.TrimSpace(string(marker)) != rkSerial(t, next) {
			t.Errorf("pending marker %q (%v), want the new serial %s", marker, err, rkSerial(t, next))
		}
		return old, next
	}
	// resume runs the next rotate (JSON) and returns its one target.
	resume := func(t *testing.T, s *rkSvc, policy string, extra ...string) (result, rkTarget) {
		t.Helper()
		r := run(t, append([]string{"rotate", "-f", policy, "--target", "svc", "--yes", "--format", "json"}, extra...)...)
		var rep struct{ Targets []rkTarget }
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Targets) != 1 {
			t.Fatalf("rotate output (%v): %d\n%s\n%s", err, r.code, r.stdout, r.stderr)
		}
		t.Logf("%s: %s %s", rep.Targets[0].Status, rep.Targets[0].Message, rep.Targets[0].Gate)
		return r, rep.Targets[0]
	}

	for _, phase := range []string{"rotate-staged", "rotate-pushed"} {
		t.Run(phase, func(t *testing.T) {
			s := newSvc(t)
			old, next := kill(t, s, phase)
			// What the kill left live: before the push the old pair, after
			// it the new one (its gate never ran).
			want := old
			if phase == "rotate-pushed" {
				want = next
			}
			if !bytes.Equal(s.served(t), rkLeaf(t, want)) || !bytes.Equal(mustRead(t, s.certFile), want) {
				t.Fatalf("after the kill at %s the service does not serve (and hold) the expected pair", phase)
			}
			r, tr := resume(t, s, s.policy(s.hup))
			if r.code != 0 || tr.Status != "renewed" || !strings.Contains(tr.Gate, "fresh handshake(s) on 1 listener(s) served the expected certificate") {
				t.Fatalf("the resuming rotate: %d %+v\n%s", r.code, tr, r.stderr)
			}
			if len(tr.Renewed) != 1 || tr.Renewed[0].Reason != "resuming an interrupted rotation" || tr.Renewed[0].NewSerial != rkSerial(t, next) {
				t.Errorf("renewed %+v, want the staged serial %s resumed (nothing new issued)", tr.Renewed, rkSerial(t, next))
			}
			cur := mustRead(t, filepath.Join(s.store, "server.pem"))
			if !bytes.Equal(cur, next) || !bytes.Equal(s.served(t), rkLeaf(t, cur)) || !bytes.Equal(mustRead(t, s.certFile), cur) {
				t.Error("the service does not serve the store's current (staged) certificate")
			}
			if _, err := os.Stat(filepath.Join(s.store, "server.pending")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the pending marker is left after the gate passed (%v)", err)
			}
			if r := run(t, "rotate", "-f", s.policy(s.hup), "--target", "svc", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "svc (tlsfile): not due") {
				t.Errorf("third rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	t.Run("resumed gate fails", func(t *testing.T) {
		s := newSvc(t)
		old, next := kill(t, s, "rotate-staged")
		// The reload no longer takes: the resumed push writes the files,
		// the service keeps serving the old certificate.
		r, tr := resume(t, s, s.policy(`["true"]`), "--gate-timeout", "2s")
		if r.code != 3 || tr.Status != "rolled_back" || !strings.Contains(tr.Message, "verify gate failed") ||
			!strings.Contains(tr.Message, "not the expected serial "+rkSerial(t, next)) || !strings.Contains(tr.Message, "(serial "+rkSerial(t, old)+") is served again") {
			t.Fatalf("the resumed rotate with a reload that does not take: %d %+v\n%s", r.code, tr, r.stderr)
		}
		if len(tr.Renewed) != 1 || tr.Renewed[0].Reason != "resuming an interrupted rotation" || tr.Renewed[0].NewSerial != rkSerial(t, next) {
			t.Errorf("renewed %+v, want the staged serial resumed", tr.Renewed)
		}
		cur := mustRead(t, filepath.Join(s.store, "server.pem"))
		if !bytes.Equal(cur, old) || !bytes.Equal(s.served(t), rkLeaf(t, cur)) || !bytes.Equal(mustRead(t, s.certFile), old) {
			t.Error("after the rollback the store, the service and its files do not all hold the old certificate")
		}
		if _, err := os.Stat(filepath.Join(s.store, "server.pending")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the pending marker is left after the rollback (%v)", err)
		}
	})
}

// rkTarget is one target of rotate's JSON report.
type rkTarget struct {
	Status, Message, Gate string
	Renewed               []struct {
		Kind, Reason string
		NewSerial    string `json:"new_serial"`
	}
}

// rkSvc is one TLS service reloading its files on SIGHUP, with its own
// policy and certificate store, applied from Vault PKI.
type rkSvc struct {
	dir, addr, certFile, store string
	// policy writes the policy with this reload_command and returns it.
	policy func(reload string) string
	hup    string
}

// served is the leaf the service presents now.
func (s *rkSvc) served(t *testing.T) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

func rkCert(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(chain)
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rkLeaf(t *testing.T, chain []byte) []byte { t.Helper(); return rkCert(t, chain).Raw }

func rkSerial(t *testing.T, chain []byte) string { t.Helper(); return rotate.Serial(rkCert(t, chain)) }
