package e2e

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// A target that failed as a whole (here the plugin crashed) is counted in
// the summary: never "0 errors" after a target error.
func TestSummaryCountsTargetErrors(t *testing.T) {
	f := newFixture(t, "crash")
	f.lockPlugins()
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stdout, "Summary: 0 passed, 0 failed, 0 warnings, 0 skipped, 1 errors (1 target error(s));") {
		t.Errorf("text: exit %d\n%s", r.code, r.stdout)
	}
	r = f.run("verify", "-f", f.policy, "--format", "json")
	var rep struct{ Summary map[string]int }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Summary["target_error"] != 1 || rep.Summary["error"] != 0 {
		t.Errorf("json summary %v (%v)\n%s", rep.Summary, err, r.stdout)
	}
	// plan: a target in error has unknown changes, not "0 pending".
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	f.writePolicy("normal")
	pol, _ := os.ReadFile(f.policy)
	os.WriteFile(f.policy, []byte(strings.Replace(string(pol), f.addr, dead, 1)), 0o644)
	r = f.run("plan", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stdout, "Plan: 0 change(s) pending, 1 target error(s): their changes are unknown") {
		t.Errorf("plan: exit %d\n%s", r.code, r.stdout)
	}
	// Healthy: no target errors mentioned.
	f.writePolicy("normal")
	r = f.run("verify", "-f", f.policy)
	if r.code != 0 || !strings.Contains(r.stdout, "Summary: 3 passed, 0 failed, 0 warnings, 0 skipped, 0 errors; ") {
		t.Errorf("healthy: exit %d\n%s", r.code, r.stdout)
	}
}
