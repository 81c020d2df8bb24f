package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// The host's rules on what plugins send (verdict.go), end to end through a
// real plugin process whose spec mode makes it misbehave.

type verifyJSON struct {
	FormatVersion int  `json:"format_version"`
	Inconclusive  *int `json:"inconclusive"`
	Targets       []struct {
		Name, Status, Error string
		Inconclusive        *int `json:"inconclusive"`
		Checks              []struct {
			ID, Status, Severity, Subject, Evidence string
			Inconclusive                            *int  `json:"inconclusive"`
			ConfigurationOnly                       *bool `json:"configuration_only"`
		}
	}
	Summary map[string]int
}

func (f *fixture) verifyJSON(args ...string) (result, verifyJSON) {
	f.t.Helper()
	r := f.run(append([]string{"verify", "-f", f.policy, "--format", "json"}, args...)...)
	var rep verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		f.t.Fatalf("JSON report: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return r, rep
}

// Zero checks is never a pass (the rule existed; this is its test).
func TestVerifyZeroChecksIsAnError(t *testing.T) {
	f := newFixture(t, "empty")
	f.lockPlugins()
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stdout, "echo-a (echo): ERROR") || !strings.Contains(r.stderr, "no checks ran; an empty verification is never a pass") {
		t.Errorf("zero checks: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// A target whose every check is skipped verified nothing: exit 3, not 0.
func TestVerifyAllSkippedIsAnError(t *testing.T) {
	f := newFixture(t, "allskip")
	f.lockPlugins()
	r, rep := f.verifyJSON()
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "nothing applicable was verified: all 2 check(s) were skipped") {
		t.Errorf("all skipped: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Status != "error" || rep.Summary["skip"] != 2 {
		t.Errorf("report: %+v", rep)
	}
}

// A plugin's invalid checks become errors: an unknown severity no longer
// slips under --fail-on, an unknown status no longer counts as nothing.
func TestVerifyInvalidChecksAreErrors(t *testing.T) {
	f := newFixture(t, "invalid")
	f.lockPlugins()
	for _, failOn := range []string{"info", "critical"} {
		r, rep := f.verifyJSON("--fail-on", failOn)
		if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "plugin echo sent 4 invalid check(s), reported as errors") {
			t.Errorf("--fail-on %s: exit %d\n%s", failOn, r.code, r.stderr)
		}
		if len(rep.Targets) != 1 || rep.Targets[0].Status != "error" {
			t.Fatalf("report: %+v", rep)
		}
		want := map[string]string{
			"echo.reachable":       "unknown severity unknown",
			"echo.env.clean":       "unknown status status(42)",
			"Echo Reachable!":      `invalid check id "Echo Reachable!"`,
			"echo.secret.received": "a pass with 1 inconclusive observation(s)",
		}
		for _, c := range rep.Targets[0].Checks {
			if c.Status != "error" || !strings.Contains(c.Evidence, "the plugin sent an invalid check ("+want[c.ID]) {
				t.Errorf("check %s: %s %s", c.ID, c.Status, c.Evidence)
			}
			if c.Severity == "unknown" {
				t.Errorf("check %s reported with severity unknown", c.ID)
			}
			delete(want, c.ID)
		}
		if len(want) > 0 {
			t.Errorf("checks missing from the report: %v", want)
		}
		if rep.Summary["error"] != 4 || rep.Summary["pass"] != 0 || rep.Summary["fail"] != 0 {
			t.Errorf("summary %v", rep.Summary)
		}
	}
}

// Inconclusive observations are counted per check, per target and overall;
// configuration-only evidence is marked per check, and a plugin's
// configuration-only pass of a high-severity check is reported as a warning.
func TestVerifyReportsInconclusiveAndConfigurationOnly(t *testing.T) {
	f := newFixture(t, "evidence")
	f.lockPlugins()
	r, rep := f.verifyJSON()
	// echo.reachable had two inconclusive observations: an error.
	if r.code != cli.ExitTarget {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
	if rep.FormatVersion != 1 || rep.Inconclusive == nil || *rep.Inconclusive != 2 ||
		len(rep.Targets) != 1 || rep.Targets[0].Inconclusive == nil || *rep.Targets[0].Inconclusive != 2 {
		t.Fatalf("inconclusive totals: %s", r.stdout)
	}
	type got struct {
		status       string
		inconclusive int
		configOnly   bool
	}
	want := map[string]got{
		"echo.reachable/" + f.addr:    {"error", 2, false},
		"echo.env.clean/echo-a":       {"warn", 0, true}, // critical: configuration alone never passes
		"echo.secret.received/echo-a": {"pass", 0, true}, // medium: it may
		"echo.env.clean/forged":       {"warn", 0, true}, // the plugin's own pass, downgraded by the host
	}
	for _, c := range rep.Targets[0].Checks {
		if c.Inconclusive == nil || c.ConfigurationOnly == nil {
			t.Fatalf("check %s lacks inconclusive/configuration_only: %s", c.ID, r.stdout)
		}
		k := c.ID + "/" + c.Subject
		if w, ok := want[k]; !ok || (got{c.Status, *c.Inconclusive, *c.ConfigurationOnly}) != w {
			t.Errorf("check %s: %s %d %v, want %+v (%s)", k, c.Status, *c.Inconclusive, *c.ConfigurationOnly, w, c.Evidence)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("checks missing: %v", want)
	}
	r = f.run("verify", "-f", f.policy)
	for _, s := range []string{
		"ERROR high     echo.reachable                     " + f.addr + " [2 inconclusive]",
		"WARN  critical echo.env.clean                     echo-a [configuration only]",
		"2 inconclusive observation(s) in echo-a's checks",
		"Summary: 1 passed, 0 failed, 2 warnings, 0 skipped, 1 errors; 2 inconclusive observations, 3 configuration-only checks",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("text report lacks %q:\n%s", s, r.stdout)
		}
	}
}

// With a vault-pki source whose issuer fails during verify, the error
// surfaces: the target is an error with the issuer's reason and the trust
// check the plugin skipped for want of a CA is an error, never a skip.
func TestVerifyCertificateSourceErrorSurfaces(t *testing.T) {
	for mode, reason := range map[string]string{
		"issuer-fail":  "run harden apply --target pki first",
		"issuer-empty": "certificate source pki returned no CA bundle",
	} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, "normal")
			// echo stands in for the vaultpki plugin (a certificate source).
			cmd := exec.Command("go", "build", "-ldflags", "-X main.pluginName=vaultpki", "-o", filepath.Join(f.pluginDir, "harden-plugin-vaultpki"), ".")
			cmd.Dir = "../testdata/echoplugin"
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			f.lockPlugins()
			pol, _ := os.ReadFile(f.policy)
			pol = []byte(strings.Replace(string(pol), "targets:\n", "certificates:\n  source: vault-pki\n  vault: {target: pki, store_dir: "+filepath.Join(f.dir, "certs")+"}\ntargets:\n", 1) +
				"  - name: pki\n    plugin: vaultpki\n    connection: {address: \"" + f.addr + "\"}\n    spec: {mode: " + mode + "}\n")
			if err := os.WriteFile(f.policy, pol, 0o644); err != nil {
				t.Fatal(err)
			}
			r, rep := f.verifyJSON("--target", "echo-a")
			if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "certificate source vault-pki (target pki) could not provide the policy CA") || !strings.Contains(r.stderr, reason) {
				t.Errorf("exit %d\n%s", r.code, r.stderr)
			}
			if len(rep.Targets) != 1 || rep.Targets[0].Status != "error" {
				t.Fatalf("report: %s", r.stdout)
			}
			found := false
			for _, c := range rep.Targets[0].Checks {
				if c.Status == "skip" {
					t.Errorf("check %s skipped: %s", c.ID, c.Evidence)
				}
				if c.ID == "tls.certificate.trusted" {
					found = c.Status == "error" && strings.Contains(c.Evidence, reason)
				}
				// What verify could prove without the CA still ran.
				if c.ID == "echo.reachable" && c.Status != "pass" {
					t.Errorf("echo.reachable: %s %s", c.Status, c.Evidence)
				}
			}
			if !found {
				t.Errorf("tls.certificate.trusted is not an error with the issuer's reason:\n%s", r.stdout)
			}
			// plan and apply still stop on the same error.
			if r := f.run("plan", "-f", f.policy, "--target", "echo-a"); r.code != cli.ExitTarget || !strings.Contains(r.stdout+r.stderr, reason) {
				t.Errorf("plan: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}
