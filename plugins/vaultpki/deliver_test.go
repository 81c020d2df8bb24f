package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// decodeBundle is encodeBundle's inverse: the files a client gets back.
func decodeBundle(data map[string]any) (map[string][]byte, error) {
	out := make(map[string][]byte, len(data))
	for key, v := range data {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("key %s is not a string", key)
		}
		if name, bin := strings.CutSuffix(key, binarySuffix); bin {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", key, err)
			}
			out[name] = b
			continue
		}
		out[key] = []byte(s)
	}
	return out, nil
}

// offlineRequest is a request for a Vault at addr (no server needed).
func offlineRequest(addr string, clients ...sdk.ClientRef) sdk.RequestContext {
	conn, _ := json.Marshal(map[string]any{"address": "https://" + addr})
	return sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), Clients: clients,
		Targets: []sdk.TargetRef{{Name: "vault", Plugin: "vaultpki"}}},
		Target: sdk.NewTarget("vault", conn, []byte(`{}`), map[string][]byte{"token": []byte("t")})}
}

// The policy's clients are held to names and paths that cannot widen a
// Vault policy or name another secret than the one shown.
func TestLoadClientsRefuses(t *testing.T) {
	for _, tc := range []struct {
		clients []sdk.ClientRef
		says    string
	}{
		{[]sdk.ClientRef{{Name: "Spark ETL", Dir: "/x"}}, "name refused"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "secret/data/*"}}, "no glob character"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "secret/data/clients/+/x"}}, "no glob character"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "secret/data/../sys/policy"}}, "'..'"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "secret/data/a//b"}}, "no empty"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "secret/spark-etl"}}, "mount/data/path"},
		{[]sdk.ClientRef{{Name: "spark-etl", VaultKV: "pki_int/data/spark-etl"}}, "one of the PKI or transit mounts"},
		{[]sdk.ClientRef{{Name: "a", VaultKV: "secret/data/shared"}, {Name: "b", VaultKV: "secret/data/shared"}}, "both deliver to secret/data/shared"},
	} {
		var d sdk.Diagnostics
		if st, ok := load(offlineRequest("127.0.0.1:1", tc.clients...), &d); ok || st != nil || !strings.Contains(fmt.Sprint(d.Err()), tc.says) {
			t.Errorf("%+v: ok=%v %v (want %q)", tc.clients, ok, d.Err(), tc.says)
		}
	}
	var d sdk.Diagnostics
	st, ok := load(offlineRequest("127.0.0.1:1", sdk.ClientRef{Name: "spark-etl", VaultKV: "secret/data/clients/spark-etl"}, sdk.ClientRef{Name: "billing", Dir: "/x"}), &d)
	if !ok || strings.Join(st.clientNames, ",") != "harden-admin,spark-etl,billing" || len(st.kv) != 1 || st.kv[0].dataPath() != "secret/data/clients/spark-etl" || st.kv[0].metadataPath() != "secret/metadata/clients/spark-etl" {
		t.Fatalf("load: %v %+v", d.Err(), st)
	}
}

