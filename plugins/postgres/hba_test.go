package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
)

func TestParseHBA(t *testing.T) {
	text := `# comment
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
hostssl "my db",other   app,+admins     10.0.0.0 255.0.0.0      cert map=certmap  # trailing
include_if_exists extra.conf
`
	rules, includes, err := parseHBA(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || len(includes) != 1 || includes[0] != "include_if_exists extra.conf" {
		t.Fatalf("rules %+v includes %v", rules, includes)
	}
	if got := rules[2].Line(); got != `hostssl "my db",other app,+admins 10.0.0.0/8 cert map=certmap` {
		t.Errorf("line %q", got)
	}
	for _, bad := range []string{"host all all", "hostx all all 1.2.3.4/32 trust", `host "all all 1.2.3.4/32 trust`, "host all all 1.2.3.4/32 scram opt"} {
		if _, _, err := parseHBA(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestAdmits(t *testing.T) {
	rules, _, _ := parseHBA(hbaText(defaultLocal, spec{}.networkRules(false)))
	lo := netip.MustParseAddr("127.0.0.1")
	tests := map[string]struct {
		s    session
		want bool
	}{
		"tls from loopback":       {session{User: "app", Database: "db", Addr: lo, SSL: true}, true},
		"plaintext from loopback": {session{User: "app", Database: "db", Addr: lo}, false},
		"tls from elsewhere":      {session{User: "app", Database: "db", Addr: netip.MustParseAddr("10.1.2.3"), SSL: true}, false},
		"replication over tls":    {session{User: "rep", Addr: lo, SSL: true, Replication: true}, false},
	}
	for name, tc := range tests {
		if got, line := admits(rules, tc.s); got != tc.want {
			t.Errorf("%s: admits = %v (%s)", name, got, line)
		}
	}
	mtls, _, _ := parseHBA(hbaText(defaultLocal, spec{}.networkRules(true)))
	if ok, _ := admits(mtls, session{User: "app", Database: "db", Addr: lo, SSL: true}); ok {
		t.Errorf("mTLS rules admit a session without a client certificate")
	}
	if !strings.Contains(hbaText(nil, spec{}.networkRules(true)), "clientcert=verify-full") {
		t.Errorf("mTLS scope does not require client certificates")
	}
}

// FuzzParseHBA: a live server's pg_hba.conf is untrusted input.
func FuzzParseHBA(f *testing.F) {
	f.Add("local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n")
	f.Add(`hostssl "a b" all ::1/128 cert clientcert=verify-full`)
	f.Add("include_dir conf.d\nhost all all 10.0.0.0 255.255.0.0 md5 # x")
	f.Fuzz(func(t *testing.T, text string) {
		rules, _, err := parseHBA(text)
		if err != nil {
			return
		}
		// What parses renders and parses again to the same rules.
		var b strings.Builder
		for _, r := range rules {
			b.WriteString(r.Line() + "\n")
		}
		again, _, err := parseHBA(b.String())
		if err != nil || len(again) != len(rules) {
			t.Fatalf("round trip of %q: %v (%d vs %d rules)", text, err, len(again), len(rules))
		}
		for i := range rules {
			if again[i].Line() != rules[i].Line() {
				t.Fatalf("round trip changed %q to %q", rules[i].Line(), again[i].Line())
			}
		}
	})
}

func TestValidateSpecRejectsTraps(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{`{"hba":[{"type":"host","database":"all","user":"all","address":"10.0.0.0/8","method":"scram-sha-256"}]}`, "network access only through hostssl"},
		{`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"md5"}]}`, "insecure: md5"},
		{`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"trust"}]}`, "insecure: trust"},
		{`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"scram-sha-256","options":{"clientcert":"1"}}]}`, "clientcert=1 is invalid"},
		{`{"hba":[{"database":"all","user":"all","method":"cert"}]}`, "needs an address"},
		{`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"magic"}]}`, "unknown authentication method"},
	} {
		var r validateResp
		postgres{}.ValidateSpec(context.Background(), validateReq(tc.spec), &r.ValidateSpecResponse)
		if err := r.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.spec, err, tc.want)
		}
	}
}

type validateResp struct{ sdk.ValidateSpecResponse }

func validateReq(specJSON string) sdk.ValidateSpecRequest {
	return sdk.ValidateSpecRequest{RequestContext: sdk.RequestContext{Target: sdk.NewTarget("pg", []byte(`{"host":"127.0.0.1","port":5432}`), []byte(specJSON), nil)}}
}
