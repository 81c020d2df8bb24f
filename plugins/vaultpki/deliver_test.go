package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"regexp"
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

// Whatever Vault answers for a bundle, what Inventory reports is nothing
// but certificates, each of them one of tls.crt's, and never a chain whose
// leaf has another serial than custom_metadata names.
func FuzzBundleChain(f *testing.F) {
	ca := seedCA(f, nil, "fuzz root")
	leaf := seedCA(f, ca, "spark-etl")
	good := func(crt, serial string) string {
		b, _ := json.Marshal(map[string]any{"data": map[string]any{"tls.crt": crt, "tls.key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
			"metadata": map[string]any{"version": 1, "custom_metadata": map[string]any{"serial": serial}}})
		return string(b)
	}
	f.Add(good(leaf.pem+ca.pem, serialHex(leaf.cert)))
	f.Add(good(leaf.pem, "00:01"))
	f.Add(good("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"+leaf.pem, serialHex(leaf.cert)))
	f.Add(`{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","version":3}}`)
	f.Add(`{"data":{"tls.crt":7}}`)
	f.Fuzz(func(t *testing.T, answer string) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(answer))
		dec.UseNumber()
		if dec.Decode(&d) != nil {
			return
		}
		out, err := bundleChain(d)
		if err != nil {
			if out != nil {
				t.Fatal("a chain with an error")
			}
			return
		}
		data, _ := d["data"].(map[string]any)
		crt, _ := data["tls.crt"].(string)
		in, perr := sdk.ParseCertificatesPEM([]byte(crt))
		if perr != nil {
			t.Fatalf("a chain from a tls.crt that does not parse: %v", perr)
		}
		rest := out
		for i := 0; ; i++ {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				if len(bytes.TrimSpace(rest)) != 0 || i != len(in) {
					t.Fatalf("%d blocks out of %d certificates, %d bytes left", i, len(in), len(rest))
				}
				break
			}
			if b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, in[i].Raw) {
				t.Fatalf("block %d is %s, not tls.crt's certificate %d", i, b.Type, i)
			}
		}
		meta, _ := d["metadata"].(map[string]any)
		custom, _ := meta["custom_metadata"].(map[string]any)
		if s, ok := custom["serial"].(string); ok && !strings.EqualFold(s, serialHex(in[0])) {
			t.Fatalf("a chain whose leaf is not the serial custom_metadata names")
		}
	})
}

// Render shows each KV client's policy, and harden-verify reads exactly
// those policies (not the bundles, which hold private keys).
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
	if !strings.Contains(verify, `path "sys/policy/harden-client-spark-etl" { capabilities = ["read"] }`) || strings.Contains(verify, "clients/spark-etl") {
		t.Errorf("harden-verify:\n%s", verify)
	}
}
