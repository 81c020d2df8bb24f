package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineExampleValidates: the shipped examples/pipeline/policy.yaml
// is accepted as it stands by harden's and every plugin's schema (its
// secrets are environment references, so no file need exist), and a
// broken copy is refused at its line — the example is a policy, not prose.
func TestPipelineExampleValidates(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "vaultpki", "service", "proxy", "kafka", "postgres", "objectstore")
	run := cliRunner(t, pluginDir, filepath.Join(dir, "plugins.lock"))
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock: %d %s", r.code, r.stderr)
	}
	example, err := filepath.Abs("../../examples/pipeline/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := run("policy", "validate", "-f", example)
	if r.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"7 targets", "vault (vaultpki)", "ingest (service)", "ingest-proxy (proxy)", "events (kafka)", "warehouse-pg (postgres)", "lake (objectstore)", "lake-proxy (proxy)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q: %s", want, r.stdout)
		}
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "policy.yaml")
	os.WriteFile(broken, []byte(strings.Replace(string(data), "protocol: https", "protocol: gopher", 1)), 0o644)
	if r := run("policy", "validate", "-f", broken); r.code == 0 || !strings.Contains(r.stderr, "policy.yaml:") || !strings.Contains(r.stderr, "protocol") {
		t.Errorf("broken copy: exit %d %s", r.code, r.stderr)
	}
}
