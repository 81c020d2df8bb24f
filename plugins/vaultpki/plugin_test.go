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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		Plugin: vaultPKI{},
		Name:   "vaultpki",
		Target: func(addr string) sdk.Target {
			conn, _ := json.Marshal(map[string]any{"address": "https://" + addr})
			return sdk.NewTarget("vault", conn, []byte(`{}`), map[string][]byte{"token": []byte("t")})
		},
	})
}

// vaultRequest is the request for a testenv Vault with a PostgreSQL target
// beside it (the server role's names) and a transit KEK.
func vaultRequest(t testing.TB, v *testenv.Vault, token string) sdk.RequestContext {
	t.Helper()
	conn, _ := json.Marshal(map[string]any{"address": v.Address, "ca_file": v.CAFile})
	spec, _ := json.Marshal(map[string]any{"audit": map[string]any{"file": filepath.Join(v.AuditDir(), "vault-audit.log")}, "transit": map[string]any{"keys": []string{"lake-kek"}}})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(),
		Rotation: sdk.Rotation{MaxLifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour},
		Targets: []sdk.TargetRef{{Name: "vault", Plugin: "vaultpki"}, {Name: "warehouse-pg", Plugin: "postgres", CertificateNames: []string{"localhost"},
			Endpoints: []sdk.Endpoint{{Name: "postgres", Address: "127.0.0.1:5432"}}}}},
		Target: sdk.NewTarget("vault", conn, spec, map[string][]byte{"token": []byte(token)})}
	if token == "" {
		rc.Target = sdk.NewTarget("vault", conn, spec, nil)
	}
	return rc
}

