package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// sparkPath is spark-etl's bundle: on a mount the dev Vault does not have,
// so apply must make it.
const sparkPath = "clients/data/spark-etl"

// withClients is rc with two clients: spark-etl delivered to Vault KV,
// billing to a directory.
func withClients(rc sdk.RequestContext) sdk.RequestContext {
	rc.Policy.Clients = []sdk.ClientRef{
		{Name: "spark-etl", Targets: []string{"warehouse-pg"}, VaultKV: sparkPath},
		{Name: "billing", Targets: []string{"warehouse-pg"}, Dir: "/etc/harden/clients/billing"},
	}
	return rc
}

func changeOf(cs []sdk.Change, resource string) (sdk.Change, bool) {
	for _, c := range cs {
		if c.Resource == resource {
			return c, true
		}
	}
	return sdk.Change{}, false
}

// clientBundle is what the host delivers for spark-etl: the chain Vault
// issued, the key, the CA, PKCS#12 stores (binary), the password and a
// rendered configuration.
func clientBundle(t *testing.T, client *hostclient.Client, rc sdk.RequestContext) (map[string][]byte, map[string]string, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "spark-etl"}}, key)
	ir, err := client.IssueCertificate(context.Background(), sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "client",
		CSRPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), TTL: 24 * time.Hour})
	if err != nil || ir.Diagnostics.HasError() {
		t.Fatalf("issue the spark-etl client certificate: %v %v", err, ir.Diagnostics.Err())
	}
	certs, err := sdk.ParseCertificatesPEM(ir.Certificate.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].Subject.CommonName != "spark-etl" {
		t.Fatalf("issued CN %q", certs[0].Subject.CommonName)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	password := "p12-" + fmt.Sprint(time.Now().UnixNano())
	ks, err := pkcs12.Modern.Encode(key, certs[0], certs[1:], password)
	if err != nil {
		t.Fatal(err)
	}
	cas, _ := sdk.ParseCertificatesPEM(ir.Certificate.CABundlePEM)
	ts, err := pkcs12.Modern.EncodeTrustStore(cas, password)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"tls.crt": ir.Certificate.ChainPEM, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), "ca.crt": ir.Certificate.CABundlePEM,
		"keystore.p12": ks, "truststore.p12": ts, "keystore.password": []byte(password),
		"warehouse-pg/pg_service.conf": []byte("[warehouse]\nsslmode=verify-full\nsslcert=/etc/harden/clients/spark-etl/tls.crt\n"),
	}
	meta := map[string]string{"serial": serialHex(certs[0]), "not_after": certs[0].NotAfter.UTC().Format(time.RFC3339),
		"renew_at": certs[0].NotAfter.Add(-8 * time.Hour).UTC().Format(time.RFC3339), "issuer": certs[0].Issuer.CommonName, "subject": certs[0].Subject.CommonName}
	return files, meta, certs[0]
}

