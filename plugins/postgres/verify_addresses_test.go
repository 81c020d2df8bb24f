package main

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
)

// The other-addresses check with its network replaced: which addresses it
// attempts (names resolved, loopback siblings added) and how the attempts
// reduce (only the server's 28000 refusal counts; anything inconclusive is
// an error; zero attempts is an error).
func TestOtherAddressesReduction(t *testing.T) {
	refused := attemptResult{obs: checks.Good("server refused the plaintext session (SQLSTATE 28000)"), byServer: true}
	tests := map[string]struct {
		host    string
		resolve []string
		lookErr error
		noV6    bool
		// outcome of each attempt by label substring (default: refused)
		results map[string]attemptResult
		want    checks.Status
		// wantTried: attempt labels in order; wantEvidence: phrases.
		wantTried    []string
		wantEvidence []string
	}{
		"loopback literal: itself, from 127.0.0.2, over ::1": {
			host: "127.0.0.1", want: checks.Pass,
			wantTried: []string{"to 127.0.0.1:5432", "to 127.0.0.1:5432 from 127.0.0.2", "over [::1]:5432"},
		},
		"a DNS name is resolved and every address attempted": {
			host: "db.example.internal", resolve: []string{"10.0.0.5", "10.0.0.6"}, want: checks.Pass,
			wantTried: []string{"to 10.0.0.5:5432", "to 10.0.0.6:5432"},
		},
		"localhost resolves to both loopbacks": {
			host: "localhost", resolve: []string{"::1", "127.0.0.1"}, want: checks.Pass,
			wantTried: []string{"to [::1]:5432", "to 127.0.0.1:5432", "to 127.0.0.1:5432 from 127.0.0.2"},
		},
		"no IPv6 loopback on this machine": {
			host: "127.0.0.1", noV6: true, want: checks.Pass,
			wantTried: []string{"to 127.0.0.1:5432", "to 127.0.0.1:5432 from 127.0.0.2"},
		},
		"a name that does not resolve is an error, not a pass": {
			host: "db.example.internal", lookErr: errors.New("no such host"), want: checks.Error,
			wantEvidence: []string{"resolve db.example.internal", "no such host"},
		},
		"a name that resolves to nothing is zero attempts: an error": {
			host: "db.example.internal", resolve: []string{}, want: checks.Error,
			wantEvidence: []string{"resolves to no address"},
		},
		"one inconclusive attempt makes it an error": {
			host: "127.0.0.1", want: checks.Error,
			results:      map[string]attemptResult{"from 127.0.0.2": judgePlaintext("to 127.0.0.1:5432 from 127.0.0.2", probe.Plaintext{Outcome: probe.Inconclusive, Evidence: "connection reset by the peer"})},
			wantEvidence: []string{"1 of 3 observations inconclusive", "connection reset by the peer"},
		},
		"an accepted plaintext session fails": {
			host: "127.0.0.1", want: checks.Fail,
			results:      map[string]attemptResult{"over [::1]": judgePlaintext("over [::1]:5432", probe.Plaintext{Outcome: probe.Accepted, Evidence: "server answered with an authentication request"})},
			wantEvidence: []string{"over [::1]:5432: server answered with an authentication request"},
		},
		"nothing listening anywhere is no refusal by the server: an error": {
			host: "127.0.0.1", want: checks.Error,
			results: map[string]attemptResult{
				"": {obs: checks.Good("nothing listens there (TCP connection refused)")},
			},
			wantEvidence: []string{"no address answered with PostgreSQL's own refusal"},
		},
		"nothing listening on ::1 while 127.0.0.1 refuses passes": {
			host: "127.0.0.1", want: checks.Pass,
			results:      map[string]attemptResult{"over [::1]": {obs: checks.Good("over [::1]:5432: nothing listens there (TCP connection refused)")}},
			wantEvidence: []string{"nothing listens there", "SQLSTATE 28000"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var tried []string
			p := addressProber{
				lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
					var out []netip.Addr
					for _, a := range tc.resolve {
						out = append(out, netip.MustParseAddr(a))
					}
					return out, tc.lookErr
				},
				locals: func() (bool, bool) { return true, !tc.noV6 },
				try: func(_ context.Context, a addressAttempt) attemptResult {
					tried = append(tried, a.label)
					for k, r := range tc.results {
						if strings.Contains(a.label, k) {
							return r
						}
					}
					return refused
				},
			}
			c := p.check(context.Background(), tc.host, 5432)
			if c.ID != otherAddressesID || c.Status != tc.want {
				t.Errorf("%s = %s (%s), want %s", c.ID, c.Status, c.Evidence, tc.want)
			}
			if tc.wantTried != nil && !slices.Equal(tried, tc.wantTried) {
				t.Errorf("attempted %q, want %q", tried, tc.wantTried)
			}
			for _, w := range tc.wantEvidence {
				if !strings.Contains(c.Evidence, w) {
					t.Errorf("evidence %q lacks %q", c.Evidence, w)
				}
			}
		})
	}
}
