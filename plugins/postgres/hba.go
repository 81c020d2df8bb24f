package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// HBARule is one pg_hba.conf line, as the policy states it or as parsed
// from the live file.
type HBARule struct {
	Type     string `json:"type" jsonschema:"hostssl (the only network type harden writes) or local"` // local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
	Database string `json:"database" schema:"required"`                                               // all, sameuser, replication, name[,name]
	User     string `json:"user" schema:"required"`                                                   // all, name[,name], +group
	Address  string `json:"address,omitempty" jsonschema:"CIDR, e.g. 10.0.0.0/8 or ::1/128"`
	Method   string `json:"method" schema:"required" jsonschema:"scram-sha-256, cert, reject, ..."`
	// Options are name=value pairs after the method, e.g. clientcert=verify-full, map=certmap.
	Options map[string]string `json:"options,omitempty" jsonschema:"e.g. {clientcert: verify-full, map: certmap}"`
}

// Line renders the rule in pg_hba.conf syntax with stable option order.
func (r HBARule) Line() string {
	f := []string{r.Type, r.Database, r.User}
	if r.Type != "local" {
		f = append(f, r.Address)
	}
	f = append(f, r.Method)
	keys := make([]string, 0, len(r.Options))
	for k := range r.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f = append(f, k+"="+r.Options[k])
	}
	return strings.Join(f, " ")
}

// weakNetworkMethods may never be used on network lines.
var weakNetworkMethods = []string{"trust", "password", "md5", "ident"}

// knownMethods are PostgreSQL's authentication methods.
var knownMethods = []string{"trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi", "ident", "peer", "ldap", "radius", "cert", "pam", "bsd"}

// parseHBA parses pg_hba.conf text (untrusted input: a live server's file).
// include directives are returned for the caller to follow; lines it cannot
// understand are errors with their line number.
func parseHBA(text string) (rules []HBARule, includes []string, err error) {
	for _, line := range logicalLines(text) {
		n := line.number
		fields, ferr := hbaTokenize(line.text)
		if ferr != nil {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: %w", n, ferr)
		}
		if len(fields) == 0 {
			continue
		}
		// PostgreSQL compares the connection type, the address and the
		// method as strings, quoted or not; one value each, and none of
		// them can be empty or hold a blank, comma, '#' or quote.
		single := func(i int, what string) (string, error) {
			if len(fields[i]) != 1 {
				return "", fmt.Errorf("pg_hba.conf line %d: multiple values for the %s", n, what)
			}
			v := fields[i][0].Text
			if v == "" || strings.ContainsAny(v, " \t\r#\",") {
				return "", fmt.Errorf("pg_hba.conf line %d: invalid %s", n, what)
			}
			return v, nil
		}
		kind, err := single(0, "connection type")
		if err != nil {
			return nil, nil, err
		}
		switch kind {
		case "include", "include_if_exists", "include_dir":
			if len(fields) != 2 || len(fields[1]) != 1 {
				return nil, nil, fmt.Errorf("pg_hba.conf line %d: %s needs one file name", n, kind)
			}
			includes = append(includes, kind+" "+fields[1][0].Text)
			continue
		}
		r := HBARule{Type: kind, Options: map[string]string{}}
		want := 5
		if r.Type == "local" {
			want = 4
		}
		if len(fields) < want-1 {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: too few fields", n)
		}
		r.Database, r.User = rawField(fields[1]), rawField(fields[2])
		next := 3
		if r.Type != "local" {
			if r.Address, err = single(3, "address"); err != nil {
				return nil, nil, err
			}
			next = 4
			// "address mask" form: 127.0.0.1 255.255.255.255
			if next < len(fields) && len(fields[next]) == 1 && strings.Count(fields[next][0].Text, ".") == 3 && !strings.Contains(r.Address, "/") {
				if bits, ok := maskBits(fields[next][0].Text); ok {
					r.Address = fmt.Sprintf("%s/%d", r.Address, bits)
					next++
				}
			}
		}
		if next >= len(fields) {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: missing authentication method", n)
		}
		if r.Method, err = single(next, "authentication method"); err != nil {
			return nil, nil, err
		}
		// Each option field is a list (commas outside quotes separate
		// options); PostgreSQL splits each member at its first '='.
		for _, field := range fields[next+1:] {
			for _, o := range field {
				k, v, ok := strings.Cut(o.Text, "=")
				if !ok {
					return nil, nil, fmt.Errorf("pg_hba.conf line %d: option %q is not name=value", n, o.Text)
				}
				if needsQuotes(v) {
					v = quoteToken(v)
				}
				r.Options[k] = v
			}
		}
		if !slices.Contains([]string{"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"}, r.Type) {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: unknown connection type %q", n, r.Type)
		}
		rules = append(rules, r)
	}
	return rules, includes, nil
}

