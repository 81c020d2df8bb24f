package cli

import (
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// The host holds plugins to the registered definitions of the IDs it knows.
func TestValidateCheckHoldsRegisteredDefinitions(t *testing.T) {
	tests := map[string]struct {
		in       sdk.Check
		status   checks.Status
		severity checks.Severity
		invalid  bool
	}{
		"severity lowered by the plugin": {sdk.Check{ID: "tls.protocol.versions", Status: checks.Fail, Severity: checks.Info}, checks.Fail, checks.High, false},
		"config-only pass at a lowered severity": {sdk.Check{ID: "tls.protocol.versions", Status: checks.Pass, Severity: checks.Low, ConfigurationOnly: true},
			checks.Warn, checks.High, false},
		"warn on an inconclusive strict check": {sdk.Check{ID: "tls.cipher_suites", Status: checks.Warn, Severity: checks.Medium, Inconclusive: 1}, checks.Error, checks.Medium, false},
		"warn on an inconclusive best-effort check": {sdk.Check{ID: "postgres.password_encryption", Status: checks.Warn, Severity: checks.Medium, Inconclusive: 1},
			checks.Warn, checks.Medium, false},
		"a pass with inconclusive observations":           {sdk.Check{ID: "tls.cipher_suites", Status: checks.Pass, Severity: checks.Medium, Inconclusive: 2}, checks.Error, checks.Medium, true},
		"unknown status":                                  {sdk.Check{ID: "tls.cipher_suites", Status: checks.StatusUnknown, Severity: checks.Medium}, checks.Error, checks.Medium, true},
		"an ID the host does not know keeps its severity": {sdk.Check{ID: "thirdparty.redis.tls", Status: checks.Fail, Severity: checks.Low}, checks.Fail, checks.Low, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, why := validateCheck(tc.in)
			if c.Status != tc.status || c.Severity != tc.severity || (why != "") != tc.invalid {
				t.Errorf("%s %s (invalid %q), want %s %s invalid=%v", c.Status, c.Severity, why, tc.status, tc.severity, tc.invalid)
			}
		})
	}
}