// DeliverSecret refuses what the policy does not declare before it
// contacts Vault (the address here answers nothing).
func TestDeliverRefusedOffline(t *testing.T) {
	spark := sdk.ClientRef{Name: "spark-etl", VaultKV: "secret/data/clients/spark-etl"}
	billing := sdk.ClientRef{Name: "billing", Dir: "/etc/harden/clients/billing"}
	crt := map[string][]byte{"tls.crt": []byte("PEM")}
	for _, tc := range []struct {
		client, path string
		data         map[string][]byte
		says         string
	}{
		{"intruder", "secret/data/clients/intruder", crt, `client "intruder" is not one of the policy's clients`},
		{"billing", "secret/data/clients/billing", crt, "delivered to a directory"},
		{"spark-etl", "secret/data/clients/other", crt, "is not client spark-etl's deliver.vault_kv"},
		{"spark-etl", spark.VaultKV, map[string][]byte{"tls.key": []byte("KEY")}, "no tls.crt"},
		{"spark-etl", spark.VaultKV, nil, "the bundle is empty"},
		{"spark-etl", spark.VaultKV, map[string][]byte{"tls.crt": []byte("PEM"), "x.base64": []byte("text")}, "marks a base64-encoded binary file"},
	} {
		var r sdk.DeliverSecretResponse
		vaultPKI{}.DeliverSecret(context.Background(), sdk.DeliverSecretRequest{RequestContext: offlineRequest("127.0.0.1:1", spark, billing), Client: tc.client, Path: tc.path, Data: tc.data}, &r)
		if !r.Diagnostics.HasError() || r.Version != 0 || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), tc.says) || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was written") {
			t.Errorf("%s to %s: %v (want %q)", tc.client, tc.path, r.Diagnostics.Err(), tc.says)
		}
		if strings.Contains(fmt.Sprint(r.Diagnostics), "KEY") {
			t.Errorf("a value of the bundle is in the diagnostics: %v", r.Diagnostics)
		}
	}
	// kv_version is the plugin's own entry: the host may not set it.
	var r sdk.DeliverSecretResponse
	vaultPKI{}.DeliverSecret(context.Background(), sdk.DeliverSecretRequest{RequestContext: offlineRequest("127.0.0.1:1", spark), Client: "spark-etl", Path: spark.VaultKV,
		Data: crt, Metadata: map[string]string{"serial": "01", kvVersionKey: "7"}}, &r)
	if !r.Diagnostics.HasError() || r.Version != 0 || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "the entry kv_version is the plugin's own") || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was written") {
		t.Errorf("metadata with kv_version: %v", r.Diagnostics.Err())
	}
}

// A delivery in flight ends with its context (the host's Stop): the
// conformance harness's policy declares no client, so its Stop check
// cannot reach Vault through DeliverSecret; this one does.
func TestDeliverStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan sdk.DeliverSecretResponse, 1)
	spark := sdk.ClientRef{Name: "spark-etl", VaultKV: "secret/data/clients/spark-etl"}
	go func() {
		var r sdk.DeliverSecretResponse
		vaultPKI{}.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: offlineRequest(ln.Addr().String(), spark), Client: "spark-etl", Path: spark.VaultKV,
			Data: map[string][]byte{"tls.crt": []byte("PEM")}}, &r)
		done <- r
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case r := <-done:
		t.Fatalf("the delivery ended without contacting Vault: %v", r.Diagnostics.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never contacted Vault")
	}
	select {
	case r := <-done:
		t.Fatalf("the delivery ended on its own against a Vault that never answers: %v", r.Diagnostics.Err())
	case <-time.After(2 * time.Second):
	}
	cancel()
	select {
	case r := <-done:
		if !r.Diagnostics.HasError() || r.Version != 0 {
			t.Errorf("a stopped delivery: %v version %d", r.Diagnostics.Err(), r.Version)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the delivery still runs 2 s after its context ended")
	}
}

