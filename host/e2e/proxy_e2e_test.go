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

// The nginx route of the ingest API end to end through the CLI and real
// plugin processes (the proxy and service plugins): testenv's "before"
// nginx fails verify on the front's TLS and HSTS, the plaintext hop and
// the missing decoy proof; plan lists the files and the reload; apply
// makes every check of the ingest-proxy target pass; a second apply has
// nothing to do; the whole policy (the ingest API's own target too) is
// green.
func TestProxyNginxEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "proxy", "service")
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"ingest", "nginx"}, StateDir: state})
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
	if r := run("policy", "validate", "-f", policy); r.code != 0 {
		t.Fatalf("policy validate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	statuses := func(args ...string) (int, map[string]string, string) {
		t.Helper()
		r := run(append([]string{"verify", "-f", policy, "--format", "json"}, args...)...)
		var rep struct {
			Targets []struct {
				Name   string                                           `json:"name"`
				Checks []struct{ ID, Status, Subject, Evidence string } `json:"checks"`
			} `json:"targets"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("verify %v: %d %v\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
		}
		out := map[string]string{}
		for _, tg := range rep.Targets {
			for _, c := range tg.Checks {
				k := tg.Name + " " + c.ID
				if strings.HasSuffix(c.Subject, "(backend)") {
					k += " (backend)"
				}
				if out[k] == "" || c.Status != "pass" {
					out[k] = c.Status
				}
			}
		}
		return r.code, out, r.stdout + r.stderr
	}
	code, before, text := statuses("--target", "ingest-proxy")
	for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", "proxy.backend.tls", "proxy.backend.verified", "proxy.front.certificate_served"} {
		if before["ingest-proxy "+id] != "fail" {
			t.Errorf("before: %s = %q, want fail", id, before["ingest-proxy "+id])
		}
	}
	if code == 0 {
		t.Errorf("verify before exited 0:\n%s", text)
	}
	if r := run("plan", "-f", policy, "--target", "ingest-proxy"); !strings.Contains(r.stdout, "harden-ingest.conf") || !strings.Contains(r.stdout, "nginx reload") {
		t.Errorf("plan: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("apply", "-f", policy, "--target", "ingest-proxy", "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	code, after, text := statuses()
	for k, st := range after {
		if st != "pass" && st != "skip" {
			t.Errorf("after apply: %s = %s", k, st)
		}
	}
	for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", "proxy.backend.tls", "proxy.backend.verified", "proxy.backend.plaintext_refused",
		"proxy.front.certificate_served", "proxy.config.valid", "proxy.config.rendered"} {
		if after["ingest-proxy "+id] != "pass" {
			t.Errorf("after: %s = %q, want pass", id, after["ingest-proxy "+id])
		}
	}
	if code != 0 {
		t.Errorf("verify after apply exited %d:\n%s", code, text)
	}
	if r := run("apply", "-f", policy, "--target", "ingest-proxy", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
		t.Errorf("second apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
