package e2e

import (
	"os"

	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
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
	// The shipped rendered client configurations are what harden renders
	// for the example's clients today.
	out := filepath.Join(dir, "rendered")
	if r := run("render", "-f", example, "--client", "spark-etl", "--client", "reporting", "--out", out); r.code != 0 {
		t.Fatalf("render --client: %d %s", r.code, r.stderr)
	}
	shipped := "../../examples/pipeline/rendered"
	n := 0
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		got, _ := os.ReadFile(p)
		want, err := os.ReadFile(filepath.Join(shipped, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("examples/pipeline/rendered/%s differs from what harden renders now (re-run harden render -f examples/pipeline/policy.yaml --client spark-etl --client reporting --out examples/pipeline/rendered): %v", rel, err)
		}
		n++
		return nil
	})
	if n != 5 {
		t.Errorf("render --client wrote %d files, want 5", n)
	}
	for _, want := range []string{"spark-etl/events/spark-options.properties", "spark-etl/events/client.properties", "reporting/warehouse-pg/libpq.conf", "reporting/warehouse-pg/jdbc.url"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("render --client: %s missing", want)
		}
	}
	if r := run("render", "-f", example, "--client", "nobody"); r.code != cli.ExitConfig || !strings.Contains(r.stderr, "nobody") {
		t.Errorf("unknown client: %d %s", r.code, r.stderr)
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
