package faultkit

import (
	"testing"

	"github.com/harden-dev/harden/shared/checks"
)

// Compare catches every way a lying or careless verifier hides a failure
// behind a fault.
func TestCompareCatchesHiddenFailures(t *testing.T) {
	up, px := "127.0.0.1:1000", "127.0.0.1:2000"
	mk := func(id, subj string, st checks.Status) checks.Check { return checks.New(id, st, subj, "ev") }
	direct := []checks.Check{
		mk("tls.protocol.versions", up, checks.Fail),
		mk("tls.certificate.trusted", up, checks.Pass),
		mk("tls.certificate.trusted", up, checks.Fail), // a second finding with the same ID
		mk("tls.cipher_suites", up, checks.Error),
		mk("postgres.password_encryption", up, checks.Fail), // best-effort
	}
	tests := map[string]struct {
		through []checks.Check
		hidden  int
	}{
		"faithful":                     {[]checks.Check{mk("tls.protocol.versions", px, checks.Fail), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Fail), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Warn)}, 0},
		"fail becomes error":           {[]checks.Check{mk("tls.protocol.versions", px, checks.Error), mk("tls.certificate.trusted", px, checks.Error), mk("tls.certificate.trusted", px, checks.Error), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Error)}, 0},
		"fail passes":                  {[]checks.Check{mk("tls.protocol.versions", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Fail), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Fail)}, 1},
		"error passes":                 {[]checks.Check{mk("tls.protocol.versions", px, checks.Fail), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Fail), mk("tls.cipher_suites", px, checks.Pass), mk("postgres.password_encryption", px, checks.Fail)}, 1},
		"fail skips, fail warns":       {[]checks.Check{mk("tls.protocol.versions", px, checks.Skip), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Warn), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Fail)}, 2},
		"duplicate hides its twin":     {[]checks.Check{mk("tls.protocol.versions", px, checks.Fail), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Fail)}, 1},
		"failures vanish":              {[]checks.Check{mk("tls.certificate.trusted", px, checks.Pass)}, 4},
		"subject changes, still error": {[]checks.Check{mk("tls.protocol.versions", "broker ?", checks.Error), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Fail), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Fail)}, 0},
		"subject changes and passes":   {[]checks.Check{mk("tls.protocol.versions", "broker ?", checks.Pass), mk("tls.certificate.trusted", px, checks.Pass), mk("tls.certificate.trusted", px, checks.Fail), mk("tls.cipher_suites", px, checks.Error), mk("postgres.password_encryption", px, checks.Fail)}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Compare(direct, up, tc.through, px); len(got) != tc.hidden {
				t.Errorf("%d hidden, want %d: %q", len(got), tc.hidden, got)
			}
		})
	}
}
