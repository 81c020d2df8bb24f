package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// caRun calls RotateCA through the gRPC path and fails the test on an error.
func caRun(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, op string) sdk.RotateCAResponse {
	t.Helper()
	r, err := client.RotateCA(context.Background(), sdk.RotateCARequest{RequestContext: rc, Operation: op})
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("RotateCA %s: %v %v", op, err, r.Diagnostics.Err())
	}
	return r
}

// issuerNames is every issuer of a mount as "name" (or "<id>" when
// unnamed) with "*" for the default, and the count, for before/after
// comparisons.
type mountView struct {
	byName map[string]*issuerInfo
	all    []*issuerInfo
	def    *issuerInfo
	keys   map[string]string
}

func viewMount(t *testing.T, cl *vault.Client, mount string) mountView {
	t.Helper()
	m, err := readIssuers(context.Background(), cl, mount, true)
	if err != nil {
		t.Fatal(err)
	}
	v := mountView{byName: map[string]*issuerInfo{}, all: m.all, def: m.def, keys: m.keys}
	for _, i := range m.all {
		if i.name != "" {
			v.byName[i.name] = i
		}
	}
	return v
}

// fingerprint is a mount's issuers and keys as one comparable string.
func (v mountView) fingerprint() string {
	var parts []string
	for _, i := range v.all {
		parts = append(parts, fmt.Sprintf("%s=%q default=%v", i.id, i.name, i.isDefault))
	}
	for id, n := range v.keys {
		parts = append(parts, fmt.Sprintf("key %s=%q", id, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func rootOf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := sdk.ParseCertificatesPEM(pemBytes)
	if err != nil || len(certs) != 1 {
		t.Fatalf("not one root certificate (%v): %q", err, pemBytes)
	}
	return certs[0]
}

// chainsTo verifies an issued chain against one root.
func chainsTo(t *testing.T, chainPEM []byte, root *x509.Certificate) error {
	t.Helper()
	certs, err := sdk.ParseCertificatesPEM(chainPEM)
	if err != nil || len(certs) < 2 {
		t.Fatalf("chain (%v): %q", err, chainPEM)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range certs[1:] {
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			t.Errorf("the issued chain carries a root: %s", c.Subject)
		}
		inters.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"})
	return err
}

func issueLeaf(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, issuer string) sdk.IssueCertificateResponse {
	t.Helper()
	r, err := client.IssueCertificate(context.Background(), sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "server",
		CSRPEM: []byte(csrFor(t, "localhost")), TTL: 1500 * time.Hour, Issuer: issuer})
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("issue with issuer %q: %v %v", issuer, err, r.Diagnostics.Err())
	}
	return r
}

// leafFrom: a leaf issued with issuer chains to want and not to other.
func leafFrom(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, issuer string, want, other *x509.Certificate, trust []byte) {
	t.Helper()
	r := issueLeaf(t, client, rc, issuer)
	if err := chainsTo(t, r.Certificate.ChainPEM, want); err != nil {
		t.Errorf("issuer %q: the leaf does not chain to %s: %v", issuer, want.Subject.CommonName, err)
	}
	if err := chainsTo(t, r.Certificate.ChainPEM, other); err == nil {
		t.Errorf("issuer %q: the leaf chains to %s too", issuer, other.Subject.CommonName)
	}
	if trust != nil && !bytes.Equal(bytes.TrimSpace(r.Certificate.CABundlePEM), bytes.TrimSpace(trust)) {
		t.Errorf("issuer %q: the CA bundle is not the current root:\n%s", issuer, r.Certificate.CABundlePEM)
	}
}

// noFailures: no vaultpki.* check of a verify fails or errors, the PKI
// checks that judge the CAs pass, and the lint of the chain with a fresh
// leaf is there (a warning at most: zlint asks for http:// URIs, the test
// Vault's are https://, before any rotation too).
func noFailures(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, when string) sdk.VerifyResponse {
	t.Helper()
	vr, err := client.Verify(context.Background(), rc)
	if err != nil || vr.Diagnostics.HasError() {
		t.Fatalf("verify %s: %v %v", when, err, vr.Diagnostics.Err())
	}
	for _, c := range vr.Checks {
		if strings.HasPrefix(c.ID, "vaultpki.") && (c.Status == checks.Fail || c.Status == checks.Error) {
			t.Errorf("verify %s: %s %s (%s): %s", when, c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
	if len(statusOf(vr, "vaultpki.pki.lint")) == 0 || len(statusOf(vr, "vaultpki.pki.expiry")) == 0 {
		t.Errorf("verify %s: no lint or expiry check", when)
	}
	for _, id := range []string{"vaultpki.pki.ca_present", "vaultpki.pki.ca_lifetime", "vaultpki.pki.ca_key", "vaultpki.pki.roles", "vaultpki.pki.urls"} {
		cs := statusOf(vr, id)
		if len(cs) == 0 || !slices.ContainsFunc(cs, func(c checks.Check) bool { return c.Status == checks.Pass }) {
			t.Errorf("verify %s: %s did not pass: %+v", when, id, cs)
		}
	}
	return vr
}

func planEmpty(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, when string) {
	t.Helper()
	p, err := client.Plan(context.Background(), rc)
	if err != nil || p.Diagnostics.HasError() || len(p.Changes) != 0 {
		t.Errorf("plan %s: %v %v %+v", when, err, p.Diagnostics.Err(), p.Changes)
	}
}

// A whole staged rotation on a real Vault: after apply, status has no next
// CA; prepare makes a second root and intermediate (ECDSA P-256, the
// root's lifetime), a second prepare returns the same; a leaf from "next"
// chains to the next root only, "current" and "" to the current root, and
// the bundle stays the current root; activate makes "" sign with the next
// CA, deactivate and activate switch back and forth; discard is refused
// while it signs; finish makes usage "ca" return the new root, retires the
// old root and intermediate (kept, no longer issuing), and plan, apply and
// verify see a normal Vault. A second rotation is discarded before
// activate (renamed discarded-<date>, no longer next), and a third after
// it gets its own discarded name. An unknown operation changes nothing.
func TestRotateCA(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	rc := vaultRequest(t, v, rootToken(t, v))
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	meta, err := client.Metadata(ctx)
	if err != nil || !slices.Contains(meta.Capabilities, sdk.CapCARotation) {
		t.Fatalf("capabilities: %v %v", err, meta.Capabilities)
	}
	applied, _ := caPEM(ctx, cl, "pki")

	st := caRun(t, client, rc, sdk.CAStatus)
	if len(st.NextRootPEM) != 0 || st.Signing != "current" || strings.TrimSpace(string(st.CurrentRootPEM)) != applied {
		t.Fatalf("status after apply: signing %q next %q current %q", st.Signing, st.NextRootPEM, st.CurrentRootPEM)
	}
	before := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint()
	if r, err := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: "rotate-everything"}); err != nil || !r.Diagnostics.HasError() ||
		!strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "unknown CA rotation operation") {
		t.Errorf("an unknown operation: %v %v", err, r.Diagnostics)
	}
	if issueErr(t, client, rc, "next") == "" {
		t.Errorf("issuer next without a next CA was accepted")
	}
	if after := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint(); after != before {
		t.Errorf("refused requests changed Vault:\n%s\n%s", before, after)
	}

	// prepare, twice.
	p1 := caRun(t, client, rc, sdk.CAPrepare)
	p2 := caRun(t, client, rc, sdk.CAPrepare)
	current, next := rootOf(t, p1.CurrentRootPEM), rootOf(t, p1.NextRootPEM)
	if current.Equal(next) || !bytes.Equal(p1.NextRootPEM, p2.NextRootPEM) || !bytes.Equal(p1.CurrentRootPEM, p2.CurrentRootPEM) || p1.Signing != "current" {
		t.Fatalf("prepare: next equals current, or the second prepare differs, or it signs (%q)", p1.Signing)
	}
	if strings.TrimSpace(string(p1.CurrentRootPEM)) != applied {
		t.Errorf("prepare changed the current root")
	}
	if k, ok := next.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("next root key %T, want ECDSA P-256", next.PublicKey)
	}
	if life := next.NotAfter.Sub(next.NotBefore); life < 87590*time.Hour || life > 87610*time.Hour {
		t.Errorf("next root lifetime %s, want the root's 87600h", life)
	}
	if next.Subject.CommonName != current.Subject.CommonName+" G2" {
		t.Errorf("next root CN %q (current %q)", next.Subject.CommonName, current.Subject.CommonName)
	}
	rootM, intM := viewMount(t, cl, "pki"), viewMount(t, cl, "pki_int")
	if rootM.byName["harden-next"] == nil || rootM.def == rootM.byName["harden-next"] || rootM.def.name != "harden-root" {
		t.Errorf("root mount after prepare: %s", rootM.fingerprint())
	}
	if y := intM.byName["harden-next"]; y == nil || intM.def == y || intM.byName["harden-next-root"] == nil || len(intM.all) != 4 || intM.keys[y.keyID] != "harden-next" {
		t.Errorf("intermediate mount after prepare: %s", intM.fingerprint())
	}
	planEmpty(t, client, rc, "while a next CA is prepared")

	leafFrom(t, client, rc, "next", next, current, p1.CurrentRootPEM)
	leafFrom(t, client, rc, "current", current, next, p1.CurrentRootPEM)
	leafFrom(t, client, rc, "", current, next, p1.CurrentRootPEM)
	if crl := issueLeaf(t, client, rc, "").Certificate.CRLPEM; strings.Count(string(crl), "BEGIN X509 CRL") != 4 {
		t.Errorf("CRLs during a rotation: %d, want those of the 4 CAs", strings.Count(string(crl), "BEGIN X509 CRL"))
	}
	noFailures(t, client, rc, "after prepare")

	// activate, deactivate, activate.
	if a := caRun(t, client, rc, sdk.CAActivate); a.Signing != "next" || !bytes.Equal(a.NextRootPEM, p1.NextRootPEM) || !bytes.Equal(a.CurrentRootPEM, p1.CurrentRootPEM) {
		t.Fatalf("activate: signing %q", a.Signing)
	}
	leafFrom(t, client, rc, "", next, current, p1.CurrentRootPEM)
	leafFrom(t, client, rc, "current", current, next, p1.CurrentRootPEM)
	if ca, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "ca"}); err != nil ||
		!bytes.Equal(bytes.TrimSpace(ca.Certificate.CABundlePEM), bytes.TrimSpace(p1.CurrentRootPEM)) {
		t.Errorf("usage ca while the next CA signs: %v %s", err, ca.Certificate.CABundlePEM)
	}
	noFailures(t, client, rc, "after activate")
	inv, err := client.Inventory(ctx, rc, 1)
	if err != nil || inv.Diagnostics.HasError() {
		t.Fatalf("inventory: %v %v", err, inv.Diagnostics.Err())
	}
	if d := defaultIssuer(t, inv, "pki_int"); d.Name != "pki_int/harden-next (default)" {
		t.Errorf("inventory while the next CA signs: default %s", d.Name)
	}
	if d := caRun(t, client, rc, sdk.CADeactivate); d.Signing != "current" {
		t.Fatalf("deactivate: signing %q", d.Signing)
	}
	leafFrom(t, client, rc, "", current, next, nil)
	caRun(t, client, rc, sdk.CADeactivate)
	caRun(t, client, rc, sdk.CAActivate)
	if a := caRun(t, client, rc, sdk.CAActivate); a.Signing != "next" {
		t.Fatalf("activate again: signing %q", a.Signing)
	}
	held := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint()
	if r, _ := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CADiscard}); !r.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "deactivate first") {
		t.Errorf("discard while the next CA signs: %v", r.Diagnostics)
	}
	if now := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint(); now != held {
		t.Errorf("the refused discard changed Vault")
	}

	// finish, twice.
	oldRoot, oldInt := rootM.def, intM.def
	f := caRun(t, client, rc, sdk.CAFinish)
	if f2 := caRun(t, client, rc, sdk.CAFinish); !bytes.Equal(f.CurrentRootPEM, f2.CurrentRootPEM) || len(f2.NextRootPEM) != 0 {
		t.Errorf("a second finish differs")
	}
	if !bytes.Equal(f.CurrentRootPEM, p1.NextRootPEM) || len(f.NextRootPEM) != 0 || f.Signing != "current" {
		t.Fatalf("finish: signing %q next %q", f.Signing, f.NextRootPEM)
	}
	ca, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "ca"})
	if err != nil || !bytes.Equal(bytes.TrimSpace(ca.Certificate.CABundlePEM), bytes.TrimSpace(p1.NextRootPEM)) {
		t.Errorf("usage ca after finish is not the new root: %v %s", err, ca.Certificate.CABundlePEM)
	}
	leafFrom(t, client, rc, "", next, current, p1.NextRootPEM)
	leafFrom(t, client, rc, "current", next, current, p1.NextRootPEM)
	if issueErr(t, client, rc, "next") == "" {
		t.Errorf("issuer next after finish was accepted")
	}
	day := time.Now().UTC().Format(time.DateOnly)
	rootM, intM = viewMount(t, cl, "pki"), viewMount(t, cl, "pki_int")
	if r := rootM.byName["retired-"+day]; r == nil || r.id != oldRoot.id || r.isDefault || rootM.byName["harden-next"] != nil ||
		rootM.def.name != "harden-root" || !rootM.def.cert.Equal(next) || len(rootM.all) != 2 {
		t.Errorf("root mount after finish: %s", rootM.fingerprint())
	}
	if r := intM.byName["retired-"+day]; r == nil || r.id != oldInt.id || r.isDefault || intM.byName["retired-"+day+"-root"] == nil ||
		intM.byName["harden-next"] != nil || intM.byName["harden-next-root"] != nil || intM.def.name != "" || len(intM.all) != 4 {
		t.Errorf("intermediate mount after finish: %s", intM.fingerprint())
	}
	for id, n := range rootM.keys {
		if n == "harden-next" {
			t.Errorf("root key %s still named harden-next", id)
		}
	}
	for _, path := range []string{"pki_int/issuer/" + oldInt.id, "pki/issuer/" + oldRoot.id} {
		s, err := cl.Logical().ReadWithContext(ctx, path)
		if err != nil || s == nil || strings.Contains(fmt.Sprint(s.Data["usage"]), "issuing-certificates") || !strings.Contains(fmt.Sprint(s.Data["usage"]), "crl-signing") {
			t.Errorf("retired %s: usage %v (%v)", path, s, err)
		}
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/issuer/"+oldInt.id+"/sign/server", map[string]any{"csr": csrFor(t, "localhost"), "ttl": "1h"}); err == nil {
		t.Errorf("the retired intermediate still issues")
	}
	planEmpty(t, client, rc, "after finish")
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 0 {
		t.Errorf("apply after finish: %v %v %+v", err, ar.Diagnostics.Err(), ar.Applied)
	}
	vr := noFailures(t, client, rc, "after finish")
	if cs := statusOf(vr, "vaultpki.pki.ca_present"); len(cs) != 2 || !strings.Contains(cs[0].Evidence+cs[1].Evidence, next.Subject.CommonName) {
		t.Errorf("ca_present after finish: %+v", cs)
	}
	inv, _ = client.Inventory(ctx, rc, 1)
	names := storedByName(inv)
	for _, n := range []string{"pki/retired-" + day, "pki/harden-root (default)", "pki_int/retired-" + day, "pki_int/retired-" + day + "-root"} {
		if it, ok := names[n]; !ok || it.Error != "" {
			t.Errorf("inventory after finish: no %s (%+v)", n, names)
		}
	}

	// A second rotation, discarded before activate; a third discarded
	// after a deactivate.
	p3 := caRun(t, client, rc, sdk.CAPrepare)
	if bytes.Equal(p3.NextRootPEM, p1.NextRootPEM) || !bytes.Equal(p3.CurrentRootPEM, p1.NextRootPEM) {
		t.Fatalf("the second rotation's prepare")
	}
	d := caRun(t, client, rc, sdk.CADiscard)
	if len(d.NextRootPEM) != 0 || d.Signing != "current" || !bytes.Equal(d.CurrentRootPEM, p1.NextRootPEM) {
		t.Errorf("discard: next %q signing %q", d.NextRootPEM, d.Signing)
	}
	caRun(t, client, rc, sdk.CADiscard)
	rootM, intM = viewMount(t, cl, "pki"), viewMount(t, cl, "pki_int")
	if rootM.byName["discarded-"+day] == nil || intM.byName["discarded-"+day] == nil || intM.byName["discarded-"+day+"-root"] == nil ||
		rootM.byName["harden-next"] != nil || intM.byName["harden-next"] != nil || intM.byName["harden-next-root"] != nil {
		t.Errorf("after discard: %s | %s", rootM.fingerprint(), intM.fingerprint())
	}
	for _, m := range []mountView{rootM, intM} {
		for id, n := range m.keys {
			if n == "harden-next" {
				t.Errorf("key %s still named harden-next after discard", id)
			}
		}
	}
	if !rootOf(t, p3.NextRootPEM).Equal(rootM.byName["discarded-"+day].cert) {
		t.Errorf("the discarded root is not the one prepared")
	}
	leafFrom(t, client, rc, "", next, current, p1.NextRootPEM)
	p4 := caRun(t, client, rc, sdk.CAPrepare)
	if bytes.Equal(p4.NextRootPEM, p3.NextRootPEM) {
		t.Errorf("a prepare after discard returned the discarded CA")
	}
	caRun(t, client, rc, sdk.CAActivate)
	caRun(t, client, rc, sdk.CADeactivate)
	caRun(t, client, rc, sdk.CADiscard)
	if viewMount(t, cl, "pki").byName["discarded-"+day+"-2"] == nil {
		t.Errorf("the second discard of the day has no name of its own: %s", viewMount(t, cl, "pki").fingerprint())
	}
	planEmpty(t, client, rc, "after two discards")
	noFailures(t, client, rc, "after two discards")
}

