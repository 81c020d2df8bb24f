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
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// fakeVault answers Vault API paths from a table: "GET sys/audit",
// "LIST pki_int/roles" -> a handler; a key ending in * matches every path
// it prefixes. Anything else is a 404. reply, refuse and hangUp are the
// handlers the tests combine.
type fakeVault map[string]http.HandlerFunc

func reply(data any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
}

// refuse answers with Vault's error shape (403 permission denied, 500, ...).
func refuse(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []string{http.StatusText(code) + ": permission denied"}})
	}
}

// hangUp closes the connection without an answer (a reset, a crashed
// proxy): no evidence of anything.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func (f fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if r.URL.Query().Get("list") == "true" {
		method = "LIST"
	}
	key := method + " " + strings.TrimPrefix(r.URL.Path, "/v1/")
	if h, ok := f[key]; ok {
		h(w, r)
		return
	}
	for k, h := range f {
		if prefix, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(key, prefix) {
			h(w, r)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"errors":[]}`))
}

// quietTLSServer is an httptest TLS server that does not log the
// handshakes a probe scan makes fail on purpose.
func quietTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// fakeVerifier is a verifier of the default settings talking to f.
func fakeVerifier(t *testing.T, f fakeVault, spec map[string]any) *verifier {
	t.Helper()
	srv := quietTLSServer(f)
	t.Cleanup(srv.Close)
	cfg := vault.DefaultConfig()
	cfg.Address, cfg.HttpClient, cfg.MaxRetries = srv.URL, srv.Client(), 0
	cl, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken("test")
	conn, _ := json.Marshal(map[string]any{"address": srv.URL})
	specJSON, _ := json.Marshal(spec)
	var d sdk.Diagnostics
	st, ok := load(sdk.RequestContext{Policy: sdk.Policy{Profile: tlsprofile.Intermediate(), Rotation: sdk.Rotation{MaxLifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour}},
		Target: sdk.NewTarget("vault", conn, specJSON, nil)}, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	return &verifier{ctx: context.Background(), cl: cl, st: st, self: "vault"}
}

// only returns the checks with id, failing the test when there is none: a
// missing check must never go unnoticed.
func only(t *testing.T, cs []checks.Check, id string) []checks.Check {
	t.Helper()
	var out []checks.Check
	for _, c := range cs {
		if c.ID == id {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s check among %d checks", id, len(cs))
	}
	return out
}

// An http:// Vault address is refused with one error naming the target,
// before any request reaches the address (token in cleartext); with
// connection.allow_insecure the request goes out, with a warning.
func TestHTTPAddressRefusedBeforeAnyRequest(t *testing.T) {
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	defer plain.Close()
	request := func(conn map[string]any) sdk.RequestContext {
		c, _ := json.Marshal(conn)
		return sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
			Target: sdk.NewTarget("corp-vault", c, []byte(`{}`), map[string][]byte{"token": []byte("s3cret-token")})}
	}
	ctx := context.Background()
	plugin := hostclient.InProcess(vaultPKI{})
	defer plugin.Close()
	rc := request(map[string]any{"address": plain.URL})

	wantRefused := func(what string, d sdk.Diagnostics) {
		t.Helper()
		err := d.Err()
		if err == nil || !strings.Contains(err.Error(), "target corp-vault") || !strings.Contains(err.Error(), plain.URL) || !strings.Contains(err.Error(), "cleartext") {
			t.Errorf("%s: want one error naming target corp-vault and %s: %v", what, plain.URL, err)
		}
	}
	vs, err := plugin.ValidateSpec(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused("validate", vs.Diagnostics)
	vr, _ := plugin.Verify(ctx, rc)
	wantRefused("verify", vr.Diagnostics)
	if len(vr.Checks) != 0 {
		t.Errorf("verify of a refused address returned checks: %+v", vr.Checks)
	}
	pr, _ := plugin.Plan(ctx, rc)
	wantRefused("plan", pr.Diagnostics)
	ar, _ := plugin.Apply(ctx, rc, nil, false)
	wantRefused("apply", ar.Diagnostics)
	ir, _ := plugin.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "pg", Usage: "ca"})
	wantRefused("issue", ir.Diagnostics)
	// At connect time too, whoever calls.
	if _, err := client0(ctx, rc); err == nil {
		t.Errorf("connect accepted an http:// address")
	}
	var c connection
	_ = rc.Target.DecodeConnection(&c)
	if _, err := client(ctx, rc, c); !errors.Is(err, errInsecureAddress) {
		t.Errorf("client(): %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d request(s) reached the http:// address before it was refused", n)
	}

	// The explicit opt-in: the request goes out, and a warning says so.
	allowed := request(map[string]any{"address": plain.URL, "allow_insecure": "lab network, throwaway dev Vault"})
	if vs, _ := plugin.ValidateSpec(ctx, allowed); vs.Diagnostics.HasError() {
		t.Fatalf("validate with allow_insecure: %v", vs.Diagnostics.Err())
	}
	vr, _ = plugin.Verify(ctx, allowed)
	if hits.Load() == 0 || !strings.Contains(fmtDiags(vr.Diagnostics), "travels in cleartext") {
		t.Errorf("with allow_insecure: %d requests, diagnostics %s", hits.Load(), fmtDiags(vr.Diagnostics))
	}
	if cs := only(t, vr.Checks, "tls.enabled"); cs[0].Status != checks.Fail {
		t.Errorf("an http:// Vault listener: tls.enabled %s", cs[0].Status)
	}
	for _, bad := range []string{"ftp://vault:8200", "vault:8200"} {
		if vs, _ := plugin.ValidateSpec(ctx, request(map[string]any{"address": bad})); !vs.Diagnostics.HasError() {
			t.Errorf("address %q accepted", bad)
		}
	}
}

func fmtDiags(d sdk.Diagnostics) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteString(x.Summary + ": " + x.Detail + "\n")
	}
	return b.String()
}

// Without spec.audit.file the device list is all harden can see: that is
// configuration, which never passes the high-severity audit check.
func TestAuditDeviceListAloneNeverPasses(t *testing.T) {
	tests := map[string]struct {
		list       http.HandlerFunc
		want       checks.Status
		configOnly bool
	}{
		"one device, no canary possible": {reply(map[string]any{"file/": map[string]any{"type": "file", "path": "file/", "options": map[string]any{"file_path": "/var/log/vault.log"}}}), checks.Warn, true},
		"no device":                      {reply(map[string]any{}), checks.Fail, true},
		"list refused":                   {refuse(http.StatusForbidden), checks.Error, false},
		"no answer":                      {hangUp, checks.Error, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := fakeVerifier(t, fakeVault{"GET sys/audit": tc.list}, nil)
			v.audit()
			c := only(t, v.out, "vaultpki.audit.enabled")[0]
			if c.Status != tc.want || strings.HasPrefix(c.Evidence, checks.ConfigurationPrefix) != tc.configOnly {
				t.Errorf("vaultpki.audit.enabled %s, want %s (labelled configuration only: %v): %s", c.Status, tc.want, tc.configOnly, c.Evidence)
			}
		})
	}
}

// With spec.audit.file the canary is the evidence: a log harden cannot
// read, or a canary Vault never answered, is inconclusive (an error), not
// a warning that reads like "probably fine" and not a pass.
func TestAuditCanaryInconclusive(t *testing.T) {
	dir := t.TempDir()
	device := func(file string) http.HandlerFunc {
		return reply(map[string]any{"harden-file/": map[string]any{"type": "file", "path": "harden-file/", "options": map[string]any{"file_path": file}}})
	}
	notFound := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }
	tests := map[string]struct {
		file   string
		canary http.HandlerFunc
		want   string
	}{
		// A directory: unreadable as a log even for root.
		"log not readable":  {dir, notFound, "not readable here"},
		"log missing":       {filepath.Join(dir, "absent.log"), notFound, "not readable here"},
		"canary unanswered": {filepath.Join(dir, "vault.log"), hangUp, "no answer from Vault"},
	}
	if err := os.WriteFile(filepath.Join(dir, "vault.log"), []byte(`{"type":"request"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := fakeVerifier(t, fakeVault{"GET sys/audit": device(tc.file), "GET sys/policy/*": tc.canary}, map[string]any{"audit": map[string]any{"file": tc.file}})
			v.audit()
			c := only(t, v.out, "vaultpki.audit.enabled")[0]
			if c.Status != checks.Error || c.Inconclusive != 1 || !strings.Contains(c.Evidence, tc.want) {
				t.Errorf("vaultpki.audit.enabled %s (%d inconclusive): %s", c.Status, c.Inconclusive, c.Evidence)
			}
			for _, d := range v.out {
				if d.Status == checks.Pass {
					t.Errorf("%s passed: %s", d.ID, d.Evidence)
				}
			}
		})
	}
}

