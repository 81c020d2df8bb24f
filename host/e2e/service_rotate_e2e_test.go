package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// mtlsAPI is a real HTTPS service (Go's net/http) that requires client
// certificates from the CAs in clientCAFile, which it reads again for
// every handshake — an operator changing the service's client trust takes
// effect at once. Its own certificate is from ca (not harden's to deploy):
// TLS 1.2+, AEAD suites, the profile's groups, HSTS and nosniff.
func mtlsAPI(t *testing.T, ca *testenv.CA, clientCAFile string) string {
	t.Helper()
	certFile, keyFile, err := ca.Issue("api", false, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		pool := x509.NewCertPool()
		if data, err := os.ReadFile(clientCAFile); err == nil {
			pool.AppendCertsFromPEM(data)
		}
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pool
		return c, nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			io.WriteString(w, "api\n")
		})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// vaultRoot is the root Vault's PKI hands out now (PEM).
func vaultRoot(t *testing.T, v *testenv.Vault) []byte {
	t.Helper()
	vcl, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := vcl.Logical().Read("pki/cert/ca")
	if err != nil || sec == nil {
		t.Fatalf("Vault root: %v", err)
	}
	return []byte(sec.Data["certificate"].(string) + "\n")
}

// chainsTo: the leaf of the PEM file verifies against rootPEM.
func chainsTo(t *testing.T, file string, rootPEM []byte) bool {
	t.Helper()
	certs, err := sdk.ParseCertificatesPEM(mustRead(t, file))
	if err != nil || len(certs) == 0 {
		return false
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// serviceVaultPolicy writes a vault-pki policy with a verify-only service
// target api at addr in the mTLS scope.
func serviceVaultPolicy(t *testing.T, dir string, v *testenv.Vault, addr, caFile string) (policy, store string) {
	t.Helper()
	vc := v.Target()["connection"].(map[string]any)
	store = filepath.Join(dir, "certs")
	policy = filepath.Join(dir, "policy.yaml")
	api, scope := "", ""
	if addr != "" {
		scope = "mtls: {scope: [api]}\n"
		api = fmt.Sprintf(`  - name: api
    plugin: service
    connection: {address: %q, protocol: https, server_name: localhost, ca_file: %q}
`, addr, caFile)
	}
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q, client_name: harden-admin}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
%stargets:
  - name: vault
    plugin: vaultpki
    connection: {address: %q, ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [harden-admin]}}
%s`, store, scope, vc["address"], vc["ca_file"], vc["token_file"], api)), 0o600); err != nil {
		t.Fatal(err)
	}
	return policy, store
}

// A verify-only service in the mTLS scope under Vault PKI (a real Vault,
// a real HTTPS API requiring client certificates from Vault's CA): apply
// issues harden's client certificate for it and no server certificate;
// the schedule covers that client certificate and expects no server one;
// rotate renews it when due (here: --force-renew) behind a live gate — the
// API asks for a client certificate and lets the renewed one in — and
// verify passes with it.
func TestServiceClientCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "service", "vaultpki")
	v := testenv.VaultForTest(t)
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	run := cliRunner(t, pluginDir, filepath.Join(dir, "plugins.lock"))
	policy, _ := serviceVaultPolicy(t, dir, v, "", "")
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// The API trusts Vault's CA for client certificates (ClientCAFile =
	// the Vault CA bundle), as its operator set it.
	clientCAs := filepath.Join(dir, "api-client-cas.pem")
	os.WriteFile(clientCAs, vaultRoot(t, v), 0o644)
	addr := mtlsAPI(t, ca, clientCAs)
	policy, store := serviceVaultPolicy(t, dir, v, addr, ca.CertFile)
	if r := run("apply", "-f", policy, "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	client := filepath.Join(store, "api", "client.pem")
	if _, err := os.Stat(filepath.Join(store, "api", "server.pem")); !os.IsNotExist(err) {
		t.Errorf("a server certificate was issued for the verify-only target: %v", err)
	}
	before := mustRead(t, client)
	if r := run("verify", "-f", policy, "--target", "api"); r.code != 0 || !strings.Contains(r.stdout, "tls.client_auth.required") {
		t.Fatalf("verify before: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	r := run("rotate", "-f", policy, "--schedule", "--target", "api", "--format", "json")
	var sch struct {
		DueNow    bool     `json:"due_now"`
		NotIssued []string `json:"not_issued"`
		Certs     []struct {
			Target, Kind string
		} `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sch); err != nil || r.code != 0 {
		t.Fatalf("schedule: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if sch.DueNow || len(sch.NotIssued) != 0 || len(sch.Certs) != 1 || sch.Certs[0].Kind != "client" || strings.Contains(r.stderr, "not issued") {
		t.Errorf("schedule of the verify-only target: %+v\n%s", sch, r.stderr)
	}

	if r := run("rotate", "-f", policy, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "api (service): not due") {
		t.Errorf("rotate, nothing due: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("rotate", "-f", policy, "--yes", "--force-renew", "--target", "api"); r.code != 0 || !strings.Contains(r.stdout, "api (service): renewed") ||
		!strings.Contains(r.stdout, "harden's renewed client certificate was accepted in 8 handshake(s)") {
		t.Fatalf("rotate --force-renew: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	after := mustRead(t, client)
	if string(after) == string(before) || !chainsTo(t, client, vaultRoot(t, v)) {
		t.Error("harden's client certificate for the API was not renewed from Vault's CA")
	}
	if _, err := os.Stat(filepath.Join(store, "api", "server.pem")); !os.IsNotExist(err) {
		t.Errorf("rotate issued a server certificate for the verify-only target: %v", err)
	}
	if r := run("verify", "-f", policy, "--target", "api"); r.code != 0 {
		t.Errorf("verify with the renewed client certificate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// A staged CA rotation (real Vault) with a verify-only service in the mTLS
// scope whose client trust its operator keeps: phase trust skips it
// (harden hands it no bundle); phase reissue re-issues harden's client
// certificate for it from the next CA behind the live gate — refused while
// the API trusts only the current CA, so the old certificate is put back
// and the rotation stops — and --abort goes back to trust and then to no
// rotation at all; once the operator adds the next CA to the API's client
// trust, the rotation completes and harden's certificate chains to the
// new CA, with which verify passes.
func TestCARotationWithServiceTarget(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "service", "vaultpki")
	v := testenv.VaultForTest(t)
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "plugins.lock")
	run := cliRunner(t, pluginDir, lock)
	policy, _ := serviceVaultPolicy(t, dir, v, "", "")
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	oldRoot := vaultRoot(t, v)
	clientCAs := filepath.Join(dir, "api-client-cas.pem")
	os.WriteFile(clientCAs, oldRoot, 0o644)
	addr := mtlsAPI(t, ca, clientCAs)
	policy, store := serviceVaultPolicy(t, dir, v, addr, ca.CertFile)
	if r := run("apply", "-f", policy, "--yes"); r.code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	client := filepath.Join(store, "api", "client.pem")
	caRun := func(args ...string) (result, caJSON) {
		t.Helper()
		r := run(append([]string{"rotate", "-f", policy, "--ca", "--yes", "--format", "json"}, args...)...)
		var rep caJSON
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("rotate --ca %v: %d %v\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
		}
		for _, tr := range rep.Targets {
			t.Logf("rotate --ca %v: %s (%s) %s: %s; gate: %s", args, tr.Name, tr.Plugin, tr.Status, tr.Message, tr.Gate)
		}
		t.Logf("rotate --ca %v: %s -> %s: %s", args, rep.CA.PhaseBefore, rep.CA.PhaseAfter, rep.CA.Message)
		return r, rep
	}
	// status: the last report of the item (a run may report it in several
	// phases and in the sync after them); all: every one, in order.
	all := func(rep caJSON, name string) []string {
		var out []string
		for _, tr := range rep.Targets {
			if tr.Name == name {
				out = append(out, tr.Status+": "+tr.Message)
			}
		}
		return out
	}
	status := func(rep caJSON, name string) string {
		if a := all(rep, name); len(a) > 0 {
			return a[len(a)-1]
		}
		return "not reported"
	}

	// 1. Trust: skipped for the service, which must trust the next CA itself.
	r, rep := caRun("--stop-after", "trust")
	if r.code != 0 || rep.CA.PhaseAfter != "reissue" || !strings.HasPrefix(status(rep, "target/api"), "skipped: phase trust: verify only") {
		t.Fatalf("phase trust: %d %s\n%s", r.code, status(rep, "target/api"), r.stderr)
	}
	// 2. Reissue while the API trusts only the current CA: refused, put back.
	r, rep = caRun()
	if r.code == 0 || rep.CA.PhaseAfter != "reissue" || !strings.HasPrefix(status(rep, "target/api"), "rolled_back") ||
		!strings.Contains(status(rep, "target/api"), "must trust the next CA") {
		t.Fatalf("phase reissue against an API that does not trust the next CA: %d %s", r.code, status(rep, "target/api"))
	}
	if !chainsTo(t, client, oldRoot) {
		t.Fatal("the refused client certificate from the next CA stayed in the store")
	}
	if r := run("verify", "-f", policy, "--target", "api"); r.code != 0 {
		t.Errorf("verify after the refused reissue: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// 3. --abort goes back, phase by phase, to no rotation.
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "trust" {
		t.Fatalf("abort from reissue: %d %s\n%s", r.code, rep.CA.Message, r.stderr)
	}
	if r, rep = caRun("--abort"); r.code != 0 || rep.CA.PhaseAfter != "none" || !strings.Contains(rep.CA.Message, "aborted") ||
		!strings.HasPrefix(status(rep, "target/api"), "skipped") {
		t.Fatalf("abort from trust: %d %s %s\n%s", r.code, rep.CA.Message, status(rep, "target/api"), r.stderr)
	}
	if _, err := os.Stat(filepath.Join(store, "ca-rotation.json")); !os.IsNotExist(err) {
		t.Errorf("the state file stayed after the abort: %v", err)
	}
	if !chainsTo(t, client, oldRoot) {
		t.Error("after the abort harden's client certificate does not chain to the current CA")
	}

	// 4. Again, with the API's operator adding the next CA between trust
	// and reissue: the rotation completes.
	if r, rep = caRun("--stop-after", "trust"); r.code != 0 || rep.CA.PhaseAfter != "reissue" {
		t.Fatalf("phase trust again: %d %s\n%s", r.code, rep.CA.Message, r.stderr)
	}
	var st struct {
		Next string `json:"next_root_pem"`
	}
	json.Unmarshal(mustRead(t, filepath.Join(store, "ca-rotation.json")), &st)
	os.WriteFile(clientCAs, append(append([]byte{}, oldRoot...), []byte(st.Next+"\n")...), 0o644)
	if r, rep = caRun(); r.code != 0 || rep.CA.PhaseAfter != "none" || !strings.Contains(rep.CA.Message, "done") ||
		!strings.HasPrefix(status(rep, "target/api"), "skipped: after the rotation") {
		t.Fatalf("phases reissue and retire: %d %s\n%s", r.code, rep.CA.Message, r.stderr)
	}
	if a := all(rep, "target/api"); len(a) != 3 || !strings.HasPrefix(a[0], "renewed: phase reissue: verify only") || !strings.HasPrefix(a[1], "skipped: phase retire: verify only") {
		t.Errorf("the API's steps: %q, want renewed in reissue, skipped in retire and after", a)
	}
	newRoot := vaultRoot(t, v)
	if strings.TrimSpace(string(newRoot)) != strings.TrimSpace(st.Next) || !chainsTo(t, client, newRoot) || chainsTo(t, client, oldRoot) {
		t.Error("after the rotation harden's client certificate for the API does not chain to the new CA alone")
	}
	if r := run("verify", "-f", policy, "--target", "api"); r.code != 0 {
		t.Errorf("verify after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("rotate", "-f", policy, "--yes"); r.code != 0 || strings.Contains(r.stdout, "renewed") {
		t.Errorf("rotate after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