// issueErr is the error text of a refused issuance ("" when it was signed).
func issueErr(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, issuer string) string {
	t.Helper()
	r, err := client.IssueCertificate(context.Background(), sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "server",
		CSRPEM: []byte(csrFor(t, "localhost")), TTL: 1500 * time.Hour, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	if e := r.Diagnostics.Err(); e != nil {
		return e.Error()
	}
	return ""
}

// Interrupted and refused operations: a token without the right to sign
// with the next root is refused at that step, after the root was made (an
// error naming the step, vaultpki.capabilities); the next prepare with a
// sufficient token completes the same next CA, reusing a key an
// interrupted CSR left. A token lacking a write the operation needs is
// refused before anything changes. A finish cancelled half-way (the
// host's Stop) leaves Vault in a state status reports and a second finish
// completes; plan is empty afterwards.
func TestRotateCAInterrupted(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	rc := vaultRequest(t, v, rootToken(t, v))
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	tokenWith := func(name, hcl string) sdk.RequestContext {
		if err := cl.Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
			t.Fatal(err)
		}
		tok, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{name}, TTL: "10m"})
		if err != nil {
			t.Fatal(err)
		}
		return vaultRequest(t, v, tok.Auth.ClientToken)
	}
	// Everything a prepare writes except set-signed: refused up front.
	weak := tokenWith("rotate-weak", `path "pki/*" { capabilities = ["create", "read", "update", "patch", "list"] }
path "pki_int/*" { capabilities = ["read", "list", "patch"] }
path "pki_int/intermediate/generate/*" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
`)
	before := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint()
	r, err := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: weak, Operation: sdk.CAPrepare})
	if err != nil || !r.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "pki_int/intermediate/set-signed needs update") ||
		!strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was changed") {
		t.Fatalf("prepare with a token that may not import: %v %v", err, r.Diagnostics)
	}
	if after := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint(); after != before {
		t.Fatalf("the refused prepare changed Vault")
	}

	// Everything but signing with the next root's issuer: the root is
	// made, then Vault refuses the signature.
	partial := tokenWith("rotate-partial", `path "pki/root/generate/internal" { capabilities = ["update"] }
path "pki/issuer/+/sign-intermediate" { capabilities = ["deny"] }
path "pki/*" { capabilities = ["read", "list"] }
path "pki_int/*" { capabilities = ["create", "read", "update", "patch", "list"] }
path "sys/capabilities-self" { capabilities = ["update"] }
`)
	r, err = client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: partial, Operation: sdk.CAPrepare})
	if err != nil || !r.Diagnostics.HasError() || !hasDiag(r.Diagnostics, "vaultpki.capabilities") ||
		!strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "make the next intermediate") || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "sign-intermediate") ||
		!strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "after 1 change(s)") {
		t.Fatalf("prepare refused half-way: %v %v", err, r.Diagnostics)
	}
	if len(r.NextRootPEM) != 0 || len(r.CurrentRootPEM) == 0 {
		t.Errorf("a half-made next CA is reported as next: %q", r.NextRootPEM)
	}
	st, err := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CAStatus})
	if err != nil || st.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(st.Diagnostics), "not complete") || len(st.NextRootPEM) != 0 {
		t.Errorf("status of a half-made next CA: %v %+v", err, st.Diagnostics)
	}
	halfRoot := viewMount(t, cl, "pki").byName["harden-next"]
	if halfRoot == nil {
		t.Fatal("no next root after the half-way prepare")
	}
	// Its CSR's key was made before the signature was refused.
	keyID := viewMount(t, cl, "pki_int").keys
	orphan := ""
	for id, n := range keyID {
		if n == "harden-next" {
			orphan = id
		}
	}
	if orphan == "" {
		t.Fatalf("no key harden-next after the half-way prepare: %v", keyID)
	}
	if r, _ := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CAActivate}); !r.Diagnostics.HasError() {
		t.Errorf("activate of a half-made next CA was accepted")
	}
	p := caRun(t, client, rc, sdk.CAPrepare)
	if !rootOf(t, p.NextRootPEM).Equal(halfRoot.cert) {
		t.Errorf("the completing prepare made another root")
	}
	intM := viewMount(t, cl, "pki_int")
	if y := intM.byName["harden-next"]; y == nil || y.keyID != orphan || len(intM.keys) != 2 {
		t.Errorf("the completing prepare did not reuse the key its CSR left: %s", intM.fingerprint())
	}

	// A finish stopped (the host's Stop) before it retires the old root.
	caRun(t, client, rc, sdk.CAActivate)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var steps []string
	stepHook = func(step string) {
		steps = append(steps, step)
		if strings.Contains(step, `to "retired-`) && strings.Contains(step, "rename issuer pki/") {
			cancel()
		}
	}
	var fr sdk.RotateCAResponse
	vaultPKI{}.RotateCA(cctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CAFinish}, &fr)
	stepHook = nil
	if !fr.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(fr.Diagnostics.Err()), "not started") || !strings.Contains(fmt.Sprint(fr.Diagnostics.Err()), "rename issuer pki/issuer/") {
		t.Fatalf("a cancelled finish: %+v (steps %q)", fr.Diagnostics, steps)
	}
	st, _ = client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CAStatus})
	if !strings.Contains(fmt.Sprint(st.Diagnostics), "finish of the CA rotation was interrupted") || st.Signing != "next" {
		t.Errorf("status of an interrupted finish: %+v signing %q", st.Diagnostics, st.Signing)
	}
	for _, op := range []string{sdk.CAPrepare, sdk.CADiscard, sdk.CADeactivate} {
		if r, _ := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: op}); !r.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "finish") {
			t.Errorf("%s during an interrupted finish: %v", op, r.Diagnostics)
		}
	}
	if issueErr(t, client, rc, "current") == "" {
		t.Errorf("issuer current during an interrupted finish was accepted")
	}
	f := caRun(t, client, rc, sdk.CAFinish)
	if !bytes.Equal(f.CurrentRootPEM, p.NextRootPEM) || len(f.NextRootPEM) != 0 {
		t.Errorf("the completing finish: current is not the new root")
	}
	planEmpty(t, client, rc, "after a finish completed on a second run")
	raw, _ := json.Marshal([]any{r, st, fr, f})
	if strings.Contains(string(raw), rootToken(t, v)) {
		t.Errorf("the root token appears in a response")
	}
}