// testCA is a CA key and certificate for fake Vault answers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

var serial atomic.Int64

// issue makes a certificate valid from notBefore to notAfter, signed by
// parent (self-signed when parent is nil).
func issue(t *testing.T, parent *testCA, cn string, isCA bool, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1000 + serial.Add(1)), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func certReply(c *testCA) http.HandlerFunc { return reply(map[string]any{"certificate": c.pem}) }

// A role Vault will not show is an inconclusive check of its own (it used
// to vanish), it makes the CA lifetime judgement inconclusive (its max_ttl
// is unknown), and a roles list that fails is an error, not "no roles".
func TestUnreadableRolesAreInconclusive(t *testing.T) {
	now := time.Now()
	root := issue(t, nil, "root", true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	inter := issue(t, root, "int", true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	good := reply(map[string]any{"max_ttl": json.Number("7776000"), "key_type": "ec", "server_flag": true})
	tests := map[string]struct {
		roles      fakeVault
		wantRoles  map[string]checks.Status // subject suffix -> status
		wantLife   checks.Status
		wantReason string
	}{
		"one role refused": {fakeVault{"LIST pki_int/roles": reply(map[string]any{"keys": []string{"server", "legacy"}}),
			"GET pki_int/roles/server": good, "GET pki_int/roles/legacy": refuse(http.StatusForbidden)},
			map[string]checks.Status{"roles/server": checks.Pass, "roles/legacy": checks.Error}, checks.Error, "legacy"},
		"one role unanswered": {fakeVault{"LIST pki_int/roles": reply(map[string]any{"keys": []string{"server", "legacy"}}),
			"GET pki_int/roles/server": good, "GET pki_int/roles/legacy": hangUp},
			map[string]checks.Status{"roles/server": checks.Pass, "roles/legacy": checks.Error}, checks.Error, "legacy"},
		"role vanished between list and read": {fakeVault{"LIST pki_int/roles": reply(map[string]any{"keys": []string{"server", "gone"}}), "GET pki_int/roles/server": good},
			map[string]checks.Status{"roles/server": checks.Pass, "roles/gone": checks.Error}, checks.Error, "gone"},
		"list refused": {fakeVault{"LIST pki_int/roles": refuse(http.StatusForbidden)},
			map[string]checks.Status{"pki_int": checks.Error}, checks.Error, "list pki_int/roles"},
		"no roles at all (404)": {fakeVault{},
			map[string]checks.Status{"pki_int": checks.Fail}, checks.Pass, ""},
		"every role readable": {fakeVault{"LIST pki_int/roles": reply(map[string]any{"keys": []string{"server"}}), "GET pki_int/roles/server": good},
			map[string]checks.Status{"roles/server": checks.Pass}, checks.Pass, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := fakeVerifier(t, tc.roles, nil)
			v.roles()
			v.caLifetime("pki_int", inter.cert)
			got := only(t, v.out, "vaultpki.pki.roles")
			if len(got) != len(tc.wantRoles) {
				t.Errorf("%d vaultpki.pki.roles checks, want %d: %+v", len(got), len(tc.wantRoles), got)
			}
			for suffix, want := range tc.wantRoles {
				found := false
				for _, c := range got {
					if strings.HasSuffix(c.Subject, suffix) {
						found = true
						if c.Status != want {
							t.Errorf("%s: %s, want %s: %s", c.Subject, c.Status, want, c.Evidence)
						}
					}
				}
				if !found {
					t.Errorf("no vaultpki.pki.roles check for %s: %+v", suffix, got)
				}
			}
			life := only(t, v.out, "vaultpki.pki.ca_lifetime")[0]
			if life.Status != tc.wantLife || !strings.Contains(life.Evidence, tc.wantReason) {
				t.Errorf("vaultpki.pki.ca_lifetime %s, want %s (naming %q): %s", life.Status, tc.wantLife, tc.wantReason, life.Evidence)
			}
		})
	}
}

// vaultpki.pki.expiry is always there: an error listing certificates is an
// error check (it used to produce no check at all), a certificate Vault
// will not show is inconclusive, and nothing to judge is "not applicable"
// with the counts — never a pass on zero certificates.
func TestExpiryNeedsObservations(t *testing.T) {
	now := time.Now()
	root := issue(t, nil, "root", true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	inter := issue(t, root, "int", true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	fresh := issue(t, inter, "pg.internal", false, now.Add(-time.Hour), now.Add(80*24*time.Hour))
	near := issue(t, inter, "kafka.internal", false, now.Add(-80*24*time.Hour), now.Add(5*24*time.Hour))
	lintLeaf := issue(t, inter, "localhost", false, now.Add(-time.Minute), now.Add(5*time.Minute))
	list := func(serials ...string) http.HandlerFunc { return reply(map[string]any{"keys": serials}) }
	tests := map[string]struct {
		f          fakeVault
		want       checks.Status
		inEvidence string
	}{
		"list refused":    {fakeVault{"LIST pki_int/certs": refuse(http.StatusForbidden)}, checks.Error, "list pki_int/certs"},
		"list unanswered": {fakeVault{"LIST pki_int/certs": hangUp}, checks.Error, "list pki_int/certs"},
		"nothing stored":  {fakeVault{}, checks.Skip, "lists 0 certificate(s)"},
		"only the CA and a lint leaf": {fakeVault{"LIST pki_int/certs": list("01", "02"), "GET pki_int/cert/01": certReply(inter), "GET pki_int/cert/02": certReply(lintLeaf)},
			checks.Skip, "1 CA, 1 short-lived"},
		"one fresh certificate": {fakeVault{"LIST pki_int/certs": list("01"), "GET pki_int/cert/01": certReply(fresh)}, checks.Pass, "1 valid certificate(s)"},
		"one near expiry":       {fakeVault{"LIST pki_int/certs": list("01", "02"), "GET pki_int/cert/01": certReply(fresh), "GET pki_int/cert/02": certReply(near)}, checks.Fail, "kafka.internal"},
		"one certificate refused": {fakeVault{"LIST pki_int/certs": list("01", "02"), "GET pki_int/cert/01": certReply(fresh), "GET pki_int/cert/02": refuse(http.StatusForbidden)},
			checks.Error, "pki_int/cert/02"},
		"only certificate unanswered": {fakeVault{"LIST pki_int/certs": list("02"), "GET pki_int/cert/02": hangUp}, checks.Error, "pki_int/cert/02"},
		"garbled certificate":         {fakeVault{"LIST pki_int/certs": list("03"), "GET pki_int/cert/03": reply(map[string]any{"certificate": "garbage"})}, checks.Error, "not a certificate"},
		"near expiry and one refused": {fakeVault{"LIST pki_int/certs": list("02", "04"), "GET pki_int/cert/02": certReply(near), "GET pki_int/cert/04": refuse(http.StatusForbidden)},
			checks.Fail, "kafka.internal"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := fakeVerifier(t, tc.f, nil)
			v.expiry(inter.cert)
			cs := only(t, v.out, "vaultpki.pki.expiry")
			if len(cs) != 1 || cs[0].Status != tc.want || !strings.Contains(cs[0].Evidence, tc.inEvidence) {
				t.Errorf("vaultpki.pki.expiry %s, want %s (evidence with %q): %+v", cs[0].Status, tc.want, tc.inEvidence, cs)
			}
		})
	}
}

// Reads that fail are inconclusive everywhere in the PKI, transit and URL
// checks: a 403 or a hang-up is an error naming the read, never a pass
// and never a FAIL that claims the setting is off; a key Vault says is
// missing (404) fails.
func TestFailedReadsAreInconclusive(t *testing.T) {
	now := time.Now()
	root := issue(t, nil, "root", true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	inter := issue(t, root, "int", true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	f := fakeVault{
		"GET pki/cert/ca": certReply(root), "GET pki_int/cert/ca": certReply(inter),
		"GET pki/config/urls":          refuse(http.StatusForbidden),
		"GET pki_int/config/urls":      hangUp,
		"GET pki_int/config/auto-tidy": refuse(http.StatusInternalServerError),
		"LIST pki_int/roles":           refuse(http.StatusForbidden),
		"PUT pki_int/sign/server":      hangUp,
		"LIST pki_int/certs":           refuse(http.StatusForbidden),
		"GET transit/keys/lake-kek":    refuse(http.StatusForbidden),
		"GET transit/keys/other-kek":   hangUp,
	}
	v := fakeVerifier(t, f, map[string]any{"transit": map[string]any{"keys": []string{"lake-kek", "other-kek", "missing-kek"}}})
	v.pki()
	v.transit()
	want := map[string]checks.Status{"vaultpki.pki.ca_present": checks.Pass, "vaultpki.pki.ca_key": checks.Pass, "vaultpki.pki.urls": checks.Error, "vaultpki.pki.tidy": checks.Error,
		"vaultpki.pki.roles": checks.Error, "vaultpki.pki.ca_lifetime": checks.Error, "vaultpki.pki.expiry": checks.Error, "vaultpki.transit.keys": checks.Error}
	for id, status := range want {
		for _, c := range only(t, v.out, id) {
			if id == "vaultpki.transit.keys" && strings.HasSuffix(c.Subject, "missing-kek") {
				if c.Status != checks.Fail {
					t.Errorf("%s (%s): %s, want fail (Vault answered 404): %s", id, c.Subject, c.Status, c.Evidence)
				}
				continue
			}
			if c.Status != status {
				t.Errorf("%s (%s): %s, want %s: %s", id, c.Subject, c.Status, status, c.Evidence)
			}
		}
	}
	// The lint: signing got no answer, so the leaf was not linted — one
	// inconclusive check, and no pass for the clean chain beside it.
	lint := only(t, v.out, "vaultpki.pki.lint")
	if len(lint) != 1 || !strings.Contains(lint[0].Evidence, "sign a CSR") || lint[0].Status != checks.Error {
		t.Errorf("vaultpki.pki.lint without a leaf: %+v", lint)
	}
}

// An unreadable connection.ca_file is an error naming the file on the
// listener's trust check (it used to turn into "no CA given": a skip).
func TestListenerCAFileUnreadable(t *testing.T) {
	srv := quietTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	dir := t.TempDir()
	for name, caFile := range map[string]string{
		"a directory":         dir, // unreadable as a file, even for root
		"missing":             filepath.Join(dir, "absent.pem"),
		"no PEM certificates": writeFile(t, filepath.Join(dir, "empty.pem"), "not a certificate\n"),
	} {
		t.Run(name, func(t *testing.T) {
			conn, _ := json.Marshal(map[string]any{"address": srv.URL, "ca_file": caFile})
			rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
				Target: sdk.NewTarget("vault", conn, []byte(`{}`), map[string][]byte{"token": []byte("t")})}
			var d sdk.Diagnostics
			st, ok := load(rc, &d)
			if !ok {
				t.Fatal(d.Err())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			trusted := only(t, checksOf(scanListener(ctx, rc, st)), "tls.certificate.trusted")
			for _, c := range trusted {
				if c.Status != checks.Error || !strings.Contains(c.Evidence, caFile) {
					t.Errorf("tls.certificate.trusted %s: %s (want an error naming %s)", c.Status, c.Evidence, caFile)
				}
			}
			// Verify cannot log in either; the listener's checks still come back.
			plugin := hostclient.InProcess(vaultPKI{})
			defer plugin.Close()
			vr, _ := plugin.Verify(ctx, rc)
			if err := vr.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), caFile) {
				t.Errorf("verify diagnostics: %v", err)
			}
			for _, c := range only(t, vr.Checks, "tls.certificate.trusted") {
				if c.Status == checks.Skip || c.Status == checks.Pass {
					t.Errorf("verify: tls.certificate.trusted %s: %s", c.Status, c.Evidence)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func checksOf(cs []checks.Check, _ *sdk.EndpointScan) []checks.Check { return cs }
