package probe

import (
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Groups enumerated over TLS 1.2 (TLS 1.3 not seen accepted) pass only
// when TLS 1.3 was seen refused: when a fault kept TLS 1.3 from being
// tested at all, the groups only TLS 1.3 negotiates (an OpenSSL server's
// ffdhe2048, weaker than the profile's) were never offered, and the TLS
// 1.2 list alone proves nothing about them. Found through HAProxy's
// "before" front: resets on TLS 1.3 hellos turned its ffdhe2048 failure
// into a pass.
func TestGroupsWithoutTLS13AreIncompleteUnlessRefused(t *testing.T) {
	p := tlsprofile.Intermediate()
	for name, tc := range map[string]struct {
		tls13 Outcome
		want  checks.Status
	}{"TLS 1.3 not tested": {Inconclusive, checks.Error}, "TLS 1.3 refused": {Refused, checks.Pass}} {
		r := &Result{Address: "127.0.0.1:1", GroupsTested: true, Groups: []uint16{0x001D, 0x0017},
			Protocols: []Protocol{{Version: tlsprofile.VersionTLS12, Outcome: Accepted, Accepted: true}, {Version: tlsprofile.VersionTLS13, Outcome: tc.tls13, Evidence: "not tested: connection reset"}}}
		if c := r.groupCheck(p); c.Status != tc.want {
			t.Errorf("%s: tls.key_exchange.groups = %s, want %s: %s", name, c.Status, tc.want, c.Evidence)
		}
	}
}