func statusCode(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// The client identities against a real Vault: plan shows the client
// role's new names, spark-etl's KV v2 mount and its policy; apply makes
// them and a second apply changes nothing; the role issues spark-etl and
// refuses other CNs; a delivered bundle (binary PKCS#12 stores included)
// is readable with the client's policy alone, nothing else is; a second
// delivery is version 2; wrong clients and paths are refused; inventory
// and verify read what is there.
func TestClients(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	root := rootToken(t, v)
	base := vaultRequest(t, v, root)
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	// Hardened before clients were declared: adding them is a change.
	if ar, err := client.Apply(ctx, base, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply without clients: %v %v", err, ar.Diagnostics.Err())
	}
	rc := withClients(base)
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}

	// Before apply, the role refuses spark-etl: the change is needed.
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/client", map[string]any{"csr": csrFor(t, "spark-etl"), "ttl": "1h"}); err == nil {
		t.Fatal("the client role issued spark-etl before apply added it")
	}
	// Before apply, there is no mount to deliver to: refused.
	if r, err := client.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: rc, Client: "spark-etl", Path: sparkPath, Data: map[string][]byte{"tls.crt": []byte("x")}}); err != nil ||
		!strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "mount clients does not exist") || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was written") {
		t.Errorf("deliver before apply: %v %v", err, r.Diagnostics.Err())
	}
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, plan.Diagnostics.Err())
	}
	role, ok := changeOf(plan.Changes, "role pki_int/roles/client")
	if !ok || role.Action != sdk.Update || !strings.Contains(role.After, "spark-etl") || !strings.Contains(role.After, "billing") || strings.Contains(role.Before, "spark-etl") {
		t.Errorf("plan: the client role's names: %+v in %+v", role, plan.Changes)
	}
	if m, ok := changeOf(plan.Changes, "mount clients"); !ok || m.Action != sdk.Create || !strings.Contains(m.After, "kv-v2") {
		t.Errorf("plan: the KV v2 mount: %+v", plan.Changes)
	}
	if p, ok := changeOf(plan.Changes, "ACL policy harden-client-spark-etl"); !ok || p.Action != sdk.Create || !strings.Contains(p.After, "read on "+sparkPath) {
		t.Errorf("plan: spark-etl's policy: %+v", plan.Changes)
	}
	if _, ok := changeOf(plan.Changes, "ACL policy harden-client-billing"); ok {
		t.Errorf("plan: a policy for billing, which is delivered to a directory")
	}
	ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	if again, err := client.Apply(ctx, rc, nil, false); err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
		t.Fatalf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
	}
	mounts, err := cl.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := mounts["clients/"]; m == nil || m.Type != "kv" || m.Options["version"] != "2" {
		t.Fatalf("mount clients/: %+v", m)
	}
	rules, err := cl.Sys().GetPolicyWithContext(ctx, "harden-client-spark-etl")
	if err != nil || !strings.Contains(rules, `path "clients/data/spark-etl"`) || strings.Count(rules, "path ") != 1 || !strings.Contains(rules, `capabilities = ["read"]`) {
		t.Fatalf("policy harden-client-spark-etl: %v %q", err, rules)
	}

	// Issuing: the role issues spark-etl (and billing); another CN is
	// refused by the plugin in its own words, and by Vault's role too.
	files, meta, leaf := clientBundle(t, client, rc)
	ir, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "warehouse-pg", Usage: "client", CSRPEM: []byte(csrFor(t, "intruder")), TTL: time.Hour})
	if err != nil || !ir.Diagnostics.HasError() || len(ir.Certificate.ChainPEM) != 0 || !strings.Contains(fmt.Sprint(ir.Diagnostics.Err()), `CN "intruder" is not a client identity`) {
		t.Errorf("issue for CN intruder: %v %v", err, ir.Diagnostics.Err())
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/client", map[string]any{"csr": csrFor(t, "intruder"), "ttl": "1h"}); err == nil {
		t.Error("Vault's client role signed CN intruder")
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/client", map[string]any{"csr": csrFor(t, "billing"), "ttl": "1h"}); err != nil {
		t.Errorf("the client role refused billing: %v", err)
	}

	// Inventory before any delivery: the bundle is listed, not found.
	inv, err := client.Inventory(ctx, rc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if it, ok := storedByName(inv)["client/spark-etl"]; !ok || !strings.HasPrefix(it.Error, "not found") || it.Location != sparkPath || it.Kind != sdk.StoredCertificate {
		t.Errorf("inventory before delivery: %+v", it)
	}

	// Delivery.
	dr, err := client.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: rc, Client: "spark-etl", Path: sparkPath, Data: files, Metadata: meta})
	if err != nil || dr.Diagnostics.HasError() || dr.Version != 1 {
		t.Fatalf("deliver: %v %v version %d", err, dr.Diagnostics.Err(), dr.Version)
	}

	// A token with ONLY spark-etl's policy reads its bundle and metadata,
	// and nothing else.
	tok, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"harden-client-spark-etl"}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	spark, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	spark.SetToken(tok.Auth.ClientToken)
	got, err := spark.Logical().ReadWithContext(ctx, sparkPath)
	if err != nil || got == nil {
		t.Fatalf("spark-etl reads its bundle: %v", err)
	}
	data, _ := got.Data["data"].(map[string]any)
	back, err := decodeBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if !bytes.Equal(back[name], want) {
			t.Errorf("spark-etl's bundle: %s differs from what was delivered", name)
		}
	}
	if _, ok := data["keystore.p12.base64"].(string); !ok || data["keystore.p12"] != nil {
		t.Errorf("keystore.p12 is not stored base64 under keystore.p12.base64: keys %v", keysOf(data))
	}
	if _, _, _, err := pkcs12.DecodeChain(back["keystore.p12"], string(files["keystore.password"])); err != nil {
		t.Errorf("the stored keystore.p12 does not open: %v", err)
	}
	md, _ := got.Data["metadata"].(map[string]any)
	custom, _ := md["custom_metadata"].(map[string]any)
	for k, want := range meta {
		if custom[k] != want {
			t.Errorf("spark-etl reads custom_metadata %s = %v, want %s", k, custom[k], want)
		}
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "clients/data/other", map[string]any{"data": map[string]any{"tls.crt": "x"}}); err != nil {
		t.Fatal(err)
	}
	for what, f := range map[string]func() error{
		"read another client's bundle": func() error { _, err := spark.Logical().ReadWithContext(ctx, "clients/data/other"); return err },
		"read a bundle on secret/": func() error {
			_, err := spark.Logical().ReadWithContext(ctx, "secret/data/harden-conformance")
			return err
		},
		"write its own bundle": func() error {
			_, err := spark.Logical().WriteWithContext(ctx, sparkPath, map[string]any{"data": map[string]any{"x": "y"}})
			return err
		},
		"write its own metadata": func() error {
			_, err := spark.Logical().WriteWithContext(ctx, "clients/metadata/spark-etl", map[string]any{"max_versions": 1})
			return err
		},
		"delete its own bundle":         func() error { _, err := spark.Logical().DeleteWithContext(ctx, sparkPath); return err },
		"list the mount":                func() error { _, err := spark.Logical().ListWithContext(ctx, "clients/metadata"); return err },
		"read the role it is issued by": func() error { _, err := spark.Logical().ReadWithContext(ctx, "pki_int/roles/client"); return err },
	} {
		if err := f(); statusCode(err) != 403 {
			t.Errorf("a token with only harden-client-spark-etl could %s (err %v)", what, err)
		}
	}

	// A second delivery is version 2.
	files2, meta2, leaf2 := clientBundle(t, client, rc)
	dr2, err := client.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: rc, Client: "spark-etl", Path: sparkPath, Data: files2, Metadata: meta2})
	if err != nil || dr2.Diagnostics.HasError() || dr2.Version != 2 {
		t.Fatalf("second deliver: %v %v version %d", err, dr2.Diagnostics.Err(), dr2.Version)
	}

	// Wrong client or path: refused, nothing written.
	for _, bad := range []sdk.DeliverSecretRequest{
		{Client: "intruder", Path: "clients/data/intruder"},
		{Client: "billing", Path: "clients/data/billing"},
		{Client: "spark-etl", Path: "clients/data/other"},
		{Client: "spark-etl", Path: "secret/data/clients/spark-etl"},
	} {
		bad.RequestContext, bad.Data, bad.Metadata = rc, files, meta
		r, err := client.DeliverSecret(ctx, bad)
		if err != nil || !r.Diagnostics.HasError() || r.Version != 0 || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "nothing was written") {
			t.Errorf("deliver %s to %s: %v %v version %d", bad.Client, bad.Path, err, r.Diagnostics.Err(), r.Version)
		}
	}
	for _, p := range []string{"clients/data/intruder", "clients/data/billing", "secret/data/clients/spark-etl"} {
		if s, err := cl.Logical().ReadWithContext(ctx, p); err != nil || s != nil {
			t.Errorf("a refused delivery wrote %s: %v", p, err)
		}
	}
	if s, _ := cl.Logical().ReadWithContext(ctx, "clients/data/other"); s == nil || fmt.Sprint(s.Data["metadata"].(map[string]any)["version"]) != "1" {
		t.Errorf("a refused delivery wrote another client's path: %+v", s)
	}
	if s, _ := cl.Logical().ReadWithContext(ctx, "clients/metadata/spark-etl"); s == nil || fmt.Sprint(s.Data["current_version"]) != "2" {
		t.Errorf("spark-etl's bundle after the refusals: %+v", s)
	}

	// Inventory, as root and as harden-verify: the delivered leaf's serial
	// and not_after, read from the bundle's metadata alone (no chain).
	verifyRC := withClients(vaultRequest(t, v, ""))
	verifyRC.Target = sdk.NewTarget("vault", verifyRC.Target.Connection, verifyRC.Target.Spec, appRoleCreds(t, cl, "harden-verify"))
	inventoryAs := func(rc sdk.RequestContext) sdk.StoredItem {
		t.Helper()
		r, err := client.Inventory(ctx, rc, 1)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := json.Marshal(r)
		if strings.Contains(string(all), "PRIVATE KEY") || strings.Contains(string(all), strings.TrimSpace(string(files2["tls.key"]))) {
			t.Fatalf("inventory returned key material")
		}
		return storedByName(r)["client/spark-etl"]
	}
	inv, err = client.Inventory(ctx, rc, 1)
	if err != nil {
		t.Fatal(err)
	}
	vinv, err := client.Inventory(ctx, verifyRC, 1)
	if err != nil {
		t.Fatal(err)
	}
	for who, r := range map[string]sdk.InventoryResponse{"root": inv, "harden-verify": vinv} {
		it := storedByName(r)["client/spark-etl"]
		if it.Error != "" || it.Location != sparkPath || it.Kind != sdk.StoredCertificate || len(it.ChainPEM) != 0 {
			t.Errorf("inventory as %s after delivery: %+v", who, it)
		}
		if it.Serial != serialHex(leaf2) || it.Serial == serialHex(leaf) || !it.NotAfter.Equal(leaf2.NotAfter.Truncate(time.Second)) {
			t.Errorf("inventory as %s: serial %s not_after %s, want the second delivery's %s %s", who, it.Serial, it.NotAfter, serialHex(leaf2), leaf2.NotAfter)
		}
	}
	// harden-verify reads the bundle's metadata, never its data (the key):
	// Vault refuses it the data path, so inventory cannot have needed it.
	vtok, err := cl.Auth().Token().CreateWithContext(ctx, &tokenCreate{Policies: []string{"harden-verify"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	verifier.SetToken(vtok.Auth.ClientToken)
	if _, err := verifier.Logical().ReadWithContext(ctx, sparkPath); statusCode(err) != 403 {
		t.Errorf("harden-verify read spark-etl's bundle data (err %v)", err)
	}
	if _, err := verifier.Logical().ReadWithDataWithContext(ctx, sparkPath, map[string][]string{"version": {"1"}}); statusCode(err) != 403 {
		t.Errorf("harden-verify read an older version of spark-etl's bundle (err %v)", err)
	}
	if m, err := verifier.Logical().ReadWithContext(ctx, "clients/metadata/spark-etl"); err != nil || m == nil {
		t.Errorf("harden-verify cannot read spark-etl's metadata: %v", err)
	}
	for what, f := range map[string]func() error{
		"write the metadata": func() error {
			_, err := verifier.Logical().WriteWithContext(ctx, "clients/metadata/spark-etl", map[string]any{"max_versions": 1})
			return err
		},
		"list the mount": func() error { _, err := verifier.Logical().ListWithContext(ctx, "clients/metadata"); return err },
		"read another client's metadata": func() error {
			_, err := verifier.Logical().ReadWithContext(ctx, "clients/metadata/other")
			return err
		},
	} {
		if err := f(); statusCode(err) != 403 {
			t.Errorf("harden-verify could %s (err %v)", what, err)
		}
	}

	// Metadata that does not describe the current version is an error,
	// never a plausible certificate. A version written without its
	// metadata (a delivery whose metadata write failed):
	if _, err := cl.Logical().WriteWithContext(ctx, sparkPath, map[string]any{"data": map[string]any{"tls.crt": "x"}}); err != nil {
		t.Fatal(err)
	}
	if it := inventoryAs(verifyRC); !strings.Contains(it.Error, "custom_metadata describes version 2, but the current version is 3") || it.Serial != "" || !it.NotAfter.IsZero() {
		t.Errorf("inventory of a version without its metadata: %+v", it)
	}
	// No custom_metadata at all:
	if _, err := cl.Logical().WriteWithContext(ctx, "clients/metadata/spark-etl", map[string]any{"custom_metadata": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if it := inventoryAs(verifyRC); !strings.Contains(it.Error, "no custom_metadata") || it.Serial != "" || !it.NotAfter.IsZero() {
		t.Errorf("inventory of a bundle without custom_metadata: %+v", it)
	}
	// Metadata restored for version 3: listed again (what follows fails
	// for the version's state alone).
	restored := map[string]any{kvVersionKey: "3"}
	for k, val := range meta2 {
		restored[k] = val
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "clients/metadata/spark-etl", map[string]any{"custom_metadata": restored}); err != nil {
		t.Fatal(err)
	}
	if it := inventoryAs(verifyRC); it.Error != "" || it.Serial != serialHex(leaf2) {
		t.Errorf("inventory after the metadata was restored: %+v", it)
	}
	// The current version deleted (soft), then undeleted and destroyed:
	if _, err := cl.Logical().DeleteWithContext(ctx, sparkPath); err != nil {
		t.Fatal(err)
	}
	if it := inventoryAs(verifyRC); !strings.Contains(it.Error, "the current version is deleted: version 3 was deleted at") || it.Serial != "" || !it.NotAfter.IsZero() {
		t.Errorf("inventory of a deleted current version: %+v", it)
	}
	if it := inventoryAs(rc); !strings.Contains(it.Error, "version 3 was deleted at") {
		t.Errorf("inventory as root of a deleted current version: %+v", it)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "clients/undelete/spark-etl", map[string]any{"versions": []int{3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "clients/destroy/spark-etl", map[string]any{"versions": []int{3}}); err != nil {
		t.Fatal(err)
	}
	if it := inventoryAs(verifyRC); !strings.Contains(it.Error, "version 3 is destroyed") || it.Serial != "" {
		t.Errorf("inventory of a destroyed current version: %+v", it)
	}

	// Verify: the policy is harden's (configuration-level), also as
	// harden-verify; a widened policy fails, plan shows it, apply fixes it.
	for who, req := range map[string]sdk.RequestContext{"root": rc, "harden-verify": verifyRC} {
		vr, err := client.Verify(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		cs := statusOf(vr, "vaultpki.clients.policy")
		if len(cs) != 1 || cs[0].Status != checks.Pass || !cs[0].ConfigurationOnly || !strings.Contains(cs[0].Evidence, "configuration only") || cs[0].Subject != "ACL policy harden-client-spark-etl" {
			t.Errorf("verify as %s: %+v", who, cs)
		}
	}
	wide := clientPolicy(kvClient{name: "spark-etl", mount: "clients", rest: "spark-etl"}) + "path \"clients/data/*\" { capabilities = [\"read\"] }\n"
	if err := cl.Sys().PutPolicyWithContext(ctx, "harden-client-spark-etl", wide); err != nil {
		t.Fatal(err)
	}
	vr, _ := client.Verify(ctx, rc)
	if cs := statusOf(vr, "vaultpki.clients.policy"); len(cs) != 1 || cs[0].Status != checks.Fail || !strings.Contains(cs[0].Evidence, `clients/data/*`) {
		t.Errorf("verify of a widened policy: %+v", cs)
	}
	p2, _ := client.Plan(ctx, rc)
	if c, ok := changeOf(p2.Changes, "ACL policy harden-client-spark-etl"); !ok || c.Action != sdk.Update || len(p2.Changes) != 1 {
		t.Errorf("plan after the policy was widened: %+v", p2.Changes)
	}
	if ar, err := client.Apply(ctx, rc, p2.PlanToken, false); err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 {
		t.Fatalf("apply restores the policy: %v %v", err, ar.Diagnostics.Err())
	}
	if rules, _ := cl.Sys().GetPolicyWithContext(ctx, "harden-client-spark-etl"); strings.Contains(rules, "*") {
		t.Errorf("the policy is still wide: %s", rules)
	}

	// No secret in anything the plugin answered.
	all, _ := json.Marshal([]any{plan, ar, dr, dr2, inv, vinv, vr, ir})
	for name, secret := range map[string]string{"tls.key": string(files["tls.key"]), "keystore.password": string(files["keystore.password"]),
		"keystore.p12": base64.StdEncoding.EncodeToString(files["keystore.p12"]), "root token": root} {
		if strings.Contains(string(all), strings.TrimSpace(secret)) {
			t.Errorf("%s appears in the plugin's output", name)
		}
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A KV version 1 mount where a client's bundle should go: plan and apply
// are an error naming the mount, nothing changes; a delivery there is
// refused before anything is written.
func TestClientsKVv1Refused(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	rc := vaultRequest(t, v, rootToken(t, v))
	rc.Policy.Clients = []sdk.ClientRef{{Name: "spark-etl", Targets: []string{"warehouse-pg"}, VaultKV: "legacy/data/spark-etl"}}
	cl, err := client0(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Sys().MountWithContext(ctx, "legacy", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	p, err := client.Plan(ctx, rc)
	if err != nil || !p.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(p.Diagnostics.Err()), "mount legacy") || !strings.Contains(fmt.Sprint(p.Diagnostics.Err()), "KV version 1, not 2") {
		t.Errorf("plan with a KV v1 mount: %v %v", err, p.Diagnostics.Err())
	}
	ar, err := client.Apply(ctx, rc, nil, false)
	if err != nil || !ar.Diagnostics.HasError() || len(ar.Applied) != 0 || !strings.Contains(fmt.Sprint(ar.Diagnostics.Err()), "mount legacy") {
		t.Errorf("apply with a KV v1 mount: %v %v %+v", err, ar.Diagnostics.Err(), ar.Applied)
	}
	mounts, _ := cl.Sys().ListMountsWithContext(ctx)
	if mounts["pki/"] != nil || mounts["legacy/"].Options["version"] != "1" {
		t.Errorf("the refused apply changed the mounts: %v", keysOfMounts(mounts))
	}
	if rules, _ := cl.Sys().GetPolicyWithContext(ctx, "harden-client-spark-etl"); rules != "" {
		t.Errorf("the refused apply wrote the client's policy")
	}
	dr, err := client.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: rc, Client: "spark-etl", Path: "legacy/data/spark-etl",
		Data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\n")}})
	if err != nil || !dr.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(dr.Diagnostics.Err()), "not KV version 2") || !strings.Contains(fmt.Sprint(dr.Diagnostics.Err()), "nothing was written") {
		t.Errorf("deliver to a KV v1 mount: %v %v", err, dr.Diagnostics.Err())
	}
	if l, err := cl.Logical().ListWithContext(ctx, "legacy/"); err != nil || l != nil {
		t.Errorf("the refused delivery wrote into the v1 mount: %v %+v", err, l)
	}
}

func keysOfMounts(m map[string]*vault.MountOutput) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