// issuerList decodes Vault's LIST <mount>/issuers answer, whose ids go
// into request paths: whatever the answer, an accepted list holds only
// ids (letters, digits, '-'), each once and each named in "keys", key ids
// of the same shape, and one default at most.
func FuzzIssuerList(f *testing.F) {
	f.Add(`{"keys":["be418461-01bf-799d-03b8-38584ead543e","e29462a7-e091-cb45-8aff-e3de7fef8a5f"],"key_info":{"be418461-01bf-799d-03b8-38584ead543e":{"is_default":true,"issuer_name":"","key_id":"1e46d6cf-69ea-3470-43a6-12f9876250a1"},"e29462a7-e091-cb45-8aff-e3de7fef8a5f":{"is_default":false,"issuer_name":"harden-next","key_id":""}}}`)
	f.Add(`{"keys":["../../sys/policy/x"],"key_info":{}}`)
	f.Add(`{"keys":["a","a"]}`)
	f.Add(`{"keys":["a","b"],"key_info":{"a":{"is_default":true},"b":{"is_default":true,"key_id":"k/../x"}}}`)
	f.Add(`{"keys":[1,null,{"x":1}]}`)
	f.Fuzz(func(t *testing.T, answer string) {
		dec := json.NewDecoder(strings.NewReader(answer))
		dec.UseNumber()
		var d map[string]any
		if dec.Decode(&d) != nil {
			return
		}
		list, err := issuerList(d)
		if err != nil {
			if list != nil {
				t.Fatal("an error with a list")
			}
			return
		}
		listed := map[string]bool{}
		for _, k := range asList(d["keys"]) {
			if s, ok := k.(string); ok {
				listed[s] = true
			}
		}
		seen, defaults := map[string]bool{}, 0
		for _, i := range list {
			if !vaultIDRE.MatchString(i.id) || strings.Contains(i.id, "/") || strings.Contains(i.id, ".") || !listed[i.id] || seen[i.id] {
				t.Fatalf("accepted issuer id %q from %s", i.id, answer)
			}
			if i.keyID != "" && !vaultIDRE.MatchString(i.keyID) {
				t.Fatalf("accepted key id %q", i.keyID)
			}
			seen[i.id] = true
			if i.isDefault {
				defaults++
			}
		}
		if defaults > 1 {
			t.Fatalf("%d defaults accepted", defaults)
		}
	})
}

