package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// bucketPolicy is an S3 bucket policy; statements are kept as raw JSON so
// the operator's own statements survive a merge byte for byte (up to
// re-indentation).
type bucketPolicy struct {
	Version   string            `json:"Version"`
	ID        string            `json:"Id,omitempty"`
	Statement []json.RawMessage `json:"Statement"`
}

// hardenSid marks harden's statements: a merge replaces exactly those.
const hardenSid = "Harden"

// parsePolicy reads a bucket policy (untrusted input); "" is no policy.
func parsePolicy(text string) (bucketPolicy, error) {
	p := bucketPolicy{Version: "2012-10-17"}
	if strings.TrimSpace(text) == "" {
		return p, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return p, fmt.Errorf("bucket policy is not a JSON object: %w", err)
	}
	if v, ok := raw["Version"]; ok {
		if err := json.Unmarshal(v, &p.Version); err != nil {
			return p, fmt.Errorf("bucket policy Version: %w", err)
		}
	}
	if v, ok := raw["Id"]; ok {
		_ = json.Unmarshal(v, &p.ID)
	}
	st, ok := raw["Statement"]
	if !ok {
		return p, nil
	}
	// A single statement may be an object instead of a list.
	if t := bytes.TrimSpace(st); len(t) > 0 && t[0] == '{' {
		p.Statement = []json.RawMessage{t}
		return p, nil
	}
	if err := json.Unmarshal(st, &p.Statement); err != nil {
		return p, fmt.Errorf("bucket policy Statement: %w", err)
	}
	return p, nil
}

func sidOf(st json.RawMessage) string {
	var s struct {
		Sid string `json:"Sid"`
	}
	_ = json.Unmarshal(st, &s)
	return s.Sid
}