// logicalLine is one line as PostgreSQL's tokenize_auth_file reads it, with
// the number of its first physical line.
type logicalLine struct {
	number int
	text   string
}

// logicalLines splits a pg_hba.conf/pg_ident.conf into lines as PostgreSQL
// does: trailing CR/LF stripped, and a line whose last character is a
// backslash joined with the next one (the backslash removed) — before any
// comment is recognised, so a comment ending in a backslash swallows the
// next line.
func logicalLines(text string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start, open := 0, false
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimRight(raw, "\r\n")
		if !open {
			start = i + 1
		}
		if t, ok := strings.CutSuffix(raw, "\\"); ok {
			cur.WriteString(t)
			open = true
			continue
		}
		cur.WriteString(raw)
		out = append(out, logicalLine{start, cur.String()})
		cur.Reset()
		open = false
	}
	if open {
		out = append(out, logicalLine{start, cur.String()})
	}
	return out
}

// stripComment cuts the line at the first '#' outside double quotes (a
// quoted "#" is part of a name).
func stripComment(line string) string {
	inQuote := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			inQuote = !inQuote
		case '#':
			if !inQuote {
				return line[:i]
			}
		}
	}
	return line
}

// hbaFields splits a line into its fields, each in the canonical raw form
// (rawField) the rest of the package reads with splitHBAList.
func hbaFields(line string) ([]string, error) {
	fields, err := hbaTokenize(line)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		out = append(out, rawField(f))
	}
	return out, nil
}

// hbaTokenize reads a logical line as PostgreSQL's next_field_expand and
// next_token (hba.c) do: blanks separate fields, a comma outside quotes
// continues the field with another member (blanks after it included), a
// '#' outside quotes ends the line. An unterminated quote, which
// PostgreSQL reads to the end of the line, is an error here.
func hbaTokenize(line string) ([][]hbaToken, error) {
	var fields [][]hbaToken
	i := 0
	for i < len(line) {
		var field []hbaToken
		for {
			tok, ok, comma, next, err := nextToken(line, i)
			if err != nil {
				return nil, err
			}
			i = next
			if !ok {
				break
			}
			field = append(field, tok)
			if !comma {
				break
			}
		}
		if field != nil {
			fields = append(fields, field)
		}
	}
	return fields, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// nextToken is PostgreSQL's next_token: it skips blanks and commas, then
// reads up to an unquoted blank, comma or '#'. Double quotes are dropped
// (two of them inside quotes are one literal quote); the token counts as
// quoted only when a quote came before any of its text — a"ll" is the
// keyword all to PostgreSQL. ok is false when nothing was read.
func nextToken(s string, i int) (tok hbaToken, ok, comma bool, next int, err error) {
	for i < len(s) && (isBlank(s[i]) || s[i] == ',') {
		i++
	}
	var buf strings.Builder
	inQuote, wasQuote, sawQuote, initialQuote := false, false, false, false
	for i < len(s) && (!isBlank(s[i]) || inQuote) {
		c := s[i]
		if c == '#' && !inQuote {
			i = len(s)
			break
		}
		if c == ',' && !inQuote {
			comma = true
			break
		}
		if c != '"' || wasQuote {
			buf.WriteByte(c)
		}
		if inQuote && c == '"' {
			wasQuote = !wasQuote
		} else {
			wasQuote = false
		}
		if c == '"' {
			inQuote = !inQuote
			sawQuote = true
			if buf.Len() == 0 {
				initialQuote = true
			}
		}
		i++
	}
	if inQuote {
		return hbaToken{}, false, false, i, fmt.Errorf("unterminated quote")
	}
	return hbaToken{buf.String(), initialQuote}, sawQuote || buf.Len() > 0, comma, i, nil
}

// rawField writes a field's members back in a form that reads (nextToken)
// as the same members: a quoted member quoted; a bare one as it is, or —
// when it holds what a bare token cannot (a blank, a comma, '#', a quote) —
// its first byte bare and the rest quoted, so that it stays unquoted (a
// keyword, +group or /regex keeps its meaning).
func rawField(members []hbaToken) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		switch {
		case m.Quoted:
			parts = append(parts, quoteToken(m.Text))
		case !strings.ContainsAny(m.Text, " \t\r#\",") && m.Text != "":
			parts = append(parts, m.Text)
		case m.Text == "": // not from nextToken: an empty token is a quoted one
			parts = append(parts, `""`)
		default:
			parts = append(parts, m.Text[:1]+quoteToken(m.Text[1:]))
		}
	}
	return strings.Join(parts, ",")
}