// classify reads the rotation phase from what Vault lists, names and signs.
// Over every mix of fixed roots and intermediates (each present or not,
// any name, any default, with a key or without): it never panics, the
// phase is one of the five, and what it says holds — a prepared next CA
// is a next root named harden-next that is not the default with an
// intermediate named harden-next it signed; "next" signs only when that
// intermediate is the default; the current intermediate has its key, is
// not the next one, is neither retired nor discarded and was signed by
// the current root; there is a next CA exactly when a root is named
// harden-next.
func FuzzClassify(f *testing.F) {
	a := seedCA(f, nil, "root A")
	b := seedCA(f, nil, "root B")
	x := seedCA(f, a, "intermediate X")
	y := seedCA(f, b, "intermediate Y")
	x2 := seedCA(f, a, "intermediate X2")
	roots := []*testCA{a, b, seedCA(f, nil, "root C")}
	inters := []*testCA{x, y, x2, a, b} // a and b: the keyless root copies
	names := []string{"", nextName, nextRootCopy, currentRootName, "retired-2026-01-01", "discarded-2026-01-01", "other"}
	f.Add([]byte{0x03, 0x11, 0x00, 0x00, 0x1f, 0x01, 0x11, 0x00, 0x00, 0x22, 0x01, 0x00})
	f.Add([]byte{0x07, 0x30, 0x11, 0x00, 0x1f, 0x01, 0x11, 0x10, 0x00, 0x22, 0x21, 0x12})
	f.Add([]byte{})
	// Prepared (A harden-root default, B harden-next; X default, Y
	// harden-next, the copies), then the same activated.
	f.Add([]byte{0x03, 0x01, 0x03, 0x01, 0x00, 0x1b, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02})
	f.Add([]byte{0x03, 0x01, 0x03, 0x01, 0x00, 0x1b, 0x02, 0x00, 0x01, 0x00, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, in []byte) {
		at := func(i int) byte {
			if i < len(in) {
				return in[i]
			}
			return 0
		}
		pos := 0
		build := func(mount string, cas []*testCA, keyed func(int) bool) *mountIssuers {
			m := &mountIssuers{mount: mount, keys: map[string]string{}}
			present := at(pos)
			pos++
			def := int(at(pos)) % (len(cas) + 1)
			pos++
			for i, c := range cas {
				ctl := at(pos)
				pos++
				if present&(1<<i) == 0 {
					continue
				}
				it := &issuerInfo{id: fmt.Sprintf("%s-%d", mount, i), name: names[int(ctl&0x0f)%len(names)], cert: c.cert, pem: c.pem}
				if keyed(i) || ctl&0x10 != 0 {
					it.keyID = "key-" + it.id
				}
				if def == i+1 {
					it.isDefault, m.def = true, it
				}
				m.all = append(m.all, it)
			}
			return m
		}
		root := build("pki", roots, func(int) bool { return true })
		inter := build("pki_int", inters, func(i int) bool { return i < 3 })
		r, err := classify(root, inter)
		if err != nil {
			if r != nil {
				t.Fatal("an error with a rotation")
			}
			return
		}
		if !slices.Contains([]string{phaseIdle, phasePartial, phasePrepared, phaseFinishing, phaseDiscarding}, r.phase) {
			t.Fatalf("phase %q", r.phase)
		}
		if (r.phase == phaseIdle) != (root.named(nextName) == nil) {
			t.Fatalf("phase %s with next root %v", r.phase, root.named(nextName))
		}
		if r.phase == phasePrepared && (r.next == nil || r.next.name != nextName || root.def == r.next || r.nextInt == nil || r.nextInt.name != nextName || !signedBy(r.nextInt, r.next)) {
			t.Fatalf("prepared without a whole next CA: %+v", r)
		}
		if r.signing() == "next" && (r.nextInt == nil || inter.def != r.nextInt || !signedBy(r.nextInt, r.next)) {
			t.Fatalf("signing next while the default is %+v", inter.def)
		}
		for _, c := range append([]*issuerInfo{r.curInt}, r.oldInts...) {
			if c == nil {
				continue
			}
			if c == r.nextInt || c.keyID == "" || setAside(c.name) || root.def == nil || root.def == r.next || !signedBy(c, root.def) {
				t.Fatalf("current intermediate %+v (root default %+v)", c, root.def)
			}
		}
		if r.curInt == nil && r.curIntErr == nil {
			t.Fatal("no current intermediate and no reason")
		}
	})
}

