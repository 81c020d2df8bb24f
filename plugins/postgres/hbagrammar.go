package main

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pg_hba.conf and pg_ident.conf grammar, as PostgreSQL's tokenizer
// (hba.c next_token) reads it: blanks separate fields; '#' outside double
// quotes starts a comment; double quotes quote (a literal quote is two);
// commas outside quotes separate list members (blanks after a comma
// included); a line ending in a backslash continues on the next; a member
// that starts with a quote is never a keyword (all, sameuser, samerole,
// samegroup, replication), a group (+name), a file inclusion (@file) or a
// regular expression (/re) — one quoted later (a"ll") still is.
//
// Policy values are rendered under these rules: a member that needs it is
// double-quoted; what quoting cannot express is rejected in ValidateSpec:
// control characters and newlines anywhere, an empty list member, @file
// inclusions, a +group or /regex member that would need quotes (quoting
// would make it a literal name), tokens over 255 bytes (PostgreSQL up to
// 15 skips longer ones). A policy's keyword (e.g. all) is always the
// keyword.

// hbaToken is one list member of a field: its text with quotes removed,
// and whether it started with a quote (PostgreSQL's initial_quote).
type hbaToken struct {
	Text   string
	Quoted bool
}

// maxToken: PostgreSQL <= 15 refuses tokens of 256 bytes or more.
const maxToken = 255

var hbaKeywords = []string{"all", "sameuser", "samerole", "samegroup", "replication"}

// splitHBAList decodes a field's raw text (as parseHBA returns it, or as
// encodeList renders it) into its list members, as PostgreSQL reads them
// (nextToken).
func splitHBAList(field string) []hbaToken {
	fields, err := hbaTokenize(field)
	if err != nil || len(fields) == 0 {
		return []hbaToken{{Text: field}}
	}
	var out []hbaToken
	for _, f := range fields {
		out = append(out, f...)
	}
	return out
}

// isKeyword: an unquoted keyword token.
func (t hbaToken) isKeyword(words ...string) bool {
	return !t.Quoted && slices.Contains(words, t.Text)
}

// needsQuotes: a bare token with these would not read back as itself.
func needsQuotes(s string) bool {
	return s == "" || strings.ContainsAny(s, " \t#\",\\") || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "@") || strings.HasPrefix(s, "/")
}

func quoteToken(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// checkText rejects what no quoting can carry. It never echoes the value.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("has a control character or newline (%U) at byte %d", r, i)
		}
	}
	return nil
}

// fieldKind is what a member list is: pg_hba's database or user field, or
// a pg_ident field.
type fieldKind int

const (
	databaseField fieldKind = iota
	userField
	identField // a single token: map name, system user or role
)

// encodeList renders a policy's comma-separated list for a pg_hba field.
func encodeList(value string, kind fieldKind) (string, error) {
	if err := checkText(value); err != nil {
		return "", err
	}
	if value == "" {
		return "", errors.New("is empty")
	}
	members := strings.Split(value, ",")
	if kind == identField && len(members) > 1 {
		// pg_ident fields are one token: the comma is part of the name.
		members = []string{value}
	}
	out := make([]string, 0, len(members))
	for i, m := range members {
		enc, err := encodeMember(m, kind)
		if err != nil {
			if len(members) > 1 {
				return "", fmt.Errorf("list member %d %w", i+1, err)
			}
			return "", err
		}
		out = append(out, enc)
	}
	return strings.Join(out, ","), nil
}

func encodeMember(m string, kind fieldKind) (string, error) {
	switch {
	case m == "":
		return "", errors.New("is empty (a stray comma?)")
	case len(m) > maxToken:
		return "", fmt.Errorf("is longer than %d bytes", maxToken)
	case strings.HasPrefix(m, "@"):
		return "", errors.New("starts with @ (a file inclusion): list the names in the policy instead")
	case kind != identField && slices.Contains(hbaKeywords, m):
		return m, nil
	case kind == identField && m == "all":
		return m, nil
	case strings.HasPrefix(m, "/") || (kind != databaseField && strings.HasPrefix(m, "+")):
		// A regular expression or a group means that only unquoted.
		if rest := m[1:]; rest == "" || strings.ContainsAny(rest, " \t#\",") {
			return "", fmt.Errorf("starts with %q and is empty after it or has a blank, '#', '\"' or ',' (quoting would make it a plain name)", m[:1])
		}
		return m, nil
	case needsQuotes(m):
		return quoteToken(m), nil
	}
	return m, nil
}

var optionName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// encodeOption renders name=value for pg_hba's options.
func encodeOption(name, value string) (string, error) {
	if !optionName.MatchString(name) {
		return "", errors.New("option name must be lowercase letters, digits and _")
	}
	if err := checkText(value); err != nil {
		return "", err
	}
	enc := value
	if needsQuotes(value) {
		enc = quoteToken(value)
	}
	if len(name)+1+len(value) > maxToken {
		return "", fmt.Errorf("is longer than %d bytes with its name", maxToken)
	}
	return enc, nil
}

var hostName = regexp.MustCompile(`^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// checkAddress accepts what pg_hba's address field takes as one token: a
// CIDR, all, samehost, samenet or a host name (.suffix matches a domain).
func checkAddress(a string) error {
	if err := checkText(a); err != nil {
		return err
	}
	switch {
	case a == "all" || a == "samehost" || a == "samenet":
		return nil
	case strings.Contains(a, "/"):
		if _, err := netip.ParsePrefix(a); err != nil {
			return errors.New("is not a CIDR (e.g. 10.0.0.0/8 or ::1/128)")
		}
		return nil
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return errors.New("has no prefix length: write it as a CIDR (…/32 or …/128)")
	}
	if len(a) > maxToken || !hostName.MatchString(a) {
		return errors.New("is not a CIDR, all, samehost, samenet or a host name")
	}
	return nil
}

// hbaFieldError is a policy value that cannot be rendered, with the field
// it is in (for the attribute path).
type hbaFieldError struct {
	Field string // database, user, address, options
	Key   string // the option name, for options
	Err   error
}

func (e *hbaFieldError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("options.%s %v", e.Key, e.Err)
	}
	return e.Field + " " + e.Err.Error()
}

// encoded renders a policy rule's fields in pg_hba syntax (what Line
// writes), or says which field cannot be.
func (r HBARule) encoded() (HBARule, error) {
	out := r
	var err error
	if out.Database, err = encodeList(r.Database, databaseField); err != nil {
		return r, &hbaFieldError{Field: "database", Err: err}
	}
	if out.User, err = encodeList(r.User, userField); err != nil {
		return r, &hbaFieldError{Field: "user", Err: err}
	}
	if r.Type == "local" {
		if r.Address != "" {
			return r, &hbaFieldError{Field: "address", Err: errors.New("is set on a local rule (local rules have no address)")}
		}
	} else if err := checkAddress(r.Address); err != nil {
		return r, &hbaFieldError{Field: "address", Err: err}
	}
	if !slices.Contains(knownMethods, r.Method) {
		return r, &hbaFieldError{Field: "method", Err: errors.New("is not a known authentication method")}
	}
	out.Options = make(map[string]string, len(r.Options))
	for k, v := range r.Options {
		enc, err := encodeOption(k, v)
		if err != nil {
			return r, &hbaFieldError{Field: "options", Key: k, Err: err}
		}
		out.Options[k] = enc
	}
	return out, nil
}

// encodeRules renders a list of policy rules.
func encodeRules(rules []HBARule) ([]HBARule, error) {
	out := make([]HBARule, 0, len(rules))
	for _, r := range rules {
		e, err := r.encoded()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
