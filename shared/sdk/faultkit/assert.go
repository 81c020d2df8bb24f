package faultkit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
)

// Verify runs a verifier against addr (the real server's, or a proxy's in
// front of it) and returns its checks.
type Verify func(ctx context.Context, addr string) ([]checks.Check, error)

// Standard is the fault matrix every plugin's verify is tested through:
// each fault on the ClientHellos of the versions below TLS 1.2 (the proxy
// that makes scanners report TLS 1.0 "not offered"), on every plaintext
// session (when the protocol has one), and on one connection in four
// whatever it carries.
func Standard(plaintext bool) []Rule {
	var rules []Rule
	for _, f := range Faults {
		rules = append(rules, Rule{Fault: f, Match: HelloVersions(0x0300, 0x0301, 0x0302), Name: "on SSLv3-TLS 1.1 hellos"})
	}
	for _, f := range Faults {
		if plaintext {
			rules = append(rules, Rule{Fault: f, Match: Plaintext, Name: "on plaintext sessions"})
		}
	}
	for _, f := range []Fault{Garbage, Reset, Close} {
		rules = append(rules, Rule{Fault: f, Match: Every(4, 1), Name: "on every 4th connection"})
	}
	return rules
}

// key identifies a check across runs: its ID and its subject with the
// proxy's address written as the upstream's.
func key(c checks.Check, from, to string) string {
	return c.ID + " " + strings.ReplaceAll(c.Subject, from, to)
}

// NeverPasses runs verify against upstream directly, then through a fault
// proxy for each rule, and fails t when a check that did not pass directly
// passes through a fault, or is missing there (a dropped failure is a
// silent pass). It also fails when verify found nothing failing directly
// (there would be nothing to protect) and when a rule never fired (the
// fault was not exercised). It returns the direct checks for the caller's
// own assertions.
func NeverPasses(t *testing.T, upstream string, verify Verify, rules ...Rule) []checks.Check {
	t.Helper()
	ctx := context.Background()
	direct, err := verify(ctx, upstream)
	if err != nil {
		t.Fatalf("direct verify of %s: %v", upstream, err)
	}
	notPassing := map[string]checks.Check{}
	for _, c := range direct {
		if c.Status != checks.Pass {
			notPassing[key(c, upstream, upstream)] = c
		}
	}
	if len(notPassing) == 0 {
		t.Fatalf("direct verify of %s: no check fails, so no fault can turn a failure into a pass; test against a server in its unhardened state", upstream)
	}
	for _, rule := range rules {
		t.Run(strings.ReplaceAll(rule.String(), " ", "_"), func(t *testing.T) {
			p, err := Start(upstream, rule)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			through, err := verify(ctx, p.Addr)
			if err != nil {
				// A verifier may give up on a faulty target as a whole: that
				// is an error, never a pass.
				t.Logf("verify through %s: %v (an error, not a pass)", rule, err)
				return
			}
			if p.Faulted() == 0 {
				t.Errorf("rule %s never fired (%d connections): the fault was not exercised", rule, p.Connections())
			}
			seen := map[string]checks.Check{}
			inconclusive := 0
			for _, c := range through {
				seen[key(c, p.Addr, upstream)] = c
				inconclusive += c.Inconclusive
			}
			for k, d := range notPassing {
				c, ok := seen[k]
				switch {
				case !ok:
					t.Errorf("%s: %s is %s directly but missing through the fault", rule, k, d.Status)
				case c.Status == checks.Pass:
					t.Errorf("%s: %s is %s directly (%s) but PASSES through the fault: %s", rule, k, d.Status, d.Evidence, c.Evidence)
				}
			}
			t.Logf("%s: %d connections, %d faulted, %d inconclusive observations; %s", rule, p.Connections(), p.Faulted(), inconclusive, summary(through))
		})
	}
	return direct
}

func summary(cs []checks.Check) string {
	n := map[checks.Status]int{}
	for _, c := range cs {
		n[c.Status]++
	}
	return fmt.Sprintf("pass %d, fail %d, warn %d, skip %d, error %d", n[checks.Pass], n[checks.Fail], n[checks.Warn], n[checks.Skip], n[checks.Error])
}