// The phases classify reads, state by state, as prepare, activate, finish
// and discard leave Vault (and as a run killed between two writes does).
func TestClassifyPhases(t *testing.T) {
	a, b := seedCA(t, nil, "root A"), seedCA(t, nil, "root B")
	x, y, x2 := seedCA(t, a, "intermediate X"), seedCA(t, b, "intermediate Y"), seedCA(t, a, "intermediate X2")
	type iss struct {
		ca      *testCA
		name    string
		keyless bool
		def     bool
	}
	mount := func(name string, is ...iss) *mountIssuers {
		m := &mountIssuers{mount: name}
		for n, i := range is {
			it := &issuerInfo{id: fmt.Sprintf("%s-%d", name, n), name: i.name, cert: i.ca.cert, pem: i.ca.pem, isDefault: i.def}
			if !i.keyless {
				it.keyID = "k-" + it.id
			}
			if i.def {
				m.def = it
			}
			m.all = append(m.all, it)
		}
		return m
	}
	rootIdle := []iss{{ca: a, name: "harden-root", def: true}}
	rootNext := []iss{{ca: a, name: "harden-root", def: true}, {ca: b, name: nextName}}
	intIdle := []iss{{ca: x, def: true}, {ca: a, keyless: true}}
	for name, c := range map[string]struct {
		root, inter    []iss
		phase, signing string
		curInt         *testCA
		err            string
	}{
		"after apply":       {root: rootIdle, inter: intIdle, phase: phaseIdle, signing: "current", curInt: x},
		"root made":         {root: rootNext, inter: intIdle, phase: phasePartial, signing: "current", curInt: x},
		"imported, unnamed": {root: rootNext, inter: append(intIdle, iss{ca: y}, iss{ca: b, keyless: true}), phase: phasePartial, signing: "current", curInt: x},
		"prepared":          {root: rootNext, inter: append(intIdle, iss{ca: y, name: nextName}, iss{ca: b, keyless: true, name: nextRootCopy}), phase: phasePrepared, signing: "current", curInt: x},
		"activated": {root: rootNext, inter: []iss{{ca: x}, {ca: a, keyless: true}, {ca: y, name: nextName, def: true}, {ca: b, keyless: true, name: nextRootCopy}},
			phase: phasePrepared, signing: "next", curInt: x},
		"finish: intermediates renamed": {root: rootNext, inter: []iss{{ca: x, name: "retired-d"}, {ca: a, keyless: true, name: "retired-d-root"}, {ca: y, def: true}, {ca: b, keyless: true}},
			phase: phaseFinishing, signing: "next"},
		"finish: root default switched": {root: []iss{{ca: a, name: "retired-d"}, {ca: b, name: nextName, def: true}}, inter: []iss{{ca: x, name: "retired-d"}, {ca: y, def: true}},
			phase: phaseFinishing, signing: "next"},
		"finished": {root: []iss{{ca: a, name: "retired-d"}, {ca: b, name: "harden-root", def: true}}, inter: []iss{{ca: x, name: "retired-d"}, {ca: y, def: true}},
			phase: phaseIdle, signing: "current", curInt: y},
		"discard begun": {root: rootNext, inter: append(intIdle, iss{ca: y, name: "discarded-d"}), phase: phaseDiscarding, signing: "current", curInt: x},
		"two intermediates, one default": {root: rootNext, inter: []iss{{ca: x, def: true}, {ca: x2}, {ca: y, name: nextName}},
			phase: phasePrepared, signing: "current", curInt: x},
		"two intermediates, none default": {root: rootNext, inter: []iss{{ca: x}, {ca: x2}, {ca: y, name: nextName, def: true}},
			phase: phasePrepared, signing: "next"},
		"next intermediate with a foreign name": {root: rootNext, inter: append(intIdle, iss{ca: y, name: "mine"}), err: `is named "mine"`},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := classify(mount("pki", c.root...), mount("pki_int", c.inter...))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || r.phase != c.phase || r.signing() != c.signing {
				t.Fatalf("phase %v signing %v err %v, want %s %s", r.phase, r.signing(), err, c.phase, c.signing)
			}
			switch {
			case c.curInt == nil && r.curInt != nil:
				t.Errorf("current intermediate %s, want none", r.curInt.cert.Subject.CommonName)
			case c.curInt != nil && (r.curInt == nil || !r.curInt.cert.Equal(c.curInt.cert)):
				t.Errorf("current intermediate %+v (%v), want %s", r.curInt, r.curIntErr, c.curInt.cert.Subject.CommonName)
			}
		})
	}
}