func TestEncodeBundle(t *testing.T) {
	p12 := []byte{0x30, 0x82, 0xff, 0xfe, 0x00, 0x01}
	data, err := encodeBundle(map[string][]byte{"tls.crt": []byte("PEM\n"), "keystore.p12": p12, "warehouse-pg/pg_service.conf": []byte("[x]\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"tls.crt": "PEM\n", "keystore.p12.base64": base64.StdEncoding.EncodeToString(p12), "warehouse-pg/pg_service.conf": "[x]\n"}
	if !maps.Equal(data, want) {
		t.Fatalf("encodeBundle = %v, want %v", data, want)
	}
	if d := bundleDiff(map[string]any{"data": want, "metadata": map[string]any{"custom_metadata": map[string]any{"serial": "01"}}}, want, map[string]string{"serial": "01"}); len(d) != 0 {
		t.Errorf("bundleDiff of the same: %v", d)
	}
	read := map[string]any{"data": map[string]any{"tls.crt": "OTHER", "extra": "x"}, "metadata": map[string]any{"custom_metadata": map[string]any{"serial": "02"}}}
	d := strings.Join(bundleDiff(read, want, map[string]string{"serial": "01", "issuer": "ca"}), "; ")
	for _, s := range []string{"tls.crt differs", "keystore.p12.base64 missing", "extra not sent", "custom_metadata serial differs", "custom_metadata issuer differs"} {
		if !strings.Contains(d, s) {
			t.Errorf("bundleDiff says %q, not %q", d, s)
		}
	}
	if strings.Contains(d, "OTHER") || strings.Contains(d, "PEM") {
		t.Errorf("bundleDiff shows values: %s", d)
	}
}

// Every bundle encodes to text values only, and decodes back to the same
// files, byte for byte.
func FuzzEncodeBundle(f *testing.F) {
	f.Add("keystore.p12", []byte{0x30, 0x82, 0xff}, "tls.key", []byte("-----BEGIN PRIVATE KEY-----\n"))
	f.Add("a.base64", []byte{0xff}, "a", []byte{0xfe})
	f.Add("x", []byte(""), "y\x00", []byte("\x00\u2028"))
	f.Fuzz(func(t *testing.T, n1 string, v1 []byte, n2 string, v2 []byte) {
		files := map[string][]byte{"tls.crt": []byte("PEM"), n1: v1, n2: v2}
		data, err := encodeBundle(files)
		if err != nil {
			return
		}
		// What Vault stores and returns: JSON.
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string]any
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		for k, v := range stored {
			if s, ok := v.(string); !ok || !utf8.ValidString(s) {
				t.Fatalf("key %q is not text", k)
			}
		}
		back, err := decodeBundle(stored)
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(files) {
			t.Fatalf("%d files back from %d", len(back), len(files))
		}
		for name, want := range files {
			if !bytes.Equal(back[name], want) {
				t.Fatalf("file %q does not come back as sent", name)
			}
		}
	})
}

// A KV path either splits into a mount and a path that rebuild it, with a
// policy that names exactly that one data path (no glob, no dot segment),
// or is refused.
func FuzzParseKVPath(f *testing.F) {
	for _, s := range []string{"secret/data/clients/spark-etl", "secret/data/*", "a/data/b/data/c", "a/data/../b", "kv/data/x.y/z_1", "/data/x", "a/data/", "a/data/b/"} {
		f.Add(s)
	}
	pathLine := regexp.MustCompile(`(?m)^path "([^"]*)" \{$`)
	f.Fuzz(func(t *testing.T, p string) {
		mount, rest, err := parseKVPath(p)
		if err != nil {
			return
		}
		if mount+"/data/"+rest != p {
			t.Fatalf("%q splits into %q and %q", p, mount, rest)
		}
		if strings.ContainsAny(p, "*+\"\\ \n{}") {
			t.Fatalf("%q accepted with a glob or quoting character", p)
		}
		for _, s := range strings.Split(rest, "/") {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("%q accepted with segment %q", p, s)
			}
		}
		k := kvClient{name: "c", mount: mount, rest: rest}
		m := pathLine.FindAllStringSubmatch(clientPolicy(k), -1)
		if len(m) != 1 || m[0][1] != p || strings.Count(clientPolicy(k), "path ") != 1 {
			t.Fatalf("the policy of %q names %v", p, m)
		}
	})
}

// bundleFacts against KV v2 metadata answers: only a current version that
// is neither deleted nor destroyed, with custom_metadata naming a serial and
// an RFC 3339 not_after (and, when named, that version and the client), is
// a certificate.
func TestBundleFacts(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	answer := func(edit func(d, custom, state map[string]any)) map[string]any {
		state := map[string]any{"created_time": "2026-05-01T00:00:00.5Z", "deletion_time": "", "destroyed": false}
		custom := map[string]any{"serial": "3a:0f:01", "not_after": "2026-07-01T00:00:00Z", "renew_at": "2026-06-20T00:00:00Z",
			"issuer": "harden intermediate", "subject": "spark-etl", kvVersionKey: "2"}
		d := map[string]any{"current_version": json.Number("2"), "custom_metadata": custom,
			"versions": map[string]any{"1": map[string]any{"deletion_time": "", "destroyed": true}, "2": state}}
		if edit != nil {
			edit(d, custom, state)
		}
		return d
	}
	for name, tc := range map[string]struct {
		edit func(d, custom, state map[string]any)
		says string // "" : the certificate
	}{
		"delivered":                      {nil, ""},
		"an older version destroyed":     {nil, ""},
		"no kv_version (older harden)":   {func(_, c, _ map[string]any) { delete(c, kvVersionKey) }, ""},
		"no subject":                     {func(_, c, _ map[string]any) { delete(c, "subject") }, ""},
		"deletion scheduled":             {func(_, _, s map[string]any) { s["deletion_time"] = "2026-06-02T00:00:00Z" }, ""},
		"upper-case serial":              {func(_, c, _ map[string]any) { c["serial"] = "3A:0F:01" }, ""},
		"no custom_metadata":             {func(d, _, _ map[string]any) { delete(d, "custom_metadata") }, "no custom_metadata"},
		"custom_metadata null":           {func(d, _, _ map[string]any) { d["custom_metadata"] = nil }, "no custom_metadata"},
		"no serial":                      {func(_, c, _ map[string]any) { delete(c, "serial") }, `custom_metadata serial "" is not a colon-hex serial`},
		"serial not hex":                 {func(_, c, _ map[string]any) { c["serial"] = "3a0f01" }, "not a colon-hex serial"},
		"serial a number":                {func(_, c, _ map[string]any) { c["serial"] = json.Number("58") }, "not a colon-hex serial"},
		"no not_after":                   {func(_, c, _ map[string]any) { delete(c, "not_after") }, "not_after"},
		"not_after not RFC 3339":         {func(_, c, _ map[string]any) { c["not_after"] = "Jul 1 2026" }, "not an RFC 3339 time"},
		"not_after before 1970":          {func(_, c, _ map[string]any) { c["not_after"] = "0001-01-01T00:00:00Z" }, "after 1970"},
		"no current version":             {func(d, _, _ map[string]any) { delete(d, "current_version") }, "no current version"},
		"current version 0":              {func(d, _, _ map[string]any) { d["current_version"] = json.Number("0") }, "no current version"},
		"current version not listed":     {func(d, _, _ map[string]any) { d["current_version"] = json.Number("3") }, "lists no state of the current version 3"},
		"current version deleted":        {func(_, _, s map[string]any) { s["deletion_time"] = "2026-05-31T00:00:00Z" }, "the current version is deleted: version 2 was deleted at 2026-05-31T00:00:00Z"},
		"deleted this second":            {func(_, _, s map[string]any) { s["deletion_time"] = "2026-06-01T12:00:00Z" }, "the current version is deleted"},
		"current version destroyed":      {func(_, _, s map[string]any) { s["destroyed"] = true }, "the current version is deleted: version 2 is destroyed"},
		"destroyed unknown":              {func(_, _, s map[string]any) { delete(s, "destroyed") }, "does not say whether"},
		"deletion_time garbled":          {func(_, _, s map[string]any) { s["deletion_time"] = "soon" }, "deletion_time that is not RFC 3339"},
		"deletion_time missing":          {func(_, _, s map[string]any) { delete(s, "deletion_time") }, "no deletion_time"},
		"metadata of the version before": {func(_, c, _ map[string]any) { c[kvVersionKey] = "1" }, "custom_metadata describes version 1, but the current version is 2"},
		"another client's subject":       {func(_, c, _ map[string]any) { c["subject"] = "billing" }, `subject "billing" is not client spark-etl`},
	} {
		f, err := bundleFacts(answer(tc.edit), "spark-etl", now)
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.says == "" && (!strings.EqualFold(f.serial, "3a:0f:01") || !f.notAfter.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) || f.version != 2):
			t.Errorf("%s: %+v", name, f)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says) || f != bundleMeta{}):
			t.Errorf("%s: %+v, %v (want %q)", name, f, err, tc.says)
		}
	}
	if _, err := bundleFacts(answer(func(_, _, s map[string]any) { s["destroyed"] = true }), "spark-etl", now); !errors.Is(err, errDeleted) {
		t.Errorf("a destroyed version is not errDeleted: %v", err)
	}
}

