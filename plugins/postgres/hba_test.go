package main

import (
	"context"
	"net/netip"
	"slices"
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
	f.Add("host all all 10.0.0.0/8 \\\nmd5\n# x \\\nhost all all 0.0.0.0/0 trust")
	f.Add(`hostssl a"ll" x, "y""z" ::1/128 "cert" map=a" b"`)
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

// m1: PostgreSQL's tokenizer (hba.c tokenize_auth_file, next_token) joins a
// line ending in a backslash with the next one — a comment too, which then
// swallows the next line —, continues a list after ", ", and treats a
// token as quoted only when it starts with a quote: a"ll" is the keyword
// all, "trust" is the method trust.
func TestParseHBALikePostgres(t *testing.T) {
	text := "host all all 10.0.0.0/8 \\\n  scram-sha-256\n" +
		"# an old rule, disabled \\\nhost all all 0.0.0.0/0 trust\n" +
		"hostssl a\"ll\" all 10.0.0.0/8 scram-sha-256\n" +
		"hostssl \"all\" x, y 10.0.0.0/8 scram-sha-256\n" +
		"host all all 10.0.0.0/8 \"trust\"\n" +
		"hostssl all all 10.0.0.0/8 cert\r\n"
	rules, _, err := parseHBA(text)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rules {
		lines = append(lines, r.Line())
	}
	want := []string{
		"host all all 10.0.0.0/8 scram-sha-256",
		"hostssl all all 10.0.0.0/8 scram-sha-256",
		`hostssl "all" x,y 10.0.0.0/8 scram-sha-256`,
		"host all all 10.0.0.0/8 trust",
		"hostssl all all 10.0.0.0/8 cert",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !listHasKeyword(rules[1].Database, "all") || listHasKeyword(rules[2].Database, "all") {
		t.Errorf("keyword all: a\"ll\" %v, \"all\" %v", listHasKeyword(rules[1].Database, "all"), listHasKeyword(rules[2].Database, "all"))
	}
	if why := compliant(rules[3]); why == "" {
		t.Errorf("a quoted \"trust\" on a host line passed as compliant")
	}
	if toks := splitHBAList(`a" b",c`); !slices.Equal(toks, []hbaToken{{"a b", false}, {"c", false}}) {
		t.Errorf("tokens %+v", toks)
	}
	// Line numbers are those of the first physical line.
	_, _, err = parseHBA("local all all peer\nhost all \\\nall\n")
	if err == nil || !strings.Contains(err.Error(), "line 2:") {
		t.Errorf("error %v, want one at line 2", err)
	}
}

// FuzzHBATokens: any line tokenizes without panicking, and each field
// written back (rawField) reads as exactly the same members, quoting
// included — what parseHBA keeps of a live file means what it meant.
func FuzzHBATokens(f *testing.F) {
	f.Add(`hostssl a"ll" x, "y""z" ::1/128 cert map=a" b" # c`)
	f.Add(`"a""" ""b , +"g h"`)
	f.Add("\"\"\"x\" a\"\"\"\"b")
	f.Fuzz(func(t *testing.T, line string) {
		fields, err := hbaTokenize(line)
		if err != nil {
			return
		}
		for _, field := range fields {
			raw := rawField(field)
			again, err := hbaTokenize(raw)
			if err != nil || len(again) != 1 || !slices.Equal(again[0], field) {
				t.Fatalf("field %+v written as %q reads back as %+v (%v)", field, raw, again, err)
			}
		}
	})
}
