package exporter

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// rulesDir holds the shipped rules, their promtool tests and the example
// scrape configuration.
const rulesDir = "../../../deploy/prometheus"

func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (setup installs prometheus; CI=true, so this fails instead of skipping): %v", err)
		}
		t.Skipf("promtool not found: %v", err)
	}
	return bin
}

// The shipped rules are valid, their unit tests pass (10 days before
// expiry the 14d and 30d tiers fire; an expired certificate fires and
// keeps firing; stale runs, exporter errors, a failing check, keys), and
// the example prometheus.yml loads them.
func TestRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "harden-rules.yml"},
		{"test", "rules", "harden-rules.test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = rulesDir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every harden_* series the rules read is one the exporter exports, with
// the labels the rules use: a renamed metric cannot silently disarm an
// alert.
func TestRulesUseExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(rulesDir, "harden-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]*metric{}
	for _, m := range metrics {
		known[m.name] = m
	}
	exprs := regexp.MustCompile(`(?m)^\s*expr: (.*)$`).FindAllStringSubmatch(string(data), -1)
	if len(exprs) < 10 {
		t.Fatalf("found %d rule expressions", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range regexp.MustCompile(`harden_[a-z_]+`).FindAllString(e[1], -1) {
			m := known[name]
			if m == nil {
				t.Errorf("rule %q reads %s, which the exporter does not export", e[1], name)
				continue
			}
			used[name] = true
			for _, sel := range regexp.MustCompile(name+`\{([^}]*)\}`).FindAllStringSubmatch(e[1], -1) {
				for _, l := range regexp.MustCompile(`([a-z_]+)\s*=~?`).FindAllStringSubmatch(sel[1], -1) {
					if !strings.Contains(" "+strings.Join(m.labels, " ")+" ", " "+l[1]+" ") {
						t.Errorf("rule %q selects label %s, which %s does not have", e[1], l[1], name)
					}
				}
			}
		}
	}
	for _, name := range []string{"harden_certificate_not_after_seconds", "harden_check_failed", "harden_last_success_timestamp_seconds",
		"harden_run_ok", "harden_run_errors_total", "harden_key_auto_rotate_disabled", "harden_key_next_rotation_seconds"} {
		if !used[name] {
			t.Errorf("no rule reads %s", name)
		}
	}
}
