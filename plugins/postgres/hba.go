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
	Type     string `json:"type"`     // local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
	Database string `json:"database"` // all, sameuser, replication, name[,name]
	User     string `json:"user"`     // all, name[,name], +group
	Address  string `json:"address,omitempty"`
	Method   string `json:"method"`
	// Options are name=value pairs after the method, e.g. clientcert=verify-full, map=certmap.
	Options map[string]string `json:"options,omitempty"`
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
	for n, raw := range strings.Split(text, "\n") {
		line := stripComment(raw)
		f, ferr := hbaFields(line)
		if ferr != nil {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: %w", n+1, ferr)
		}
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "include", "include_if_exists", "include_dir":
			if len(f) != 2 {
				return nil, nil, fmt.Errorf("pg_hba.conf line %d: %s needs one file name", n+1, f[0])
			}
			includes = append(includes, f[0]+" "+f[1])
			continue
		}
		r := HBARule{Type: f[0], Options: map[string]string{}}
		rest := f[1:]
		want := 4
		if r.Type == "local" {
			want = 3
		}
		if len(rest) < want-1 {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: too few fields", n+1)
		}
		r.Database, r.User = rest[0], rest[1]
		rest = rest[2:]
		if r.Type != "local" {
			r.Address, rest = rest[0], rest[1:]
			// "address mask" form: 127.0.0.1 255.255.255.255
			if len(rest) > 0 && strings.Count(rest[0], ".") == 3 && !strings.Contains(r.Address, "/") {
				if bits, ok := maskBits(rest[0]); ok {
					r.Address = fmt.Sprintf("%s/%d", r.Address, bits)
					rest = rest[1:]
				}
			}
		}
		if len(rest) == 0 {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: missing authentication method", n+1)
		}
		r.Method = rest[0]
		// Each option field is a list (commas outside quotes separate
		// options); PostgreSQL splits each member at its first '='.
		for _, field := range rest[1:] {
			for _, o := range splitHBAList(field) {
				k, v, ok := strings.Cut(o.Text, "=")
				if !ok {
					return nil, nil, fmt.Errorf("pg_hba.conf line %d: option %q is not name=value", n+1, o.Text)
				}
				if needsQuotes(v) {
					v = quoteToken(v)
				}
				r.Options[k] = v
			}
		}
		if !slices.Contains([]string{"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"}, r.Type) {
			return nil, nil, fmt.Errorf("pg_hba.conf line %d: unknown connection type %q", n+1, r.Type)
		}
		rules = append(rules, r)
	}
	return rules, includes, nil
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

// hbaFields splits on whitespace, keeping double-quoted tokens whole.
func hbaFields(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted, inTok := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
			inTok = true
			cur.WriteRune(r)
		case !quoted && (r == ' ' || r == '\t' || r == '\r'):
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
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
