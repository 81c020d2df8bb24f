package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