// hardenStatements are the denies harden owns for bucket b.
func hardenStatements(b string, s spec) []map[string]any {
	objects := "arn:aws:s3:::" + b + "/*"
	out := []map[string]any{
		{"Sid": hardenSid + "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
			"Resource": []string{"arn:aws:s3:::" + b, objects}, "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}},
		{"Sid": hardenSid + "DenyUnencryptedUpload", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
			"Resource": objects, "Condition": map[string]any{"Null": map[string]any{"s3:x-amz-server-side-encryption": "true"}}},
		{"Sid": hardenSid + "DenyUnapprovedAlgorithm", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
			"Resource": objects, "Condition": map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption": approvedAlgorithms(s)}}},
	}
	for i, p := range s.SensitivePrefixes {
		out = append(out, map[string]any{"Sid": fmt.Sprintf("%sSensitiveRequireKMS%d", hardenSid, i), "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
			"Resource": "arn:aws:s3:::" + b + "/" + p + "*", "Condition": map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption": "aws:kms"}}})
	}
	return out
}

// approvedAlgorithms: the default's algorithm, and SSE-KMS (stronger) too.
func approvedAlgorithms(s spec) []string {
	if s.SSE.algorithm() == "aws:kms" {
		return []string{"aws:kms"}
	}
	return []string{"AES256", "aws:kms"}
}

// mergePolicy keeps every statement that is not harden's and puts harden's
// current ones after them. Merging twice gives the same text.
func mergePolicy(cur bucketPolicy, b string, s spec) (string, error) {
	out := bucketPolicy{Version: cur.Version, ID: cur.ID}
	if out.Version == "" {
		out.Version = "2012-10-17"
	}
	for _, st := range cur.Statement {
		if !strings.HasPrefix(sidOf(st), hardenSid) {
			out.Statement = append(out.Statement, st)
		}
	}
	for _, st := range hardenStatements(b, s) {
		raw, err := json.Marshal(st)
		if err != nil {
			return "", err
		}
		out.Statement = append(out.Statement, raw)
	}
	return canonical(out)
}

// canonical renders a policy in one form, so equal policies compare equal.
func canonical(p bucketPolicy) (string, error) {
	var stmts []any
	for _, st := range p.Statement {
		var v any
		dec := json.NewDecoder(bytes.NewReader(st))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		stmts = append(stmts, normalize(v))
	}
	m := map[string]any{"Version": p.Version, "Statement": stmts}
	if p.ID != "" {
		m["Id"] = p.ID
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// normalize gives equal statements one form: a one-element list is its
// element (servers store ["x"] as "x" and back) and lists of strings are
// sorted; maps are sorted by json.Marshal.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		if len(x) == 1 {
			return normalize(x[0])
		}
		strs := true
		for i, e := range x {
			x[i] = normalize(e)
			_, ok := x[i].(string)
			strs = strs && ok
		}
		if strs {
			sort.Slice(x, func(i, j int) bool { return x[i].(string) < x[j].(string) })
		}
		return x
	}
	return v
}

// A requiredDeny is one deny the bucket policy must carry, judged by what
// its statements say (Effect, Principal, Action, Resource, Condition), not
// by their Sid: a statement named HardenDenyInsecureTransport that allows,
// or that denies only under an extra condition, does not count.
type requiredDeny struct {
	// id ties live requests to the deny they exercise (denyTransport, ...).
	id string
	// sid is the statement harden applies for it, named in the evidence.
	sid  string
	what string
	// Every action and resource the statement must cover (patterns in the
	// statement may be broader: s3:*, arn:aws:s3:::b/*).
	actions, resources []string
	// The one condition the deny must rest on: an operator, its key, and
	// the values. For a negated operator (StringNotEquals) the statement's
	// values are the allowed set: it must be non-empty and within values;
	// otherwise the values must match exactly (case-insensitively).
	op, key string
	values  []string
}

const (
	denyTransport   = "transport"
	denyUnencrypted = "unencrypted"
	denyAlgorithm   = "algorithm"
	denyPrefix      = "prefix:" // + the sensitive prefix
)

// requiredDenies are the denies spec s needs on bucket b — the content of
// hardenStatements, in the form a judge can compare any statement with.
func requiredDenies(b string, s spec) []requiredDeny {
	bucket, objects := "arn:aws:s3:::"+b, "arn:aws:s3:::"+b+"/*"
	out := []requiredDeny{
		{id: denyTransport, sid: hardenSid + "DenyInsecureTransport", what: "every S3 action over plaintext transport (aws:SecureTransport=false)",
			actions: []string{"s3:*"}, resources: []string{bucket, objects}, op: "Bool", key: "aws:SecureTransport", values: []string{"false"}},
		{id: denyUnencrypted, sid: hardenSid + "DenyUnencryptedUpload", what: "PutObject without s3:x-amz-server-side-encryption (Null=true)",
			actions: []string{"s3:PutObject"}, resources: []string{objects}, op: "Null", key: "s3:x-amz-server-side-encryption", values: []string{"true"}},
		{id: denyAlgorithm, sid: hardenSid + "DenyUnapprovedAlgorithm", what: "PutObject with an algorithm other than " + strings.Join(approvedAlgorithms(s), " or "),
			actions: []string{"s3:PutObject"}, resources: []string{objects}, op: "StringNotEquals", key: "s3:x-amz-server-side-encryption", values: approvedAlgorithms(s)},
	}
	for i, p := range s.SensitivePrefixes {
		out = append(out, requiredDeny{id: denyPrefix + p, sid: fmt.Sprintf("%sSensitiveRequireKMS%d", hardenSid, i), what: "PutObject under " + p + " without aws:kms",
			actions: []string{"s3:PutObject"}, resources: []string{"arn:aws:s3:::" + b + "/" + p + "*"}, op: "StringNotEquals", key: "s3:x-amz-server-side-encryption", values: []string{"aws:kms"}})
	}
	return out
}

// statementLabel names a statement in evidence: its Sid, or its position.
func statementLabel(i int, st map[string]any) string {
	if sid, _ := st["Sid"].(string); sid != "" {
		return "statement " + sid
	}
	return fmt.Sprintf("statement #%d", i+1)
}

// judgeDeny finds a statement of p that implements r. It returns which
// one, or — when none does — why harden's own statement (by Sid), if
// present, falls short.
func judgeDeny(p bucketPolicy, r requiredDeny) (by string, ok bool, why string) {
	why = "no statement with this content (and none named " + r.sid + ")"
	for i, raw := range p.Statement {
		var st map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&st) != nil {
			continue
		}
		miss := r.mismatch(st)
		if miss == "" {
			return statementLabel(i, st), true, ""
		}
		if st["Sid"] == r.sid {
			why = r.sid + " does not implement it: " + miss
		}
	}
	return "", false, why
}

// mismatch says why statement st does not implement r ("" when it does).
func (r requiredDeny) mismatch(st map[string]any) string {
	if e, _ := st["Effect"].(string); e != "Deny" {
		return fmt.Sprintf("Effect is %v, not Deny", st["Effect"])
	}
	for _, k := range []string{"NotPrincipal", "NotAction", "NotResource"} {
		if _, ok := st[k]; ok {
			return k + " narrows it"
		}
	}
	if !everyone(st["Principal"]) {
		return fmt.Sprintf("Principal %v is not everyone (*)", st["Principal"])
	}
	for _, a := range r.actions {
		if !slices.ContainsFunc(stringsOf(st["Action"]), func(p string) bool { return globMatch(strings.ToLower(p), strings.ToLower(a)) }) {
			return fmt.Sprintf("Action %v does not cover %s", st["Action"], a)
		}
	}
	for _, res := range r.resources {
		if !slices.ContainsFunc(stringsOf(st["Resource"]), func(p string) bool { return globMatch(p, res) }) {
			return fmt.Sprintf("Resource %v does not cover %s", st["Resource"], res)
		}
	}
	cond, _ := st["Condition"].(map[string]any)
	// Any other condition narrows the deny: it must rest on this one alone.
	if len(cond) != 1 {
		return fmt.Sprintf("Condition must be exactly %s %s, is %v", r.op, r.key, st["Condition"])
	}
	keys, ok := cond[r.op].(map[string]any)
	if !ok || len(keys) != 1 {
		return fmt.Sprintf("Condition must be exactly %s %s, is %v", r.op, r.key, st["Condition"])
	}
	var values []string
	for k, v := range keys {
		if !strings.EqualFold(k, r.key) {
			return fmt.Sprintf("Condition %s is on %s, not %s", r.op, k, r.key)
		}
		values = stringsOf(v)
	}
	if strings.HasPrefix(r.op, "StringNot") {
		if len(values) == 0 || slices.ContainsFunc(values, func(v string) bool { return !slices.Contains(r.values, v) }) {
			return fmt.Sprintf("%s %s allows %v, not only %v", r.op, r.key, values, r.values)
		}
		return ""
	}
	if len(values) != len(r.values) || slices.ContainsFunc(values, func(v string) bool {
		return !slices.ContainsFunc(r.values, func(w string) bool { return strings.EqualFold(v, w) })
	}) {
		return fmt.Sprintf("%s %s is %v, not %v", r.op, r.key, values, r.values)
	}
	return ""
}

// everyone: Principal "*" or {"AWS": "*"}.
func everyone(p any) bool {
	switch x := p.(type) {
	case string:
		return x == "*"
	case map[string]any:
		return slices.Contains(stringsOf(x["AWS"]), "*")
	}
	return false
}

// stringsOf reads a policy value that may be one value or a list of them
// (strings, booleans or numbers, as servers re-serialise them).
func stringsOf(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	case string:
		return []string{x}
	}
	return []string{fmt.Sprint(v)}
}

// globMatch matches IAM-style patterns: * is any run of characters, ? one.
// A literal * in s is matched only by a * in the pattern, so a pattern
// covers a resource pattern only when it is at least as broad.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case px < len(pattern) && (pattern[px] == '?' && s[sx] != '*' || pattern[px] == s[sx]):
			px++
			sx++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
