package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/testenv"
)

// Vault as the certificate source, end to end through the CLI and real
// plugin processes: on a fresh Vault verify of PostgreSQL refuses to issue
// (verify never issues) → apply the vault target (CA, roles) → apply all:
// harden makes PostgreSQL's key, Vault signs the CSR, PostgreSQL serves the
// Vault-issued certificate → verify passes with the Vault root as trust →
// a second apply issues nothing and changes nothing.
func TestVaultPKISourceEndToEnd(t *testing.T) {
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
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	// Before: verify runs, with nothing to trust yet: the TLS checks fail
	// and the SQL checks cannot log in over an untrusted certificate. The
	// issuer's error surfaces (the target is an error with its reason) and
	// no trust check is skipped for want of a CA.
	if r := run("verify", "-f", policy, "--target", "warehouse-pg"); r.code != 3 || !strings.Contains(r.stdout+r.stderr, "no CA bundle") ||
		!strings.Contains(r.stderr, "could not provide the policy CA") || !strings.Contains(r.stderr, "run harden apply --target vault first") ||
		strings.Contains(r.stdout, "SKIP") {
		t.Errorf("verify before Vault has a CA: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("plan", "-f", policy, "--target", "warehouse-pg"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "run harden apply --target vault first") {
		t.Errorf("plan before Vault has a CA: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("apply", "-f", policy, "--target", "vault", "--yes"); r.code != 0 {
		t.Fatalf("apply vault: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// verify never issues: with a CA but no certificate yet it runs and
	// stores nothing.
	if r := run("verify", "-f", policy, "--target", "warehouse-pg"); r.code == 0 {
		t.Errorf("verify with a CA but no certificate issued yet passed: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "certs", "warehouse-pg")); !os.IsNotExist(err) {
		t.Errorf("verify issued a certificate: %v", err)
	}
	if r := run("apply", "-f", policy, "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	keyFile := filepath.Join(state, "certs", "warehouse-pg", "server-key.pem")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("issued key %s: %v %v", keyFile, err, fi)
	}
	firstCert, _ := os.ReadFile(filepath.Join(state, "certs", "warehouse-pg", "server.pem"))
	r := run("verify", "-f", policy, "--target", "warehouse-pg", "--format", "json")
	if r.code != 0 {
		t.Fatalf("verify after apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Targets []struct {
			Checks []struct{ ID, Status, Evidence string } `json:"checks"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	trusted := false
	for _, c := range rep.Targets[0].Checks {
		if c.ID == "tls.certificate.trusted" && c.Status == "pass" && strings.Contains(c.Evidence, "harden vault intermediate CA") {
			trusted = true
		}
	}
	if !trusted {
		t.Errorf("PostgreSQL does not serve a Vault-issued certificate trusted through the Vault root:\n%s", r.stdout)
	}
	// Vault's inventory unites what it stored with what the policy's
	// endpoints serve.
	if r := run("verify", "-f", policy, "--target", "vault", "--format", "json"); !strings.Contains(r.stdout, "served by 1 endpoint(s) of the policy") {
		t.Errorf("vault inventory does not include PostgreSQL's served certificate:\n%s", r.stdout)
	}
	if r := run("apply", "-f", policy, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
		t.Errorf("second apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(state, "certs", "warehouse-pg", "server.pem")); string(again) != string(firstCert) {
		t.Errorf("the second apply re-issued the certificate")
	}
	token, _ := os.ReadFile(filepath.Join(state, "vault-token"))
	if len(token) > 0 && strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(token))) {
		t.Errorf("the Vault token appears in harden's output")
	}
}