// Whatever Vault answers for a bundle's metadata, bundleFacts reports a
// certificate only when the answer names it: a current version whose state
// says neither deleted (by now) nor destroyed, custom_metadata's own
// colon-hex serial and its not_after, kv_version and subject absent or
// matching; never a certificate together with an error.
func FuzzBundleFacts(f *testing.F) {
	seed := func(d map[string]any) {
		b, _ := json.Marshal(d)
		f.Add(string(b), int64(1780000000))
	}
	good := map[string]any{"current_version": 2, "versions": map[string]any{"2": map[string]any{"deletion_time": "", "destroyed": false}},
		"custom_metadata": map[string]any{"serial": "3a:0f", "not_after": "2026-07-01T00:00:00Z", "subject": "spark-etl", kvVersionKey: "2"}}
	seed(good)
	seed(map[string]any{"current_version": 1, "versions": map[string]any{"1": map[string]any{"deletion_time": "2026-05-31T00:00:00Z", "destroyed": false}},
		"custom_metadata": map[string]any{"serial": "01", "not_after": "2026-07-01T00:00:00+02:00"}})
	seed(map[string]any{"current_version": 3, "versions": map[string]any{"3": map[string]any{"deletion_time": "", "destroyed": true}}, "custom_metadata": nil})
	f.Add(`{"current_version":"2","versions":{"2":{}},"custom_metadata":{"serial":7}}`, int64(0))
	f.Fuzz(func(t *testing.T, answer string, nowUnix int64) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(answer))
		dec.UseNumber() // as the Vault API client decodes
		if dec.Decode(&d) != nil {
			return
		}
		now := time.Unix(nowUnix%(1<<40), 0)
		got, err := bundleFacts(d, "spark-etl", now)
		if err != nil {
			if got != (bundleMeta{}) {
				t.Fatalf("facts %+v with an error", got)
			}
			return
		}
		cur, cerr := wholeNumber(d["current_version"])
		if cerr != nil || int64(got.version) != cur || cur < 1 {
			t.Fatalf("version %d from current_version %v", got.version, d["current_version"])
		}
		v := strconv.Itoa(got.version)
		state, _ := d["versions"].(map[string]any)[v].(map[string]any)
		if state["destroyed"] != false {
			t.Fatalf("a certificate from version %s with destroyed %v", v, state["destroyed"])
		}
		if dt, _ := state["deletion_time"].(string); dt != "" {
			if when, err := time.Parse(time.RFC3339Nano, dt); err != nil || !when.After(now) {
				t.Fatalf("a certificate from version %s deleted at %q (now %s)", v, dt, now)
			}
		}
		custom := d["custom_metadata"].(map[string]any)
		if custom["serial"] != got.serial || !colonHexRE.MatchString(got.serial) {
			t.Fatalf("serial %q from custom_metadata serial %v", got.serial, custom["serial"])
		}
		if na, err := time.Parse(time.RFC3339, custom["not_after"].(string)); err != nil || !na.Equal(got.notAfter) || got.notAfter.Unix() <= 0 {
			t.Fatalf("not_after %s from %v", got.notAfter, custom["not_after"])
		}
		if kv, ok := custom[kvVersionKey]; ok && kv != v {
			t.Fatalf("a certificate whose metadata describes version %v, current %s", kv, v)
		}
		if s, ok := custom["subject"]; ok && s != "spark-etl" {
			t.Fatalf("a certificate whose metadata names subject %v", s)
		}
	})
}