func rootToken(t testing.TB, v *testenv.Vault) string {
	b, err := os.ReadFile(v.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func statusOf(r sdk.VerifyResponse, id string) []checks.Check {
	var out []checks.Check
	for _, c := range r.Checks {
		if c.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// Fresh dev Vault → verify fails with specific IDs → plan → apply → verify
// passes → second apply changes nothing; a weak token changes nothing; a
// role above the policy's max TTL is reported; an issued certificate chains
// to the rendered CA; denied requests are counted once.
func TestFlow(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	root := rootToken(t, v)
	rc := vaultRequest(t, v, root)
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()

	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify before: %v %v", err, before.Diagnostics.Err())
	}
	for _, id := range []string{"vaultpki.pki.ca_present", "vaultpki.audit.enabled", "vaultpki.transit.keys"} {
		cs := statusOf(before, id)
		if len(cs) == 0 || cs[0].Status != checks.Fail {
			t.Errorf("before: %s should fail: %+v", id, cs)
		}
	}

	// A token that may only read cannot apply: refused before any change.
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Sys().PutPolicyWithContext(ctx, "readonly", `path "sys/*" { capabilities = ["read", "list"] }`); err != nil {
		t.Fatal(err)
	}
	weak, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"readonly"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	wr, err := client.Apply(ctx, vaultRequest(t, v, weak.Auth.ClientToken), nil, false)
	if err != nil || !wr.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(wr.Diagnostics.Err()), "lacks capabilities") {
		t.Fatalf("apply with a read-only token: %v %v", err, wr.Diagnostics.Err())
	}
	if mounts, _ := cl.Sys().ListMountsWithContext(ctx); mounts["pki/"] != nil {
		t.Fatalf("the refused apply created a mount")
	}

	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) < 8 {
		t.Fatalf("plan: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	for _, c := range after.Checks {
		if strings.HasPrefix(c.ID, "vaultpki.") && (c.Status == checks.Fail || c.Status == checks.Error) {
			t.Errorf("after apply: %s %s (%s): %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
	for _, id := range []string{"vaultpki.pki.ca_present", "vaultpki.pki.ca_lifetime", "vaultpki.pki.ca_key", "vaultpki.pki.roles", "vaultpki.pki.urls", "vaultpki.pki.tidy", "vaultpki.pki.lint",
		"vaultpki.pki.expiry", "vaultpki.transit.keys", "vaultpki.audit.enabled", "vaultpki.audit.denied", "tls.protocol.versions", "tls.certificate.trusted"} {
		if len(statusOf(after, id)) == 0 {
			t.Errorf("after: no %s check", id)
		}
	}
	// Nothing issued yet but verify's own 5-minute lint leaves: the expiry
	// check has nothing to judge and says so — it does not pass on zero.
	if ex := statusOf(after, "vaultpki.pki.expiry"); len(ex) != 1 || ex[0].Status != checks.Skip || !strings.Contains(ex[0].Evidence, "no issued certificate to judge") {
		t.Errorf("expiry with no issued certificate: %+v", ex)
	}
	// Checks that need live evidence pass on it, not on configuration.
	for _, c := range after.Checks {
		if c.Status == checks.Pass && c.ConfigurationOnly {
			t.Errorf("%s passed on configuration only: %s", c.ID, c.Evidence)
		}
	}
	if ev := statusOf(after, "vaultpki.audit.enabled"); len(ev) == 0 || !strings.Contains(ev[0].Evidence, "found in the audit log") {
		t.Errorf("audit canary: %+v", ev)
	}
	if os.Getenv("HARDEN_DEBUG_CHECKS") != "" {
		for _, c := range after.Checks {
			t.Logf("%s %s %s: %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
	again, err := client.Apply(ctx, rc, nil, false)
	if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
		t.Errorf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
	}

	// An issued certificate chains to the CA apply made (key made here).
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}}, key)
	s, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/server", map[string]any{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})), "ttl": "1500h"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := parsePEMCert(fmt.Sprint(s.Data["certificate"]))
	inter, _ := parsePEMCert(fmt.Sprint(s.Data["issuing_ca"]))
	rootPEM, _ := caPEM(ctx, cl, "pki")
	rootCert, _ := parsePEMCert(rootPEM)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(rootCert)
	inters.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		t.Errorf("issued certificate does not chain to the root: %v", err)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/server", map[string]any{"csr": csrFor(t, "*.example.com"), "ttl": "24h"}); err == nil {
		t.Errorf("the server role signed a wildcard outside its names")
	}

	// Least privilege: verify logs in through the harden-verify AppRole
	// apply made and passes with it.
	roleID, err := cl.Logical().ReadWithContext(ctx, "auth/approle/role/harden-verify/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID, err := cl.Logical().WriteWithContext(ctx, "auth/approle/role/harden-verify/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	approle := vaultRequest(t, v, "")
	approle.Target = sdk.NewTarget("vault", approle.Target.Connection, approle.Target.Spec, map[string][]byte{
		"role_id": []byte(fmt.Sprint(roleID.Data["role_id"])), "secret_id": []byte(fmt.Sprint(secretID.Data["secret_id"]))})
	lp, err := client.Verify(ctx, approle)
	if err != nil || lp.Diagnostics.HasError() {
		t.Fatalf("verify as harden-verify: %v %v", err, lp.Diagnostics.Err())
	}
	seenLP := map[string]bool{}
	for _, c := range lp.Checks {
		seenLP[c.ID] = true
		if strings.HasPrefix(c.ID, "vaultpki.") && (c.Status == checks.Fail || c.Status == checks.Error) {
			t.Errorf("verify as harden-verify: %s %s (%s): %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
	// The least-privilege role must still see everything, not less.
	for _, id := range []string{"vaultpki.pki.ca_lifetime", "vaultpki.pki.roles", "vaultpki.pki.urls", "vaultpki.pki.tidy", "vaultpki.transit.keys", "vaultpki.audit.enabled"} {
		if !seenLP[id] {
			t.Errorf("verify as harden-verify: %s missing", id)
		}
	}
	// The issuer AppRole signs a CSR for another target; the KEK user's
	// token makes data keys but cannot read or rotate anything else.
	issuerReq := vaultRequest(t, v, "")
	issuerReq.Target = sdk.NewTarget("vault", issuerReq.Target.Connection, issuerReq.Target.Spec, appRoleCreds(t, cl, "harden-issuer"))
	if ir, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: issuerReq, ForTarget: "warehouse-pg", Usage: "server",
		CSRPEM: []byte(csrFor(t, "localhost")), TTL: 24 * time.Hour}); err != nil || ir.Diagnostics.HasError() || len(ir.Certificate.ChainPEM) == 0 {
		t.Errorf("issue as harden-issuer: %v %v", err, ir.Diagnostics.Err())
	}
	kekTok, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"harden-kek-lake-kek"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	kc, _ := client0(ctx, vaultRequest(t, v, kekTok.Auth.ClientToken))
	if kc == nil {
		t.Fatal("KEK user cannot log in")
	}
	if _, err := kc.Logical().WriteWithContext(ctx, "transit/datakey/plaintext/lake-kek", nil); err != nil {
		t.Errorf("the KEK user cannot make a data key: %v", err)
	}
	if _, err := kc.Logical().WriteWithContext(ctx, "transit/keys/lake-kek/rotate", nil); err == nil {
		t.Errorf("the KEK user could rotate the key")
	}
	if pr, _ := client.Plan(ctx, approle); !pr.Diagnostics.HasError() {
		t.Errorf("the read-only verify role could plan (it cannot even read mounts)")
	}

	// A role above the policy's max TTL is reported; a denied request is
	// counted once.
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/roles/legacy", map[string]any{"allowed_domains": "example.com", "max_ttl": "8760h", "key_type": "ec"}); err != nil {
		t.Fatal(err)
	}
	wcl, _ := client0(ctx, vaultRequest(t, v, weak.Auth.ClientToken))
	_, _ = wcl.Logical().ReadWithContext(ctx, "pki_int/roles/server") // denied
	third, err := client.Verify(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	legacy := false
	for _, c := range statusOf(third, "vaultpki.pki.roles") {
		if strings.Contains(c.Subject, "legacy") {
			legacy = c.Status == checks.Fail && strings.Contains(c.Evidence, "exceeds the rotation policy")
		}
	}
	if !legacy {
		t.Errorf("role legacy (max_ttl 8760h) not reported: %+v", statusOf(third, "vaultpki.pki.roles"))
	}
	// Now Vault has issued: the 1500 h leaf is fine, the harden-issuer's
	// 24 h one is inside every alert window.
	if ex := statusOf(third, "vaultpki.pki.expiry"); len(ex) != 1 || ex[0].Status != checks.Fail || !strings.Contains(ex[0].Evidence, "< 7 days") {
		t.Errorf("expiry with a 24 h certificate: %+v", ex)
	}
	// Three denials since the previous verify: the KEK user's rotate, the
	// verify role's refused plan and the read-only token's read (harden's
	// own canaries are not counted).
	if d := statusOf(third, "vaultpki.audit.denied"); len(d) == 0 || !strings.HasPrefix(d[0].Evidence, "3 permission-denied") {
		t.Errorf("denied requests since the previous verify: %+v", d)
	}
	// No token in any check or diagnostic.
	all, _ := json.Marshal([]any{before, after, third, ar, wr})
	if strings.Contains(string(all), root) || strings.Contains(string(all), weak.Auth.ClientToken) {
		t.Errorf("a Vault token appears in the plugin's output")
	}
}

func csrFor(t *testing.T, name string) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

type tokenCreate = vault.TokenCreateRequest

func client0(ctx context.Context, rc sdk.RequestContext) (*vault.Client, error) {
	st, ok := load(rc, &sdk.Diagnostics{})
	if !ok {
		return nil, fmt.Errorf("load")
	}
	return client(ctx, rc, st.conn)
}

// An intermediate signed outside Vault: apply writes Vault's CSR and stops;
// the enterprise root signs it; the next apply sets it; certificates issued
// then chain to the enterprise root, and the issuer hands out that root.
func TestExternalIntermediate(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "enterprise"), 0o700)
	enterprise, err := testenv.NewEnterpriseRoot(filepath.Join(dir, "enterprise"))
	if err != nil {
		t.Fatal(err)
	}
	csrFile, certFile := filepath.Join(dir, "int.csr"), filepath.Join(dir, "int-chain.pem")
	rc := vaultRequest(t, v, rootToken(t, v))
	spec, _ := json.Marshal(map[string]any{"pki": map[string]any{"external_intermediate": map[string]any{"csr_file": csrFile, "certificate_file": certFile}}})
	rc.Target = sdk.NewTarget("vault", rc.Target.Connection, spec, map[string][]byte{"token": []byte(rootToken(t, v))})
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	csr, err := os.ReadFile(csrFile)
	if err != nil {
		t.Fatalf("no CSR written: %v", err)
	}
	if p, _ := client.Plan(ctx, rc); len(p.Diagnostics) == 0 || !strings.Contains(fmt.Sprint(p.Diagnostics), "waits for its signed certificate") {
		t.Errorf("plan while the CSR is out: %+v", p.Diagnostics)
	}
	signed, err := enterprise.SignIntermediate(csr)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := os.ReadFile(enterprise.CertFile)
	if err := os.WriteFile(certFile, append(signed, rootPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 {
		t.Fatalf("apply with the signed chain: %v %v %+v", err, ar.Diagnostics.Err(), ar.Applied)
	}
	r, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "server", CSRPEM: []byte(csrFor(t, "localhost")), TTL: 24 * time.Hour})
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("issue: %v %v", err, r.Diagnostics.Err())
	}
	if strings.TrimSpace(string(r.Certificate.CABundlePEM)) != strings.TrimSpace(string(rootPEM)) {
		t.Errorf("the trust bundle is not the enterprise root:\n%s", r.Certificate.CABundlePEM)
	}
	certs, _ := sdk.ParseCertificatesPEM(r.Certificate.ChainPEM)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	for _, c := range certs[1:] {
		inters.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		t.Errorf("issued certificate does not chain to the enterprise root: %v", err)
	}
	if again, _ := client.Apply(ctx, rc, nil, false); len(again.Applied) != 0 {
		t.Errorf("second apply: %+v", again.Applied)
	}
}

// exportable and allow_plaintext_backup cannot be turned off again: plan
// says the key needs replacing (no pretend fix) and verify fails it.
func TestExportableKeyNeedsANewKey(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	rc := vaultRequest(t, v, rootToken(t, v))
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Sys().MountWithContext(ctx, "transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "transit/keys/lake-kek", map[string]any{"type": "aes256-gcm96", "exportable": true}); err != nil {
		t.Fatal(err)
	}
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	p, err := client.Plan(ctx, rc)
	if err != nil || p.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(p.Diagnostics), "lake-kek needs a new key: exportable is on") {
		t.Fatalf("plan: %v %+v", err, p.Diagnostics)
	}
	for _, ch := range p.Changes {
		if strings.Contains(ch.After, "exportable") {
			t.Errorf("plan pretends to fix exportable: %+v", ch)
		}
	}
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	vr, _ := client.Verify(ctx, rc)
	if cs := statusOf(vr, "vaultpki.transit.keys"); len(cs) != 1 || cs[0].Status != checks.Fail || !strings.Contains(cs[0].Evidence, "exportable=true") {
		t.Errorf("verify of an exportable key: %+v", cs)
	}
}

// appRoleCreds logs nothing in: it fetches a role id and a new secret id of
// an AppRole harden made, as an operator hands them to a routine job.
func appRoleCreds(t *testing.T, cl *vault.Client, role string) map[string][]byte {
	rid, err := cl.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := cl.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"role_id": []byte(fmt.Sprint(rid.Data["role_id"])), "secret_id": []byte(fmt.Sprint(sid.Data["secret_id"]))}
}

// connection.ca_file is read bounded: /dev/zero is an error naming it, not
// a plugin that runs out of memory.
func TestCAFileBounded(t *testing.T) {
	if _, err := (connection{CAFile: "/dev/zero"}).roots(); err == nil || !strings.Contains(err.Error(), "connection.ca_file /dev/zero") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("roots(/dev/zero) = %v", err)
	}
}
