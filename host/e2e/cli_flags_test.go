package e2e

import (
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// A zero or negative --timeout and an unknown --log-level are usage errors
// (exit 1) on every command, before anything runs.
func TestBadFlagValuesAreUsageErrors(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	cases := map[string]struct {
		args []string
		want string
	}{
		"verify negative timeout": {[]string{"verify", "-f", f.policy, "--timeout", "-5s"}, "--timeout -5s: want a positive duration"},
		"verify zero timeout":     {[]string{"verify", "-f", f.policy, "--timeout", "0"}, "--timeout 0s: want a positive duration"},
		"apply negative timeout":  {[]string{"apply", "-f", f.policy, "--yes", "--timeout", "-5s"}, "--timeout -5s: want a positive duration"},
		"plan zero timeout":       {[]string{"plan", "-f", f.policy, "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		"render bogus log level":  {[]string{"render", "-f", f.policy, "--log-level", "bogus"}, `--log-level "bogus": want one of trace, debug, info, warn, error`},
		"verify bogus log level":  {[]string{"verify", "-f", f.policy, "--log-level", "bogus"}, `--log-level "bogus": want one of trace, debug, info, warn, error`},
		"plugins list log level":  {[]string{"plugins", "list", "--log-level", "verbose"}, `--log-level "verbose": want one of`},
		"policy validate timeout": {[]string{"policy", "validate", "-f", f.policy, "--timeout", "-1m"}, "--timeout -1m0s: want a positive duration"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := f.run(tc.args...)
			if r.code != cli.ExitConfig || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d (want %d)\nstderr: %s\nwant: %s", r.code, cli.ExitConfig, r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("it ran anyway:\n%s", r.stdout)
			}
		})
	}
	// scan's per-connection --timeout too, before any connection.
	r := f.run("scan", "--timeout", "-5s", f.addr)
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "--timeout -5s: want a positive duration") {
		t.Errorf("scan: exit %d: %s", r.code, r.stderr)
	}
	// Valid values still work.
	if r := f.run("verify", "-f", f.policy, "--timeout", "30s", "--log-level", "DEBUG"); r.code != 0 {
		t.Errorf("valid flags: exit %d: %s", r.code, r.stderr)
	}
}
