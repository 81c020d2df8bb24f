package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// withKeys is rc with spec.transit.keys set to keys (and the audit file
// kept): what Inventory is asked about.
func withKeys(t *testing.T, rc sdk.RequestContext, keys ...string) sdk.RequestContext {
	t.Helper()
	var spec map[string]any
	if err := json.Unmarshal(rc.Target.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	spec["transit"] = map[string]any{"keys": keys}
	raw, _ := json.Marshal(spec)
	secrets := map[string][]byte{}
	for _, k := range []string{"token", "role_id", "secret_id"} {
		if v, ok := rc.Target.Secret(k); ok {
			secrets[k] = []byte(v)
		}
	}
	rc.Target = sdk.NewTarget(rc.Target.Name, rc.Target.Connection, raw, secrets)
	return rc
}

func storedByName(r sdk.InventoryResponse) map[string]sdk.StoredItem {
	out := map[string]sdk.StoredItem{}
	for _, s := range r.Stored {
		out[s.Name] = s
	}
	return out
}

func chainOf(t *testing.T, it sdk.StoredItem) []*x509.Certificate {
	t.Helper()
	certs, err := sdk.ParseCertificatesPEM(it.ChainPEM)
	if err != nil {
		t.Fatalf("%s: ChainPEM does not parse: %v (Error %q)", it.Name, err, it.Error)
	}
	return certs
}

// issuerOf finds the default issuer item of a mount.
func defaultIssuer(t *testing.T, r sdk.InventoryResponse, mount string) sdk.StoredItem {
	t.Helper()
	var found []sdk.StoredItem
	for _, s := range r.Stored {
		if s.Kind == sdk.StoredCA && strings.HasPrefix(s.Name, mount+"/") && strings.HasSuffix(s.Name, " (default)") {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("default issuers of %s: %+v (all stored: %+v)", mount, found, r.Stored)
	}
	if !strings.HasPrefix(found[0].Location, mount+"/issuer/") {
		t.Errorf("%s: location %q", found[0].Name, found[0].Location)
	}
	return found[0]
}

// After apply, Inventory lists both CAs (readable chains: the intermediate
// with its root), the KEK apply made (version, creation time in this run,
// the rotation period apply set), a key made outside harden with rotation
// off (period 0) and rotated once (version 2), a key the spec names that
// Vault does not have ("not found"), and Vault's TLS listener in fresh
// handshakes. A token that may read nothing gets the keys as errors, never
// missing; one that cannot even log in gets every item with the reason.
func TestInventory(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	start := time.Now().Truncate(time.Second) // Vault's key times are whole seconds
	root := rootToken(t, v)
	rc := vaultRequest(t, v, root)
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	// Made directly, not by apply (which would turn rotation on).
	if _, err := cl.Logical().WriteWithContext(ctx, "transit/keys/cold-kek", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "transit/keys/cold-kek/rotate", nil); err != nil {
		t.Fatal(err)
	}
	irc := withKeys(t, rc, "lake-kek", "cold-kek", "absent-kek")

	began := time.Now()
	r, err := client.Inventory(ctx, irc, 3)
	took := time.Since(began)
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("inventory: %v %v", err, r.Diagnostics.Err())
	}
	t.Logf("inventory with 3 handshakes took %v", took.Round(time.Millisecond))
	for _, s := range r.Stored {
		t.Logf("stored %s %s at %s: version %d, created %s, auto-rotate %s %s%s", s.Kind, s.Name, s.Location, s.LatestVersion, s.LatestCreated, s.AutoRotatePeriod, s.KeyType, orEmpty("; error: ", s.Error))
	}

	// Vault's listener: testenv's dev Vault serves TLS (-dev-tls) with its
	// own CA; every fresh handshake shows that chain and goes through.
	if len(r.Listeners) != 1 {
		t.Fatalf("listeners: %+v", r.Listeners)
	}
	l := r.Listeners[0]
	if l.Name != inventoryListener || l.Address != strings.TrimPrefix(v.Address, "https://") || l.Error != "" || l.ReloadsOn != "SIGHUP" || len(l.Handshakes) != 3 {
		t.Fatalf("listener: %+v", l)
	}
	caPEMBytes, err := os.ReadFile(v.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	devCA := x509.NewCertPool()
	devCA.AppendCertsFromPEM(caPEMBytes)
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeAccepted || !strings.HasPrefix(h.Version, "TLSv1.") {
			t.Errorf("handshake %d: %+v", i, h)
			continue
		}
		certs, err := sdk.ParseCertificatesPEM(h.ChainPEM)
		if err != nil {
			t.Fatalf("handshake %d chain: %v", i, err)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: devCA, DNSName: "127.0.0.1"}); err != nil {
			t.Errorf("handshake %d: the leaf does not verify against the dev CA: %v", i, err)
		}
	}

	// The CAs: the root in pki, the intermediate in pki_int with its root.
	rootItem, intItem := defaultIssuer(t, r, "pki"), defaultIssuer(t, r, "pki_int")
	rootChain, intChain := chainOf(t, rootItem), chainOf(t, intItem)
	if rootItem.Error != "" || intItem.Error != "" {
		t.Errorf("CA errors: %q %q", rootItem.Error, intItem.Error)
	}
	if cn := rootChain[0].Subject.CommonName; cn != "harden vault root CA" || !rootChain[0].IsCA {
		t.Errorf("pki default issuer: %q", cn)
	}
	if cn := intChain[0].Subject.CommonName; cn != "harden vault intermediate CA" || !intChain[0].IsCA {
		t.Errorf("pki_int default issuer: %q", cn)
	}
	// not_after as apply set it: 10 and 5 years (the test's defaults).
	for _, c := range []struct {
		cert *x509.Certificate
		life time.Duration
	}{{rootChain[0], 10 * 365 * 24 * time.Hour}, {intChain[0], 5 * 365 * 24 * time.Hour}} {
		if d := c.cert.NotAfter.Sub(start.Add(c.life)); d < -time.Hour || d > time.Hour {
			t.Errorf("%s not_after %s, want about %s", c.cert.Subject.CommonName, c.cert.NotAfter, start.Add(c.life))
		}
	}
	if len(intChain) != 2 || !intChain[1].Equal(rootChain[0]) || intChain[0].CheckSignatureFrom(rootChain[0]) != nil {
		t.Errorf("pki_int's chain is not the intermediate then the root: %d certificate(s)", len(intChain))
	}

	// The keys.
	keys := storedByName(r)
	now := time.Now()
	lake := keys["lake-kek"]
	if lake.Kind != sdk.StoredKey || lake.Error != "" || lake.Location != "transit/keys/lake-kek" || lake.LatestVersion != 1 || lake.KeyType != "aes256-gcm96" ||
		lake.AutoRotatePeriod != rc.Policy.Rotation.MaxLifetime || lake.LatestCreated.Before(start) || lake.LatestCreated.After(now) {
		t.Errorf("lake-kek: %+v (run %s .. %s)", lake, start, now)
	}
	cold := keys["cold-kek"]
	if cold.Error != "" || cold.LatestVersion != 2 || cold.AutoRotatePeriod != 0 || cold.LatestCreated.Before(lake.LatestCreated) || cold.LatestCreated.After(now) {
		t.Errorf("cold-kek: %+v", cold)
	}
	if absent := keys["absent-kek"]; absent.Kind != sdk.StoredKey || !strings.HasPrefix(absent.Error, "not found") || absent.LatestVersion != 0 {
		t.Errorf("absent-kek: %+v", absent)
	}

	// Read-only: nothing Inventory did is a change to apply back.
	if p, err := client.Plan(ctx, rc); err != nil || p.Diagnostics.HasError() || len(p.Changes) != 0 {
		t.Errorf("plan after inventory: %v %v %+v", err, p.Diagnostics.Err(), p.Changes)
	}
	if again, _ := client.Inventory(ctx, irc, 1); storedByName(again)["cold-kek"].LatestVersion != 2 || storedByName(again)["lake-kek"].LatestVersion != 1 {
		t.Errorf("a second inventory sees other versions: %+v", again.Stored)
	}

	// A token that may only ask for its own capabilities: the keys are
	// errors in Vault's words (the issuers stay readable: Vault serves CA
	// certificates unauthenticated).
	if err := cl.Sys().PutPolicyWithContext(ctx, "caps-only", `path "sys/capabilities-self" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	weak, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"caps-only"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	wr, err := client.Inventory(ctx, withKeys(t, vaultRequest(t, v, weak.Auth.ClientToken), "lake-kek", "cold-kek"), 1)
	if err != nil || wr.Diagnostics.HasError() {
		t.Fatalf("inventory with a weak token: %v %v", err, wr.Diagnostics.Err())
	}
	wk := storedByName(wr)
	for _, k := range []string{"lake-kek", "cold-kek"} {
		if it, ok := wk[k]; !ok || !strings.Contains(it.Error, "read transit/keys/"+k+": Vault answered 403") || !strings.Contains(it.Error, "permission denied") || it.LatestVersion != 0 {
			t.Errorf("%s with a weak token: %+v (present %v)", k, it, ok)
		}
	}
	if len(wr.Stored) != len(r.Stored)-1 { // all but absent-kek
		t.Errorf("weak token: %d items, want %d: %+v", len(wr.Stored), len(r.Stored)-1, wr.Stored)
	}
	defaultIssuer(t, wr, "pki_int")

	// A token that cannot even look itself up: every item with the reason,
	// the listener still probed.
	none, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"caps-only"}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	nr, err := client.Inventory(ctx, withKeys(t, vaultRequest(t, v, none.Auth.ClientToken), "lake-kek"), 1)
	if err != nil || !nr.Diagnostics.HasError() || !strings.Contains(nr.Diagnostics.Err().Error(), "refused the credentials") {
		t.Fatalf("inventory with a token that cannot log in: %v %v", err, nr.Diagnostics.Err())
	}
	nk := storedByName(nr)
	for _, name := range []string{"pki", "pki_int", "lake-kek"} {
		if it, ok := nk[name]; !ok || !strings.HasPrefix(it.Error, "not read: cannot log in to Vault") {
			t.Errorf("%s without login: %+v (present %v)", name, it, ok)
		}
	}
	if len(nr.Listeners) != 1 || len(nr.Listeners[0].Handshakes) != 1 || nr.Listeners[0].Handshakes[0].Outcome != sdk.OutcomeAccepted {
		t.Errorf("listener without login: %+v", nr.Listeners)
	}

	all, _ := json.Marshal([]any{r, wr, nr})
	for _, tok := range []string{root, weak.Auth.ClientToken, none.Auth.ClientToken} {
		if strings.Contains(string(all), tok) {
			t.Errorf("a Vault token appears in the inventory")
		}
	}
}

// fakeInventory runs Inventory against a fake Vault behind TLS.
func fakeInventory(t *testing.T, f fakeVault, spec map[string]any) sdk.InventoryResponse {
	t.Helper()
	srv := quietTLSServer(f)
	t.Cleanup(srv.Close)
	caFile := writeFile(t, filepath.Join(t.TempDir(), "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	conn, _ := json.Marshal(map[string]any{"address": srv.URL, "ca_file": caFile})
	raw, _ := json.Marshal(spec)
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1"}, Target: sdk.NewTarget("vault", conn, raw, map[string][]byte{"token": []byte("s3cr3t-token")})}
	plugin := hostclient.InProcess(vaultPKI{})
	t.Cleanup(func() { plugin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := plugin.Inventory(ctx, rc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := json.Marshal(r); strings.Contains(string(all), "s3cr3t-token") {
		t.Errorf("the token appears in the inventory")
	}
	return r
}

// Reads Vault refuses, answers with garbage or does not answer are items
// with the read and Vault's words as their Error, never left out.
func TestInventoryReadsThatFail(t *testing.T) {
	now := time.Now()
	rootCA := issue(t, nil, "fake root", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	inter := issue(t, rootCA, "fake intermediate", true, now.Add(-time.Hour), now.Add(12*time.Hour))
	f := fakeVault{
		"GET auth/token/lookup-self": reply(map[string]any{"id": "x"}),
		"LIST pki/issuers":           refuse(http.StatusForbidden),
		"LIST pki_int/issuers": reply(map[string]any{"keys": []string{"a", "b", "c", "d"}, "key_info": map[string]any{
			"a": map[string]any{"issuer_name": "current", "is_default": true}, "b": map[string]any{"is_default": false}}}),
		"GET pki_int/issuer/a/json": reply(map[string]any{"certificate": inter.pem, "ca_chain": []string{inter.pem, rootCA.pem}}),
		"GET pki_int/issuer/b/json": hangUp,
		"GET pki_int/issuer/c/json": reply(map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\ngarbage\n"}),
		// d: listed, then 404
		"GET transit/keys/refused": refuse(http.StatusForbidden),
		"GET transit/keys/broken":  refuse(http.StatusInternalServerError),
		"GET transit/keys/ageless": reply(map[string]any{"latest_version": 1, "keys": map[string]any{}, "auto_rotate_period": 0, "type": "aes256-gcm96"}),
		"GET transit/keys/asym": reply(map[string]any{"latest_version": 2, "auto_rotate_period": 3600, "type": "ecdsa-p256",
			"keys": map[string]any{"1": map[string]any{"creation_time": "2020-01-01T00:00:00Z"}, "2": map[string]any{"creation_time": "2024-05-06T07:08:09.5Z"}}}),
	}
	r := fakeInventory(t, f, map[string]any{"transit": map[string]any{"keys": []string{"refused", "broken", "absent", "ageless", "asym"}}})
	if r.Diagnostics.HasError() {
		t.Fatalf("diagnostics: %v", r.Diagnostics.Err())
	}
	got := storedByName(r)
	want := map[string]string{
		"pki":                       "list pki/issuers: Vault answered 403: Forbidden: permission denied",
		"pki_int/b":                 "read pki_int/issuer/b/json: no answer from Vault",
		"pki_int/c":                 "read pki_int/issuer/c/json: the issuer certificate: a PEM block does not decode",
		"pki_int/d":                 "not found: pki_int/issuer/d/json",
		"refused":                   "read transit/keys/refused: Vault answered 403: Forbidden: permission denied",
		"broken":                    "read transit/keys/broken: Vault answered 500",
		"absent":                    "not found: Vault answered 404 for transit/keys/absent",
		"ageless":                   "read transit/keys/ageless: no creation time for the latest version 1",
		"pki_int/current (default)": "",
		"asym":                      "",
	}
	if len(r.Stored) != len(want) {
		t.Errorf("%d items, want %d: %+v", len(r.Stored), len(want), r.Stored)
	}
	for name, prefix := range want {
		it, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s missing: %+v", name, r.Stored)
		case prefix == "" && it.Error != "":
			t.Errorf("%s: %q", name, it.Error)
		case !strings.HasPrefix(it.Error, prefix) || strings.Contains(it.Error, "\n"):
			t.Errorf("%s: Error %q, want it to start with %q (one line)", name, it.Error, prefix)
		case prefix != "" && (it.ChainPEM != nil || it.LatestVersion != 0):
			t.Errorf("%s has an Error and data: %+v", name, it)
		}
	}
	if it := got["pki_int/current (default)"]; it.Location != "pki_int/issuer/a" || len(chainOf(t, it)) != 2 || !chainOf(t, it)[0].Equal(inter.cert) || !chainOf(t, it)[1].Equal(rootCA.cert) {
		t.Errorf("default issuer: %+v", it)
	}
	// The wire carries whole seconds.
	if it := got["asym"]; it.LatestVersion != 2 || it.AutoRotatePeriod != time.Hour || it.KeyType != "ecdsa-p256" || !it.LatestCreated.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("asym: %+v", it)
	}
	// The fake's TLS listener answers an HTTP request: accepted.
	if len(r.Listeners) != 1 || len(r.Listeners[0].Handshakes) != 1 || r.Listeners[0].Handshakes[0].Outcome != sdk.OutcomeAccepted {
		t.Errorf("listener: %+v", r.Listeners)
	}
}

// An http:// address (allow_insecure) is a listener with no TLS: listed
// with that as its Error, no handshake made.
func TestInventoryHTTPAddress(t *testing.T) {
	srv := httptest.NewServer(fakeVault{"GET auth/token/lookup-self": reply(map[string]any{"id": "x"})})
	defer srv.Close()
	conn, _ := json.Marshal(map[string]any{"address": srv.URL, "allow_insecure": "loopback test"})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1"}, Target: sdk.NewTarget("vault", conn, []byte(`{}`), map[string][]byte{"token": []byte("s3cr3t-token")})}
	plugin := hostclient.InProcess(vaultPKI{})
	defer plugin.Close()
	r, err := plugin.Inventory(context.Background(), rc, 2)
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("inventory: %v %v", err, r.Diagnostics.Err())
	}
	if len(r.Listeners) != 1 {
		t.Fatalf("listeners: %+v", r.Listeners)
	}
	l := r.Listeners[0]
	if l.Address != strings.TrimPrefix(srv.URL, "http://") || !strings.Contains(l.Error, "not TLS") || !strings.Contains(l.Error, "token travels in cleartext") || len(l.Handshakes) != 0 {
		t.Errorf("listener: %+v", l)
	}
	if !strings.Contains(fmtDiags(r.Diagnostics), "travels in cleartext") {
		t.Errorf("no cleartext warning: %s", fmtDiags(r.Diagnostics))
	}
	// The fake has no PKI: both mounts are "not found", not missing.
	got := storedByName(r)
	for _, m := range []string{"pki", "pki_int"} {
		if !strings.HasPrefix(got[m].Error, "not found") {
			t.Errorf("%s: %+v", m, got[m])
		}
	}
}

// keyFacts reads Vault's answer for a transit key: whatever the answer, it
// never panics, and a key it accepts has a version, a creation time and a
// whole-second period that is never negative.
func FuzzKeyFacts(f *testing.F) {
	f.Add(`{"latest_version":1,"keys":{"1":1700000000},"auto_rotate_period":7776000,"type":"aes256-gcm96"}`)
	f.Add(`{"latest_version":2,"keys":{"1":{"creation_time":"2020-01-01T00:00:00Z"},"2":{"creation_time":"2024-05-06T07:08:09.5Z"}},"auto_rotate_period":0}`)
	f.Add(`{"latest_version":3,"keys":{"1":1},"auto_rotate_period":-1}`)
	f.Add(`{"latest_version":1e30,"keys":{"1":1.5},"auto_rotate_period":"x"}`)
	f.Fuzz(func(t *testing.T, answer string) {
		dec := json.NewDecoder(strings.NewReader(answer))
		dec.UseNumber() // as the Vault API client decodes
		var d map[string]any
		if dec.Decode(&d) != nil {
			return
		}
		k, err := keyFacts(d)
		if err != nil {
			if k != (transitFacts{}) {
				t.Fatalf("an error with facts: %+v", k)
			}
			return
		}
		if k.latest < 1 || k.created.IsZero() || k.period < 0 || k.period%time.Second != 0 {
			t.Fatalf("accepted %q as %+v", answer, k)
		}
	})
}

// issuerChain turns Vault's answer for an issuer into a chain: whatever the
// answer, it never panics, and a chain it returns parses, starts with the
// issuer's certificate and holds no certificate twice.
func FuzzIssuerChain(f *testing.F) {
	rootCA := seedCA(f, nil, "fuzz root")
	inter := seedCA(f, rootCA, "fuzz intermediate")
	f.Add(inter.pem, inter.pem+rootCA.pem, rootCA.pem)
	f.Add(rootCA.pem, "", "")
	f.Add(inter.pem+rootCA.pem, rootCA.pem, "garbage")
	f.Add("-----BEGIN CERTIFICATE-----\n", "", "")
	f.Fuzz(func(t *testing.T, cert, chain1, chain2 string) {
		out, err := issuerChain(map[string]any{"certificate": cert, "ca_chain": []any{chain1, chain2}})
		if err != nil {
			if out != nil {
				t.Fatal("an error with a chain")
			}
			return
		}
		certs, err := sdk.ParseCertificatesPEM(out)
		if err != nil {
			t.Fatalf("the chain does not parse: %v", err)
		}
		first, _ := sdk.ParseCertificatesPEM([]byte(cert))
		if len(first) != 1 || !certs[0].Equal(first[0]) {
			t.Fatal("the chain does not start with the issuer's certificate")
		}
		seen := map[string]bool{}
		for _, c := range certs {
			if seen[string(c.Raw)] {
				t.Fatal("a certificate twice")
			}
			seen[string(c.Raw)] = true
		}
	})
}

// seedCA is issue for a fuzz test's seeds: a CA valid for an hour, signed
// by parent (self-signed when nil).
func seedCA(tb testing.TB, parent *testCA, cn string) *testCA {
	tb.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1000 + serial.Add(1)), Subject: pkix.Name{CommonName: cn}, NotBefore: now, NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// BenchmarkInventory: Inventory(1) of the hardened Vault target (login,
// both PKI mounts' issuers, the KEK, one listener handshake). Target:
// well under 0.5 s.
func BenchmarkInventory(b *testing.B) {
	_, client, rc := hardenedVault(b)
	ctx := context.Background()
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := client.Inventory(ctx, rc, 1)
		ds = append(ds, time.Since(start))
		if err != nil || r.Diagnostics.HasError() || len(r.Stored) < 3 {
			b.Fatalf("inventory: %v %v %+v", err, r.Diagnostics.Err(), r.Stored)
		}
	}
	b.ReportMetric(median(ds), "ms/median")
}
