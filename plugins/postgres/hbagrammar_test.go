package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// Values that would inject lines or fields into pg_hba.conf / pg_ident.conf
// are refused in ValidateSpec with the attribute's path, without echoing
// the value. The first case is the reproduction (a passwordless
// superuser login from the network after apply).
func TestValidateSpecRejectsInjection(t *testing.T) {
	const inject = "all all trust\nhost all all 0.0.0.0/0 trust\nlocal all"
	rule := func(field, value string) string {
		r := map[string]any{"database": "all", "user": "all", "address": "10.0.0.0/8", "method": "scram-sha-256"}
		r[field] = value
		b, _ := json.Marshal(map[string]any{"hba": []any{r}})
		return string(b)
	}
	for name, tc := range map[string]struct {
		spec, path, want string
	}{
		"database newline (the issue)": {rule("database", inject), "spec.hba[0].database", "control character or newline"},
		"user newline":                 {rule("user", "app\nhost all all 0.0.0.0/0 trust"), "spec.hba[0].user", "control character or newline"},
		"address with a second field":  {rule("address", "10.0.0.0/8 trust #"), "spec.hba[0].address", "is not a CIDR"},
		"address carriage return":      {rule("address", "10.0.0.0/8\r"), "spec.hba[0].address", "control character"},
		"bare IP":                      {rule("address", "10.0.0.1"), "spec.hba[0].address", "has no prefix length"},
		"file inclusion":               {rule("user", "@/etc/passwd"), "spec.hba[0].user", "file inclusion"},
		"empty list member":            {rule("database", "a,,b"), "spec.hba[0].database", "list member 2 is empty"},
		"group needing quotes":         {rule("user", "+my group"), "spec.hba[0].user", "quoting would make it a plain name"},
		"tab":                          {rule("database", "a\tb"), "spec.hba[0].database", "control character"},
		"too long":                     {rule("user", strings.Repeat("u", 300)), "spec.hba[0].user", "longer than 255 bytes"},
		"option value newline": {`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"scram-sha-256","options":{"map":"m\nhost all all 0.0.0.0/0 trust"}}]}`,
			"spec.hba[0].options.map", "control character"},
		"option name with a blank": {`{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"scram-sha-256","options":{"x trust":"1"}}]}`,
			`spec.hba[0].options`, "option name"},
		"local with an address":  {`{"local":[{"database":"all","user":"all","address":"0.0.0.0/0","method":"peer"}]}`, "spec.local[0].address", "local rules have no address"},
		"local database newline": {`{"local":[{"database":"all\nhost all all 0.0.0.0/0 trust","user":"all","method":"peer"}]}`, "spec.local[0].database", "newline"},
		"ident newline": {`{"ident_maps":[{"map":"m","system_user":"cn\nm root postgres","pg_user":"app"}]}`,
			"spec.ident_maps[0].system_user", "newline"},
	} {
		t.Run(name, func(t *testing.T) {
			var r validateResp
			postgres{}.ValidateSpec(context.Background(), validateReq(tc.spec), &r.ValidateSpecResponse)
			var found bool
			for _, d := range r.Diagnostics {
				if d.Severity == sdk.Error && strings.HasPrefix(d.Attribute.String(), tc.path) && strings.Contains(d.Summary, tc.want) {
					found = true
				}
				if strings.Contains(d.Summary+d.Detail, "0.0.0.0/0 trust") || strings.Contains(d.Summary+d.Detail, "/etc/passwd") {
					t.Errorf("the value is echoed: %s", d.Summary+" "+d.Detail)
				}
			}
			if !found {
				t.Errorf("want an error at %s with %q, got %v", tc.path, tc.want, r.Diagnostics)
			}
		})
	}
}

// Names PostgreSQL accepts quoted are quoted, and read back as themselves.
func TestRenderQuotesNames(t *testing.T) {
	s := spec{HBA: []HBARule{{Database: "my db,all", User: `report#user,+admins,a"b`, Address: "10.0.0.0/8", Method: "scram-sha-256",
		Options: map[string]string{"map": "m m"}}}}
	text, err := s.hbaFor(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, `hostssl "my db",all "report#user",+admins,"a""b" 10.0.0.0/8 scram-sha-256 map="m m"`) {
		t.Fatalf("rendered:\n%s", text)
	}
	rules, _, err := parseHBA(text)
	if err != nil {
		t.Fatal(err)
	}
	got := rules[len(rules)-1]
	if !slices.Equal(splitHBAList(got.Database), []hbaToken{{"my db", true}, {"all", false}}) ||
		!slices.Equal(splitHBAList(got.User), []hbaToken{{"report#user", true}, {"+admins", false}, {`a"b`, true}}) ||
		splitHBAList(got.Options["map"])[0] != (hbaToken{"m m", true}) {
		t.Fatalf("parsed back: %+v", got)
	}
	// A quoted keyword is a name: "all" in quotes matches only a role "all".
	if listMatches(`"all"`, "alice", nil) || !listMatches("all", "alice", nil) {
		t.Errorf("quoted keyword treated as the keyword")
	}
}

