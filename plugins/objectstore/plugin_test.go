package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		Plugin: objectStore{},
		Name:   "objectstore",
		Target: func(addr string) sdk.Target {
			conn, _ := json.Marshal(map[string]any{"endpoint": "https://" + addr})
			return sdk.NewTarget("lake", conn, []byte(`{"bucket": "lake"}`), map[string][]byte{"access_key": []byte("a"), "secret_key": []byte("s")})
		},
	})
}

// The operator's statements survive a merge; harden's are replaced, not
// duplicated; merging twice gives the same policy.
func TestMergePolicyKeepsOperatorStatements(t *testing.T) {
	operator := `{"Version":"2012-10-17","Id":"ops","Statement":[
	  {"Sid":"AllowAnalytics","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:role/analytics"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/curated/*"},
	  {"Sid":"HardenDenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"stale"}]}`
	s := spec{Bucket: "lake", SensitivePrefixes: []string{"pii/"}}
	cur, err := parsePolicy(operator)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := mergePolicy(cur, "lake", s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AllowAnalytics", "arn:aws:iam::1:role/analytics", `"Id":"ops"`, "HardenDenyUnencryptedUpload", "HardenSensitiveRequireKMS0", "lake/pii/*", "aws:SecureTransport"} {
		if !strings.Contains(merged, want) {
			t.Errorf("merged policy lacks %s:\n%s", want, merged)
		}
	}
	if strings.Contains(merged, "stale") || strings.Count(merged, "HardenDenyInsecureTransport") != 1 {
		t.Errorf("harden's stale statement kept or duplicated:\n%s", merged)
	}
	again, _ := parsePolicy(merged)
	twice, _ := mergePolicy(again, "lake", s)
	if twice != merged {
		t.Errorf("merge is not idempotent:\n%s\n%s", merged, twice)
	}
	// A single statement given as an object, and no policy at all.
	if p, err := parsePolicy(`{"Statement":{"Sid":"One","Effect":"Allow"}}`); err != nil || len(p.Statement) != 1 {
		t.Errorf("single statement: %v %d", err, len(p.Statement))
	}
	if _, err := parsePolicy(`[1,2]`); err == nil {
		t.Errorf("a JSON array accepted as a policy")
	}
}

// FuzzParsePolicy: a live bucket policy is untrusted input.
func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow"}]}`)
	f.Add(`{"Statement":{"Sid":"HardenX"}}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := parsePolicy(text)
		if err != nil {
			return
		}
		merged, err := mergePolicy(p, "lake", spec{Bucket: "lake"})
		if err != nil {
			return
		}
		back, err := parsePolicy(merged)
		if err != nil {
			t.Fatalf("merged policy does not parse: %v\n%s", err, merged)
		}
		if again, _ := mergePolicy(back, "lake", spec{Bucket: "lake"}); again != merged {
			t.Fatalf("merge not idempotent for %q", text)
		}
	})
}

// connection.ca_file is read bounded: /dev/zero is an error naming it, not
// a plugin that runs out of memory.
func TestCAFileBounded(t *testing.T) {
	if _, err := caPool("/dev/zero"); err == nil || !strings.Contains(err.Error(), "connection.ca_file /dev/zero") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("caPool(/dev/zero) = %v", err)
	}
}
