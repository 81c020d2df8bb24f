package probe

import (
	"slices"
	"testing"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// The internal tests' helpers; probetest has the same for plugins (and
// the external accuracy tests): it imports probe, so these tests cannot
// import it.

func hardenPairs(res *Result) []string {
	var pairs []string
	for _, c := range res.Ciphers {
		pairs = append(pairs, tlsprofile.VersionName(c.Version)+" "+tlsprofile.HexID(c.ID))
	}
	slices.Sort(pairs)
	return pairs
}

// requireConclusive: a real, healthy server answers every probe in its own
// words — no observation may be inconclusive and nothing is retried.
func requireConclusive(t testing.TB, res *Result) {
	t.Helper()
	if n := res.Inconclusive(); n > 0 || res.Retries > 0 {
		t.Errorf("%d inconclusive observations, %d retries on a healthy server:", n, res.Retries)
		for _, p := range res.Protocols {
			t.Errorf("  %s: %s %s %s", tlsprofile.VersionName(p.Version), p.Outcome, p.Evidence, p.SuitesIncomplete)
		}
		t.Errorf("  groups: %s; plaintext: %s; client auth: %v / %v / %v", res.GroupsIncomplete, res.Plaintext.Evidence, res.ClientAuth.NoCert, res.ClientAuth.WrongCA, res.ClientAuth.Trusted)
	}
}