// PostgreSQL's tokenizer: a '#' inside quotes is part of a name, the first
// one outside starts a comment; commas in the options field separate
// options.
func TestParseHBAQuotesCommentsAndOptionLists(t *testing.T) {
	rules, _, err := parseHBA("hostssl \"a#b\" all 10.0.0.0/8 scram-sha-256 clientcert=verify-full,map=m # a comment with x=y\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Database != `"a#b"` || rules[0].Method != "scram-sha-256" ||
		rules[0].Options["clientcert"] != "verify-full" || rules[0].Options["map"] != "m" || len(rules[0].Options) != 2 {
		t.Fatalf("parsed: %+v", rules)
	}
}

// FuzzRenderHBA: for arbitrary field values, either ValidateSpec refuses
// the rule and render never writes it, or the rendered pg_hba.conf parses
// back (PostgreSQL's tokenizer rules) to exactly the rule the policy asked
// for, and to nothing else.
func FuzzRenderHBA(f *testing.F) {
	f.Add("all", "all", "10.0.0.0/8", "map", "m")
	f.Add("all all trust\nhost all all 0.0.0.0/0 trust\nlocal all", "all", "10.0.0.0/8", "", "")
	f.Add(`my db,"x"`, `+g,a#b`, "db.example.com", "ldapbasedn", "dc=ex, dc=net")
	f.Add("/^x$", "@f", "::1/128", "clientcert", "verify-full")
	f.Fuzz(func(t *testing.T, database, user, address, optKey, optVal string) {
		r := HBARule{Database: database, User: user, Address: address, Method: "scram-sha-256"}
		if optKey != "" {
			r.Options = map[string]string{optKey: optVal}
		}
		specJSON, err := json.Marshal(spec{HBA: []HBARule{r}})
		if err != nil {
			return
		}
		var s spec
		if err := json.Unmarshal(specJSON, &s); err != nil {
			return // JSON replaced invalid UTF-8: the policy could not say this
		}
		// The grammar part of ValidateSpec (the rest — methods, maps —
		// is not about what the file can hold).
		var v sdk.ValidateSpecResponse
		rule := s.HBA[0]
		rule.Type = "hostssl"
		validateGrammar(&v.Diagnostics, rule, func(k string) sdk.Path { return sdk.Path{"spec", "hba", "0", k} })
		if rule.Address == "" {
			v.Diagnostics.AddAttributeError(sdk.Path{"spec", "hba", "0", "address"}, "a network rule needs an address (CIDR)", "")
		}
		text, renderErr := s.hbaFor(false, nil)
		if v.Diagnostics.HasError() {
			if renderErr == nil {
				t.Fatalf("ValidateSpec refused %+v (%v) but render wrote it:\n%s", s.HBA[0], v.Diagnostics.Err(), text)
			}
			return
		}
		if renderErr != nil {
			t.Fatalf("ValidateSpec accepted %+v but render failed: %v", s.HBA[0], renderErr)
		}
		rules, includes, err := parseHBA(text)
		if err != nil || len(includes) > 0 || len(rules) != 4 {
			t.Fatalf("rendered file parses to %d rules, %v, %v:\n%s", len(rules), includes, err, text)
		}
		want := s.HBA[0]
		got := rules[3]
		if got.Type != "hostssl" || got.Address != want.Address || got.Method != want.Method {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for _, pair := range [][2]string{{got.Database, want.Database}, {got.User, want.User}} {
			toks := splitHBAList(pair[0])
			members := strings.Split(pair[1], ",")
			if len(toks) != len(members) {
				t.Fatalf("%q reads back as %d members, policy has %d", pair[0], len(toks), len(members))
			}
			for i, tok := range toks {
				if tok.Text != members[i] {
					t.Fatalf("member %d reads back as %q, policy says %q", i, tok.Text, members[i])
				}
				special := slices.Contains(hbaKeywords, members[i]) || strings.HasPrefix(members[i], "+") && pair[1] == want.User || strings.HasPrefix(members[i], "/")
				// A keyword, group or regex is bare (it keeps its
				// meaning); a name is quoted exactly when it needs it.
				if wantQuoted := !special && needsQuotes(members[i]); tok.Quoted != wantQuoted {
					t.Fatalf("member %q quoted=%v, want %v", members[i], tok.Quoted, wantQuoted)
				}
			}
		}
		if len(got.Options) != len(want.Options) {
			t.Fatalf("options %v, want %v", got.Options, want.Options)
		}
		for k, v := range want.Options {
			toks := splitHBAList(got.Options[k])
			if len(toks) != 1 || toks[0].Text != v {
				t.Fatalf("option %s reads back as %q, want %q", k, got.Options[k], v)
			}
		}
	})
}

// On a real PostgreSQL: quoted names are read by the server as the policy
// meant them, and the injection is refused before anything is
// written (through the SDK's admission, as the host calls it).
func TestApplyHBAGrammarOnPostgres(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	hbaFile := filepath.Join(pg.DataDir, "pg_hba.conf")
	before, _ := os.ReadFile(hbaFile)
	bad := request(t, pg, `{"hba":[{"database":"all all trust\nhost all all 0.0.0.0/0 trust\nlocal all","user":"all","address":"127.0.0.1/32","method":"scram-sha-256"}]}`, false)
	ap, err := client.Apply(ctx, bad, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := firstError(ap.Diagnostics); !ok || d.Attribute.String() != "spec.hba[0].database" || len(ap.Applied) != 0 {
		t.Fatalf("injection: %v %+v", ap.Diagnostics, ap.Applied)
	}
	if now, _ := os.ReadFile(hbaFile); string(now) != string(before) {
		t.Fatalf("pg_hba.conf changed by a refused apply:\n%s", now)
	}
	rc := request(t, pg, `{"hba":[{"database":"all","user":"`+pg.User+`,report user,a#b","address":"127.0.0.1/32","method":"scram-sha-256"}]}`, false)
	ap, err = client.Apply(ctx, rc, nil, false)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	db := adminSocket(t, pg)
	var users []string
	var errText *string
	if err := db.QueryRow(ctx, "SELECT user_name, error FROM pg_hba_file_rules WHERE type = 'hostssl'").Scan(&users, &errText); err != nil {
		t.Fatal(err)
	}
	if errText != nil || !slices.Equal(users, []string{pg.User, "report user", "a#b"}) {
		t.Fatalf("PostgreSQL reads the users as %q (error %v)", users, errText)
	}
}

func firstError(ds sdk.Diagnostics) (sdk.Diagnostic, bool) {
	for _, d := range ds {
		if d.Severity == sdk.Error {
			return d, true
		}
	}
	return sdk.Diagnostic{}, false
}

// FuzzIdentText: a pg_ident.conf line harden renders from values that
// validate reads back (PostgreSQL's tokenizer) as exactly three fields, the
// policy's values; values that do not validate are never rendered.
func FuzzIdentText(f *testing.F) {
	f.Add("certmap", "reporting client", "app")
	f.Add("m", "cn\nm root postgres", "app")
	f.Add("m", "/^(.*)@example\\.com$", `\1`)
	f.Add("m#x", `a"b`, "+admins")
	f.Fuzz(func(t *testing.T, mapName, systemUser, pgUser string) {
		values := []string{mapName, systemUser, pgUser}
		valid := true
		for _, v := range values {
			if _, err := encodeList(v, identField); err != nil {
				valid = false
			}
		}
		text, err := identText([]IdentMap{{Map: mapName, SystemUser: systemUser, PGUser: pgUser}})
		if !valid {
			if err == nil {
				t.Fatalf("invalid values rendered:\n%s", text)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid values not rendered: %v", err)
		}
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if l = stripComment(l); strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("%d lines:\n%s", len(lines), text)
		}
		fields, err := hbaFields(lines[0])
		if err != nil || len(fields) != 3 {
			t.Fatalf("fields %q, %v", fields, err)
		}
		for i, field := range fields {
			toks := splitHBAList(field)
			if len(toks) != 1 || toks[0].Text != values[i] {
				t.Fatalf("field %d reads back as %+v, want %q", i, toks, values[i])
			}
		}
	})
}