// Render shows each KV client's policy, and harden-verify reads exactly
// those policies and the bundles' metadata (not their data, which holds
// the clients' private keys).
func TestRenderClientPolicies(t *testing.T) {
	var r sdk.RenderResponse
	vaultPKI{}.Render(context.Background(), sdk.RenderRequest{RequestContext: offlineRequest("127.0.0.1:1",
		sdk.ClientRef{Name: "spark-etl", VaultKV: "secret/data/clients/spark-etl"}, sdk.ClientRef{Name: "billing", Dir: "/x"})}, &r)
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	got := map[string]string{}
	for _, a := range r.Artifacts {
		got[a.Path] = string(a.Content)
	}
	want := "# harden: client spark-etl reads its certificate bundle, nothing else\npath \"secret/data/clients/spark-etl\" {\n  capabilities = [\"read\"]\n}\n"
	if got["vault/policies/harden-client-spark-etl.hcl"] != want {
		t.Errorf("spark-etl's policy:\n%s", got["vault/policies/harden-client-spark-etl.hcl"])
	}
	if _, ok := got["vault/policies/harden-client-billing.hcl"]; ok {
		t.Errorf("a policy for billing, delivered to a directory")
	}
	verify := got["vault/policies/harden-verify.hcl"]
	if !strings.Contains(verify, `path "sys/policy/harden-client-spark-etl" { capabilities = ["read"] }`) ||
		!strings.Contains(verify, `path "secret/metadata/clients/spark-etl" { capabilities = ["read"] }`) ||
		strings.Contains(verify, "secret/data/") || strings.Count(verify, "clients/spark-etl") != 1 || strings.Contains(verify, "billing") {
		t.Errorf("harden-verify:\n%s", verify)
	}
}
