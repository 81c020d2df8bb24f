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
// that makes scanners report TLS 1.0 "not offered"); on every plaintext
// session (when the protocol has one); in the middle of the TLS 1.2 and TLS
// 1.3 enumerations (every hello after the first); a hang-up after the
// server's first answer on every TLS connection (handshakes cut after the
// ServerHello or CertificateRequest); resets and closes of TLS 1.2 and 1.3
// hellos; and one connection in four whatever it carries (which the
// retries must absorb).
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
	rules = append(rules,
		Rule{Fault: Garbage, Match: LaterHellos(0x0303), Name: "on TLS 1.2 hellos after the first"},
		Rule{Fault: Reset, Match: LaterHellos(0x0304), Name: "on TLS 1.3 hellos after the first"},
		Rule{Fault: HangUp, Match: TLS, Name: "after the server's first answer"},
		Rule{Fault: Reset, Match: HelloVersions(0x0303), Name: "on TLS 1.2 hellos"},
		Rule{Fault: Close, Match: HelloVersions(0x0304), Name: "on TLS 1.3 hellos"},
	)
	for _, f := range []Fault{Garbage, Reset, Close} {
		rules = append(rules, Rule{Fault: f, Match: Every(4, 1), Name: "on every 4th connection"})
	}
	return rules
}

// keyed indexes checks by ID, subject (the proxy's address written as the
// upstream's) and occurrence, so two checks with one ID and subject (the
// probe reports a certificate key-type finding beside its trust check)
// are compared one to one.
func keyed(cs []checks.Check, from, to string) (map[string]checks.Check, []string) {
	out := map[string]checks.Check{}
	var order []string
	n := map[string]int{}
	for _, c := range cs {
		k := c.ID + " " + strings.ReplaceAll(c.Subject, from, to)
		n[k]++
		if n[k] > 1 {
			k = fmt.Sprintf("%s #%d", k, n[k])
		}
		out[k] = c
		order = append(order, k)
	}
	return out, order
}

// worse reports whether a check seen through a fault hides what was seen
// directly: a non-pass that passes, or a failure that becomes a skip or
// (unless the check is best-effort) a warning.
func worse(direct, through checks.Check) bool {
	switch {
	case direct.Status != checks.Pass && through.Status == checks.Pass:
		return true
	case direct.Status == checks.Fail && through.Status == checks.Skip:
		return true
	case direct.Status == checks.Fail && through.Status == checks.Warn:
		d, _ := checks.Lookup(direct.ID)
		return !d.BestEffort
	}
	return false
}

// NeverPasses runs verify against upstream directly and through a
// fault-free proxy (a control: a failure must look the same through the
// proxy), then through a fault proxy for each rule, and fails t when a
// check that failed or erred directly passes through a fault, when a
// failure becomes a skip or a warning, or when it is missing there (a
// dropped failure is a silent pass). It also fails when verify found no
// failing check directly (there would be nothing to protect), when a rule
// never fired (the fault was not exercised), and when verify errored
// through every fault. It returns the direct checks for the caller's own
// assertions.
func NeverPasses(t *testing.T, upstream string, verify Verify, rules ...Rule) []checks.Check {
	t.Helper()
	ctx := context.Background()
	direct, err := verify(ctx, upstream)
	if err != nil {
		t.Fatalf("direct verify of %s: %v", upstream, err)
	}
	fails := 0
	for _, c := range direct {
		if c.Status == checks.Fail {
			fails++
		}
	}
	if fails == 0 {
		t.Fatalf("direct verify of %s: no check fails, so no fault can turn a failure into a pass; test against a server in its unhardened state", upstream)
	}
	compare := func(t *testing.T, name string, through []checks.Check, addr string) {
		t.Helper()
		for _, v := range Compare(direct, upstream, through, addr) {
			t.Errorf("%s: %s", name, v)
		}
	}
	t.Run("control_without_faults", func(t *testing.T) {
		p, err := Start(upstream)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		through, err := verify(ctx, p.Addr)
		if err != nil {
			t.Fatalf("verify through a fault-free proxy: %v", err)
		}
		compare(t, "no fault", through, p.Addr)
	})
	errored := 0
	for _, rule := range rules {
		t.Run(strings.ReplaceAll(rule.String(), " ", "_"), func(t *testing.T) {
			p, err := Start(upstream, rule)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			through, err := verify(ctx, p.Addr)
			if p.Faulted() == 0 {
				t.Errorf("rule %s never fired (%d connections): the fault was not exercised", rule, p.Connections())
			}
			if err != nil {
				// A verifier may give up on a faulty target as a whole: that
				// is an error, never a pass.
				errored++
				t.Logf("verify through %s: %v (an error, not a pass)", rule, err)
				return
			}
			compare(t, rule.String(), through, p.Addr)
			inconclusive := 0
			for _, c := range through {
				inconclusive += c.Inconclusive
			}
			t.Logf("%s: %d connections, %d faulted, %d inconclusive observations; %s", rule, p.Connections(), p.Faulted(), inconclusive, summary(through))
		})
	}
	if len(rules) > 0 && errored == len(rules) {
		t.Errorf("verify errored through every fault: the faults never reached a verdict to compare")
	}
	return direct
}

// Compare lists how the checks seen through a fault (from a verifier
// pointed at addr) hide what the direct checks (at upstream) showed: a
// non-pass that passes, a failure that becomes a skip or a non-best-effort
// warning, a non-pass that is missing. Empty means nothing was hidden.
func Compare(direct []checks.Check, upstream string, through []checks.Check, addr string) []string {
	directKeyed, order := keyed(direct, upstream, upstream)
	seen, _ := keyed(through, addr, upstream)
	byID := map[string][]checks.Check{}
	for _, c := range through {
		byID[c.ID] = append(byID[c.ID], c)
	}
	var out []string
	for _, k := range order {
		d := directKeyed[k]
		if d.Status == checks.Pass {
			continue
		}
		if c, ok := seen[k]; ok {
			if worse(d, c) {
				out = append(out, fmt.Sprintf("%s is %s directly (%s) but %s: %s", k, d.Status, d.Evidence, strings.ToUpper(c.Status.String()), c.Evidence))
			}
			continue
		}
		// The subject may legitimately change when the fault hides what it
		// names (a broker that cannot be identified): then every check of
		// that ID must still hold the verdict back.
		same := byID[d.ID]
		if len(same) == 0 {
			out = append(out, fmt.Sprintf("%s is %s directly but missing", k, d.Status))
		}
		for _, c := range same {
			if worse(d, c) {
				out = append(out, fmt.Sprintf("%s is %s directly (%s) but %s as %q: %s", k, d.Status, d.Evidence, strings.ToUpper(c.Status.String()), c.Subject, c.Evidence))
			}
		}
	}
	return out
}

func summary(cs []checks.Check) string {
	n := map[checks.Status]int{}
	for _, c := range cs {
		n[c.Status]++
	}
	return fmt.Sprintf("pass %d, fail %d, warn %d, skip %d, error %d", n[checks.Pass], n[checks.Fail], n[checks.Warn], n[checks.Skip], n[checks.Error])
}