// Vault sealed in the middle of a prepare (after the next root was made):
// the error names the step and says the change made stays; once Vault is
// unsealed, the next prepare completes that same next CA. A killed apply's
// journal makes every writing operation refuse (nothing changed) until
// apply completes it; status still answers.
func TestRotateCASealedAndInterruptedApply(t *testing.T) {
	t.Setenv(applykit.StateDirEnv, t.TempDir())
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	rc := vaultRequest(t, v, rootToken(t, v))
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	stepHook = func(step string) {
		if strings.HasPrefix(step, "rotate_ca prepare: make the next intermediate") {
			if err := cl.Sys().SealWithContext(ctx); err != nil {
				t.Errorf("seal: %v", err)
			}
		}
	}
	var r sdk.RotateCAResponse
	vaultPKI{}.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: sdk.CAPrepare}, &r)
	stepHook = nil
	msg := fmt.Sprint(r.Diagnostics.Err())
	if !strings.Contains(msg, "make the next intermediate") || !strings.Contains(msg, "sealed") || !strings.Contains(msg, "after 1 change(s)") {
		t.Fatalf("prepare with Vault sealed half-way: %v", r.Diagnostics)
	}
	key, err := os.ReadFile(v.UnsealKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cl.Sys().UnsealWithContext(ctx, strings.TrimSpace(string(key))); err != nil || s.Sealed {
		t.Fatalf("unseal: %v", err)
	}
	half := viewMount(t, cl, "pki").byName["harden-next"]
	if half == nil {
		t.Fatal("no next root after the half-way prepare")
	}
	p := caRun(t, client, rc, sdk.CAPrepare)
	if !rootOf(t, p.NextRootPEM).Equal(half.cert) {
		t.Errorf("the prepare after unsealing made another root")
	}

	// A killed apply's journal.
	jp, _, err := applykit.TargetPaths("", "vaultpki", v.Address, "pki", "pki_int", "transit")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(jp), 0o700); err != nil {
		t.Fatal(err)
	}
	j, err := applykit.Begin(jp, applykit.State{Plugin: "vaultpki", Target: "vault", Phase: "step-3"})
	if err != nil {
		t.Fatal(err)
	}
	before := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint()
	for _, op := range []string{sdk.CAActivate, sdk.CAFinish, sdk.CADiscard} {
		r, err := client.RotateCA(ctx, sdk.RotateCARequest{RequestContext: rc, Operation: op})
		if err != nil || !hasDiag(r.Diagnostics, "vaultpki.apply.interrupted") || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was changed") {
			t.Errorf("%s with a killed apply's journal: %v %v", op, err, r.Diagnostics)
		}
	}
	if after := viewMount(t, cl, "pki").fingerprint() + viewMount(t, cl, "pki_int").fingerprint(); after != before {
		t.Errorf("a refused operation changed Vault")
	}
	if s := caRun(t, client, rc, sdk.CAStatus); !bytes.Equal(s.NextRootPEM, p.NextRootPEM) {
		t.Errorf("status with a killed apply's journal")
	}
	if err := j.Done(); err != nil {
		t.Fatal(err)
	}
	if a := caRun(t, client, rc, sdk.CAActivate); a.Signing != "next" {
		t.Errorf("activate after the journal is gone: %q", a.Signing)
	}
}
