package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/testenv"
)

// serviceFixture runs the harden binary itself (a child process, as an
// operator runs it) with the service plugin built from plugins/service.
type serviceFixture struct {
	t                 *testing.T
	dir, plugins, lck string
}

func (f *serviceFixture) harden(args ...string) result {
	f.t.Helper()
	cmd := exec.Command(hardenBin, append(args, "--plugin-dir", f.plugins, "--lock-file", f.lck)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func (f *serviceFixture) policy(name, address string, ing *testenv.Ingest) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name+".yaml")
	doc := fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: files
  files: {ca_file: %q}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
targets:
  - name: ingest
    plugin: service
    connection: {address: %q, protocol: https, server_name: localhost, plaintext_addresses: []}
`, ing.CAFile, address)
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// A policy with a verify-only service target through the real harden
// binary: validate accepts it, verify passes every check of the ingest
// API, plan and apply have nothing to do (not an error), and the ingest
// API's plaintext port given as the address is a target error naming it.
func TestServiceTargetEndToEnd(t *testing.T) {
	f := &serviceFixture{t: t, dir: t.TempDir()}
	f.plugins, f.lck = filepath.Join(f.dir, "plugins"), filepath.Join(f.dir, "plugins.lock")
	buildPlugins(t, f.plugins, "service")
	if r := f.harden("plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock: %d %s", r.code, r.stderr)
	}
	ing := testenv.IngestForTest(t, "")
	pol := f.policy("policy", ing.TLSAddress, ing)
	if r := f.harden("policy", "validate", "-f", pol); r.code != 0 || !strings.Contains(r.stdout, "ingest (service)") {
		t.Fatalf("validate: %d %s %s", r.code, r.stdout, r.stderr)
	}

	r := f.harden("verify", "-f", pol, "--format", "json")
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Targets []struct {
			Name, Status string
			Checks       []struct{ ID, Status, Subject string }
			Endpoints    []struct{ Name, Address string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, r.stdout)
	}
	if len(rep.Targets) != 1 || len(rep.Targets[0].Endpoints) != 1 || rep.Targets[0].Endpoints[0].Address != ing.TLSAddress {
		t.Fatalf("report: %+v", rep)
	}
	got := map[string]string{}
	for _, c := range rep.Targets[0].Checks {
		got[c.ID] = c.Status
	}
	for _, id := range []string{"tls.enabled", "tls.plaintext.refused", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
		"tls.certificate.trusted", "tls.certificate.lifetime", "http.hsts", "http.content_type_options"} {
		if got[id] != "pass" {
			t.Errorf("%s = %q, want pass (%v)", id, got[id], got)
		}
	}

	if r := f.harden("plan", "-f", pol, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan: exit %d (want 0: nothing to change)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := f.harden("apply", "-f", pol, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
		t.Errorf("apply: exit %d (want 0, nothing to apply)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := f.harden("render", "-f", pol); r.code != 0 || !strings.Contains(r.stdout, "renders no configuration files") {
		t.Errorf("render: exit %d (want 0 with a warning: nothing to render)\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	bad := f.policy("plaintext", ing.PlaintextAddress, ing)
	r = f.harden("verify", "-f", bad)
	if r.code != 3 || !strings.Contains(r.stdout+r.stderr, "target ingest: "+ing.PlaintextAddress+" (connection.address) speaks no TLS") {
		t.Errorf("verify of the plaintext port: exit %d (want 3)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "PASS") {
		t.Errorf("a check passed on a plaintext port:\n%s", r.stdout)
	}
}

// Under certificates.source vault-pki a verify-only target gets no server
// certificate (harden deploys none to it): apply has nothing to do for it
// and stores nothing, rotate skips it, and verify judges it against its
// own connection.ca_file.
func TestServiceTargetUnderVaultPKI(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "service", "vaultpki")
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"vault", "ingest"}, StateDir: state})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv (CI=true): %v", err)
		}
		t.Skipf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = env.Down() })
	policy := filepath.Join(state, "policy.yaml")
	run := cliRunner(t, pluginDir, filepath.Join(dir, "plugins.lock"))
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	if r := run("apply", "-f", policy, "--target", "vault", "--yes"); r.code != 0 {
		t.Fatalf("apply vault: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("apply", "-f", policy, "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "certs", "ingest", "server.pem")); !os.IsNotExist(err) {
		t.Errorf("a server certificate was issued for the verify-only target: %v", err)
	}
	if r := run("rotate", "-f", policy, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "verify only") {
		t.Errorf("rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("verify", "-f", policy, "--target", "ingest"); r.code != 0 {
		t.Errorf("verify ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var ef struct {
		Services struct {
			Ingest struct {
				TLSAddress string `json:"tls_address"`
			} `json:"ingest"`
		} `json:"services"`
	}
	if data, err := os.ReadFile(filepath.Join(state, "env.json")); err != nil || json.Unmarshal(data, &ef) != nil || ef.Services.Ingest.TLSAddress == "" {
		t.Fatalf("env.json: %v", err)
	}
	if r := run("inventory", "-f", policy, "--target", "ingest"); r.code != 0 || !strings.Contains(r.stdout, ef.Services.Ingest.TLSAddress) {
		t.Errorf("inventory: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