func maskBits(mask string) (int, bool) {
	a, err := netip.ParseAddr(mask)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	bits := 0
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) == 0 {
				return bits, true
			}
			bits++
		}
	}
	return bits, true
}

// session is a live client session, for the lockout guard.
type session struct {
	User, Database string
	Addr           netip.Addr
	SSL            bool
	ClientCert     bool
	Replication    bool
	PID            int
}

// listMatches: a quoted member is a name, never a keyword.
func listMatches(list, v string, special func(hbaToken) bool) bool {
	for _, item := range splitHBAList(list) {
		if item.isKeyword("all") || item.Text == v || (special != nil && special(item)) {
			return true
		}
	}
	return false
}

// listHasKeyword: the field names keyword unquoted.
func listHasKeyword(list, keyword string) bool {
	return slices.ContainsFunc(splitHBAList(list), func(t hbaToken) bool { return t.isKeyword(keyword) })
}

// admits reports whether rules (first match wins, as PostgreSQL evaluates
// them) let the session's next connection through, and which line decided.
func admits(rules []HBARule, s session) (bool, string) {
	for _, r := range rules {
		switch r.Type {
		case "local", "hostgssenc":
			continue
		case "hostssl":
			if !s.SSL {
				continue
			}
		case "hostnossl":
			if s.SSL {
				continue
			}
		}
		db := s.Database
		if s.Replication {
			// "all" does not match replication connections; only the
			// replication keyword does.
			if !listHasKeyword(r.Database, "replication") {
				continue
			}
		} else if !listMatches(r.Database, db, func(item hbaToken) bool { return item.isKeyword("sameuser") && db == s.User }) || r.Database == "replication" {
			continue
		}
		if !listMatches(r.User, s.User, nil) {
			continue
		}
		if !addressMatches(r.Address, s.Addr) {
			continue
		}
		switch {
		case r.Method == "reject":
			return false, r.Line()
		case r.Method == "cert" || r.Options["clientcert"] == "verify-full" || r.Options["clientcert"] == "verify-ca":
			return s.ClientCert, r.Line()
		}
		return true, r.Line()
	}
	return false, "no matching line (implicit reject)"
}

func addressMatches(spec string, a netip.Addr) bool {
	switch spec {
	case "all":
		return true
	case "samehost", "samenet":
		return a.IsLoopback()
	}
	p, err := netip.ParsePrefix(spec)
	if err != nil {
		if ip, err2 := netip.ParseAddr(spec); err2 == nil {
			return ip == a.Unmap()
		}
		return false // host names are not resolved by the guard
	}
	return p.Contains(a.Unmap())
}

// includedRules follows the include directives of a pg_hba.conf (PostgreSQL
// 16+: include, include_if_exists, include_dir; paths relative to the file's
// directory) one level deep and returns the rules they add, each with the
// file and line it comes from. The files are read as owner (the data
// directory's, applykit.AsOwner): an include may name any path, and parse
// errors quote what was read.
func includedRules(owner os.FileInfo, hbaFile string, includes []string) (rules []HBARule, origins []string, err error) {
	err = applykit.AsOwner(owner, func() error {
		rules, origins, err = readIncludes(hbaFile, includes)
		return err
	})
	return rules, origins, err
}

func readIncludes(hbaFile string, includes []string) ([]HBARule, []string, error) {
	var rules []HBARule
	var origins []string
	base := filepath.Dir(hbaFile)
	for _, inc := range includes {
		kind, path, _ := strings.Cut(inc, " ")
		path = strings.Trim(path, `"'`)
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, path)
		}
		var files []string
		switch kind {
		case "include_dir":
			matches, _ := filepath.Glob(filepath.Join(path, "*.conf"))
			sort.Strings(matches)
			files = matches
		default:
			files = []string{path}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				if kind == "include_if_exists" && os.IsNotExist(err) {
					continue
				}
				return nil, nil, fmt.Errorf("%s %s: %w", kind, f, err)
			}
			rs, nested, err := parseHBA(string(data))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(nested) > 0 {
				return nil, nil, fmt.Errorf("%s: nested include directives are not followed", f)
			}
			for _, r := range rs {
				rules = append(rules, r)
				origins = append(origins, f)
			}
		}
	}
	return rules, origins, nil
}

// compliant reports why an included rule cannot stay: harden keeps included
// files only when every rule in them meets the policy's own bar.
func compliant(r HBARule) string {
	switch {
	case r.Type == "local":
		return ""
	case r.Type == "hostnossl" && r.Method == "reject":
		return ""
	case r.Type != "hostssl":
		return r.Type + " line would admit connections without TLS"
	case slices.Contains(weakNetworkMethods, r.Method):
		return r.Method + " on a network line"
	}
	return ""
}
