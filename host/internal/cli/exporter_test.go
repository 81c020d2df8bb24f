package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The exporter reads the policy before it binds --listen and logs
// "serving": a missing or invalid policy, or a --target the policy does not
// have, ends it with exit 1 naming the file and without a serving line. A
// policy that loads gets past that check to the bind and the serving line
// (the first run then fails here: no plugin is installed).
func TestExporterChecksThePolicyBeforeServing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: harden/v1\nprofile: intermediate\ntargets:\n  - name: cache\n    plugin: redis\n    connection: {address: 127.0.0.1:6379}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: harden/v1\ntargets: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nonexist.yaml")
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	exporter := func(args ...string) (int, string) {
		t.Helper()
		code, _, stderr := runCLI(t, "", nil, append([]string{"exporter", "--listen", "127.0.0.1:0", "--interval", "1h",
			"--plugin-dir", plugins, "--allow-unlocked"}, args...)...)
		return code, stderr
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", missing}, "nonexist.yaml"},
		{[]string{"-f", bad}, "bad.yaml"},
		{[]string{"-f", good, "--target", "nope"}, `--target "nope": no such target in ` + good},
	} {
		code, stderr := exporter(c.args...)
		if code != ExitConfig || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "serving") {
			t.Errorf("exporter %v: exit %d, want %d saying %q and no serving line:\n%s", c.args, code, ExitConfig, c.want, stderr)
		}
	}

	code, stderr := exporter("-f", good)
	serving := strings.Index(stderr, "harden exporter: serving http://127.0.0.1:")
	if code == 0 || serving < 0 || !strings.Contains(stderr[serving:], "redis") {
		t.Errorf("a policy that loads: exit %d, want the serving line, then the first run's failure naming the plugin:\n%s", code, stderr)
	}
}
