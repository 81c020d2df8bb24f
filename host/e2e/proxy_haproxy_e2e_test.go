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

// The HAProxy route of the data lake end to end through the real harden
// binary (a child process, as an operator runs it) and real plugin
// processes: testenv's "before" HAProxy in front of SeaweedFS fails verify
// on the front's TLS and HSTS, the plaintext hop to weed's S3 port and
// the missing decoy proof; plan lists the files and the reload; apply
// makes every check of the lake-proxy target pass (HAProxy's alert to the
// decoy, the front's plaintext refusal a 400); inventory lists the front
// with the certificate harden installed; a second apply has nothing to do.
func TestProxyHAProxyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	f := &serviceFixture{t: t, dir: dir, plugins: filepath.Join(dir, "plugins"), lck: filepath.Join(dir, "plugins.lock")}
	buildPlugins(t, f.plugins, "proxy", "objectstore")
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"s3", "haproxy"}, StateDir: state})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv (CI=true): %v", err)
		}
		t.Skipf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = env.Down() })
	policy := filepath.Join(state, "policy.yaml")
	if r := f.harden("plugins", "lock"); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	if r := f.harden("policy", "validate", "-f", policy); r.code != 0 || !strings.Contains(r.stdout, "lake-proxy (proxy)") {
		t.Fatalf("policy validate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	type check struct{ ID, Status, Subject, Evidence string }
	statuses := func() (int, map[string]check, string) {
		t.Helper()
		r := f.harden("verify", "-f", policy, "--target", "lake-proxy", "--format", "json")
		var rep struct {
			Targets []struct {
				Name   string  `json:"name"`
				Checks []check `json:"checks"`
			} `json:"targets"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("verify: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		out := map[string]check{}
		for _, tg := range rep.Targets {
			if tg.Name != "lake-proxy" {
				t.Errorf("verify --target lake-proxy reported %s", tg.Name)
			}
			for _, c := range tg.Checks {
				k := c.ID
				if strings.HasSuffix(c.Subject, "(backend)") {
					k += " (backend)"
				}
				if prev, ok := out[k]; !ok || prev.Status == "pass" {
					out[k] = c
				}
			}
		}
		return r.code, out, r.stdout + r.stderr
	}
	code, before, text := statuses()
	for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", "proxy.backend.tls", "proxy.backend.verified", "proxy.front.certificate_served", "proxy.config.rendered"} {
		if before[id].Status != "fail" {
			t.Errorf("before: %s = %q, want fail: %s", id, before[id].Status, before[id].Evidence)
		}
	}
	if !strings.Contains(before["proxy.backend.tls"].Evidence, "over plain HTTP") {
		t.Errorf("before: proxy.backend.tls without the plaintext route as evidence: %s", before["proxy.backend.tls"].Evidence)
	}
	if code == 0 {
		t.Errorf("verify before exited 0:\n%s", text)
	}
	if r := f.harden("plan", "-f", policy, "--target", "lake-proxy"); r.code != 0 || !strings.Contains(r.stdout, "harden-lake.cfg") || !strings.Contains(r.stdout, "haproxy reload") ||
		!strings.Contains(r.stdout, "front.pem") {
		t.Errorf("plan: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := f.harden("apply", "-f", policy, "--target", "lake-proxy", "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	code, after, text := statuses()
	for k, c := range after {
		if c.Status != "pass" && c.Status != "skip" {
			t.Errorf("after apply: %s = %s: %s", k, c.Status, c.Evidence)
		}
	}
	for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "tls.plaintext.refused", "http.hsts", "http.content_type_options", "proxy.backend.tls", "proxy.backend.verified",
		"proxy.backend.plaintext_refused", "proxy.front.certificate_served", "proxy.config.valid", "proxy.config.rendered", "tls.enabled (backend)"} {
		if after[id].Status != "pass" {
			t.Errorf("after: %s = %q, want pass", id, after[id].Status)
		}
	}
	if ev := after["proxy.backend.verified"].Evidence; !strings.Contains(ev, "aborted the TLS handshake") {
		t.Errorf("after: proxy.backend.verified passed without HAProxy's alert to the decoy: %s", ev)
	}
	if code != 0 {
		t.Errorf("verify after apply exited %d:\n%s", code, text)
	}
	// The front in the inventory: the certificate harden installed,
	// served in accepted handshakes, trusted, the one harden holds.
	r := f.harden("inventory", "-f", policy, "--target", "lake-proxy", "--format", "json")
	var inv struct {
		Items []struct {
			Kind, Target, Where, Name string
			Served                    *struct {
				Address     string `json:"address"`
				Handshakes  int    `json:"handshakes"`
				Outcome     string `json:"outcome"`
				Trusted     bool   `json:"trusted"`
				MatchesHeld *bool  `json:"matches_held"`
				ReloadsOn   string `json:"reloads_on"`
			} `json:"served"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
		t.Fatalf("inventory: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	front := false
	for _, it := range inv.Items {
		if s := it.Served; it.Target == "lake-proxy" && it.Name == "front" && s != nil {
			front = true
			if s.Handshakes < 1 || s.Outcome != "accepted" || !s.Trusted || s.MatchesHeld == nil || !*s.MatchesHeld || s.ReloadsOn != "" {
				t.Errorf("inventory: the front %+v", *s)
			}
		}
	}
	if !front {
		t.Errorf("inventory lists no front of lake-proxy: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := f.harden("apply", "-f", policy, "--target", "lake-proxy", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
		t.Errorf("second apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
