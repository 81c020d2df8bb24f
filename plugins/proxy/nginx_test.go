package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// frontIDs are the checks of the front every verify must report.
var frontIDs = []string{"tls.plaintext.refused", "tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
	"tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime", "http.hsts", "http.content_type_options", checkFrontSerialServed}

// hopIDs are the checks of the backend and the configuration.
var hopIDs = []string{checkBackendPlaintext, checkBackendTLS, checkBackendVerified, checkConfigValid, checkConfigRendered}

func verifyOf(t *testing.T, q sdk.RequestContext) []checks.Check {
	t.Helper()
	var r sdk.VerifyResponse
	proxyTLS{}.Verify(context.Background(), sdk.VerifyRequest{RequestContext: q}, &r)
	if r.Diagnostics.HasError() {
		t.Fatalf("verify: %v", r.Diagnostics)
	}
	if len(r.Endpoints) != 2 {
		t.Errorf("verify described %d endpoints, want the front and the backend", len(r.Endpoints))
	}
	return r.Checks
}

func planOf(t *testing.T, q sdk.RequestContext) sdk.PlanResponse {
	t.Helper()
	var r sdk.PlanResponse
	proxyTLS{}.Plan(context.Background(), sdk.PlanRequest{RequestContext: q}, &r)
	return r
}

func applyOf(t *testing.T, q sdk.RequestContext) sdk.ApplyResponse {
	t.Helper()
	var r sdk.ApplyResponse
	proxyTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: q}, &r)
	return r
}

// wantStatus requires every check of id with the subject containing
// subj to have status st, and at least one such check.
func wantStatus(t *testing.T, cs []checks.Check, id, subj string, st checks.Status) {
	t.Helper()
	n := 0
	for _, c := range cs {
		if c.ID == id && strings.Contains(c.Subject, subj) {
			n++
			if c.Status != st {
				t.Errorf("%s (%s) = %s, want %s: %s", id, c.Subject, c.Status, st, c.Evidence)
			}
		}
	}
	if n == 0 {
		t.Errorf("no %s check for %q", id, subj)
	}
}

// snapshot is the content of every file of the nginx directory (cert_dir
// included): what "nothing changed" compares.
func snapshot(t *testing.T, n *testenv.Nginx) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range []string{n.ConfigFile, n.IncludeFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	entries, _ := os.ReadDir(n.CertDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(n.CertDir, e.Name()))
		out[filepath.Join(n.CertDir, e.Name())] = b
	}
	return out
}

func sameSnapshot(t *testing.T, what string, a, b map[string][]byte) {
	t.Helper()
	for f, d := range a {
		if !bytes.Equal(d, b[f]) {
			t.Errorf("%s: %s changed", what, f)
		}
	}
	for f := range b {
		if _, ok := a[f]; !ok {
			t.Errorf("%s: %s appeared", what, f)
		}
	}
}

// ingestGet is GET /healthz through the front (the policy's CA), the
// ingest API's X-Ingest-Transport telling which hop the proxy took.
func ingestGet(t *testing.T, n *testenv.Nginx, q sdk.RequestContext) *http.Response {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(q.Certificates.CABundlePEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if len(q.Certificates.ClientChainPEM) > 0 {
		pair, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	r, err := cl.Get("https://" + n.Front + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r
}

// The whole life of the nginx route: before (a weak front, the plaintext
// hop, no canary) it fails with the specific check IDs; plan lists the
// files and the reload; apply makes every check pass, and requests reach
// the ingest API over TLS; a second apply changes nothing and does not
// reload; the decoy proof's negative control — proxy_ssl_verify off in
// the applied file, reloaded — fails proxy.backend.verified on live
// evidence (the decoy got the request).
func TestNginxBeforeApplyAfter(t *testing.T) {
	for name, mtls := range map[string]bool{"tls": false, "mtls_scope": true} {
		t.Run(name, func(t *testing.T) {
			n := testenv.NginxForTest(t)
			q := nginxRequest(t, n, mtls, nil)
			before := verifyOf(t, q)
			for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", checkFrontSerialServed} {
				wantStatus(t, before, id, "(front)", checks.Fail)
			}
			for _, id := range []string{checkBackendTLS, checkBackendVerified, checkConfigRendered} {
				wantStatus(t, before, id, "", checks.Fail)
			}
			if mtls {
				wantStatus(t, before, "tls.client_auth.required", "(front)", checks.Fail)
			}
			if r := ingestGet(t, n, q); r.Header.Get("X-Ingest-Transport") != "plaintext" {
				t.Fatalf("before: the hop is %q, want plaintext", r.Header.Get("X-Ingest-Transport"))
			}

			p := planOf(t, q)
			if p.Diagnostics.HasError() || len(p.Changes) != 5+btoi(mtls) {
				t.Fatalf("plan: %v, %d changes: %+v", p.Diagnostics, len(p.Changes), p.Changes)
			}
			var ar sdk.ApplyResponse
			proxyTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: q, PlanToken: p.PlanToken}, &ar)
			if ar.Diagnostics.HasError() || len(ar.Applied) != len(p.Changes) {
				t.Fatalf("apply: %v, applied %+v", ar.Diagnostics, ar.Applied)
			}
			if fi, err := os.Stat(filepath.Join(n.CertDir, "front.key")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("front.key: %v %v, want mode 0600", err, fi)
			}

			after := verifyOf(t, q)
			ids := append(slices.Clone(frontIDs), hopIDs...)
			if mtls {
				ids = append(ids, "tls.client_auth.required")
			}
			for _, id := range ids {
				wantStatus(t, after, id, "", checks.Pass)
			}
			for _, c := range after {
				if c.Status != checks.Pass {
					t.Errorf("after apply: %s (%s) = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
				}
			}
			if r := ingestGet(t, n, q); r.StatusCode != 200 || r.Header.Get("X-Ingest-Transport") != "tls" {
				t.Errorf("after: %s over the %q hop, want 200 over tls", r.Status, r.Header.Get("X-Ingest-Transport"))
			}

			// A second apply: nothing to change, nothing written, no reload.
			snap, workers := snapshot(t, n), workerPIDs(t, n)
			if p := planOf(t, q); p.Diagnostics.HasError() || len(p.Changes) != 0 {
				t.Errorf("second plan: %v %+v", p.Diagnostics, p.Changes)
			}
			if r := applyOf(t, q); r.Diagnostics.HasError() || len(r.Applied) != 0 {
				t.Errorf("second apply: %v %+v", r.Diagnostics, r.Applied)
			}
			sameSnapshot(t, "second apply", snap, snapshot(t, n))
			if now := workerPIDs(t, n); !slices.Equal(now, workers) {
				t.Errorf("second apply reloaded nginx: workers %v, then %v", workers, now)
			}

			// The negative control: verification off, for real.
			inc, _ := os.ReadFile(n.IncludeFile)
			off := strings.ReplaceAll(string(inc), "proxy_ssl_verify on;", "proxy_ssl_verify off;")
			if off == string(inc) {
				t.Fatal("the applied include has no proxy_ssl_verify on")
			}
			if err := os.WriteFile(n.IncludeFile, []byte(off), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := n.Reload(); err != nil {
				t.Fatal(err)
			}
			control := verifyOf(t, q)
			wantStatus(t, control, checkBackendVerified, "", checks.Fail)
			for _, c := range control {
				if c.ID == checkBackendVerified && !strings.Contains(c.Evidence, "forwarded the request") {
					t.Errorf("the negative control failed without the live evidence: %s", c.Evidence)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// workerPIDs are nginx's worker processes (the master's children).
func workerPIDs(t *testing.T, n *testenv.Nginx) []int {
	t.Helper()
	pid, err := readPID(n.PIDFile)
	if err != nil {
		t.Fatal(err)
	}
	w := childPIDs(pid)
	slices.Sort(w)
	return w
}

// A reload nginx refuses although nginx -t passed — the canary's listen
// port is taken by another process (nginx -t does not bind) — starts no
// new workers: apply fails, every file is restored byte for byte (those
// it created removed), nginx is reloaded with them and still serves the
// old front, and no journal is left.
func TestNginxRefusedReloadRestores(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	ln, err := net.Listen("tcp", n.CanaryListen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer func(d time.Duration) { workerWait = d }(workerWait)
	workerWait = 4 * time.Second
	snap := snapshot(t, n)
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "no new worker") {
		t.Fatalf("apply with the canary port taken: %v", r.Diagnostics)
	}
	sameSnapshot(t, "refused reload", snap, snapshot(t, n))
	before := verifyOf(t, q)
	wantStatus(t, before, checkFrontSerialServed, "", checks.Fail)
	if jp, _, _ := (&target{conn: connection{Kind: "nginx", ConfigFile: n.ConfigFile}, spec: spec{IncludeFile: n.IncludeFile}}).journalPaths(); fileExists(jp) {
		t.Errorf("journal %s left behind", jp)
	}
	// Port free again: the same apply goes through.
	ln.Close()
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatalf("apply once the port is free: %v", r.Diagnostics)
	}
	wantStatus(t, verifyOf(t, q), checkFrontSerialServed, "", checks.Pass)
}

// A reload path that does nothing (a reload_command that exits 0 without
// reloading) leaves the old front serving: the served gate sees the old
// serial and the run is rolled back.
func TestNginxReloadThatDoesNotTakeRollsBack(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, func(conn, _ map[string]any) { conn["reload_command"] = []string{"true"} })
	defer func(d time.Duration) { servedWait = d }(servedWait)
	servedWait = 2 * time.Second
	snap := snapshot(t, n)
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "did not serve the new certificate") {
		t.Fatalf("apply with a reload that does nothing: %v", r.Diagnostics)
	}
	sameSnapshot(t, "reload that did not take", snap, snapshot(t, n))
}

// An nginx configuration that fails nginx -t before harden touches it:
// plan and apply refuse, and not a byte changes.
func TestNginxBrokenConfigRefused(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	conf, _ := os.ReadFile(n.ConfigFile)
	if err := os.WriteFile(n.ConfigFile, append(conf, []byte("\nthis is not nginx {\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, n)
	if p := planOf(t, q); !p.Diagnostics.HasError() || !strings.Contains(p.Diagnostics.Err().Error(), "fails its own test") {
		t.Errorf("plan of a broken configuration: %v", p.Diagnostics)
	}
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "nothing was changed") || len(r.Applied) != 0 {
		t.Errorf("apply of a broken configuration: %v %+v", r.Diagnostics, r.Applied)
	}
	sameSnapshot(t, "broken configuration", snap, snapshot(t, n))
	wantStatus(t, verifyOf(t, q), checkConfigValid, "", checks.Fail)
}

// No pid_file and no reload_command: refused with one clear error.
func TestNginxWithoutReloadPathRefused(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, func(conn, _ map[string]any) { delete(conn, "pid_file") })
	snap := snapshot(t, n)
	for what, d := range map[string]sdk.Diagnostics{"plan": planOf(t, q).Diagnostics, "apply": applyOf(t, q).Diagnostics} {
		if !d.HasError() || !strings.Contains(d.Err().Error(), "no reload path") {
			t.Errorf("%s without a reload path: %v", what, d)
		}
	}
	sameSnapshot(t, "no reload path", snap, snapshot(t, n))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A renewal after apply (a new certificate for the front, nothing else):
// plan lists only certificate material — the files and their reload — so
// harden rotate may push it; apply reloads and the front serves the new
// serial.
func TestNginxRenewal(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	cf, kf, err := n.CA.Issue("ingest-proxy-renewed", false, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	q.Certificates.ChainPEM, _ = os.ReadFile(cf)
	q.Certificates.KeyPEM, _ = os.ReadFile(kf)
	p := planOf(t, q)
	if p.Diagnostics.HasError() || len(p.Changes) != 3 {
		t.Fatalf("renewal plan: %v %+v", p.Diagnostics, p.Changes)
	}
	for _, c := range p.Changes {
		if !c.CertificateMaterial {
			t.Errorf("renewal change %s is not certificate material", c.Resource)
		}
	}
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	wantStatus(t, verifyOf(t, q), checkFrontSerialServed, "", checks.Pass)
}

// writeRendered puts the files harden renders for q into place the way
// configuration management would copy `harden render` output: no reload.
func writeRendered(t *testing.T, q sdk.RequestContext) {
	t.Helper()
	var d sdk.Diagnostics
	tg, ok := load(q, &d)
	if !ok {
		t.Fatal(d)
	}
	files, err := tg.files(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, os.FileMode(f.mode)); err != nil {
			t.Fatal(err)
		}
	}
}

// notPassed requires the check id to be there and not pass, with words
// in its evidence.
func notPassed(t *testing.T, cs []checks.Check, id string, words ...string) {
	t.Helper()
	n := 0
	for _, c := range cs {
		if c.ID != id {
			continue
		}
		n++
		if c.Status == checks.Pass {
			t.Errorf("%s (%s) passed: %s", id, c.Subject, c.Evidence)
		}
		for _, w := range words {
			if !strings.Contains(c.Evidence, w) {
				t.Errorf("%s (%s) evidence lacks %q: %s", id, c.Subject, w, c.Evidence)
			}
		}
	}
	if n == 0 {
		t.Errorf("no %s check", id)
	}
}

// Review M1: the files harden renders written into place and never
// reloaded (config management copying `harden render` output). The
// configuration on disk says "TLS to the backend, verified", the running
// nginx still forwards in plaintext: the hop checks must not pass —
// nothing live shows the running nginx loaded the file (the front serves
// the old certificate, no canary answers).
func TestNginxRenderedButNotReloaded(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	writeRendered(t, q)
	cs := verifyOf(t, q)
	wantStatus(t, cs, checkConfigRendered, "", checks.Pass)
	wantStatus(t, cs, checkFrontSerialServed, "", checks.Fail)
	wantStatus(t, cs, checkBackendTLS, "", checks.Error)
	notPassed(t, cs, checkBackendTLS, checkFrontSerialServed)
	notPassed(t, cs, checkBackendVerified)
	if r := ingestGet(t, n, q); r.Header.Get("X-Ingest-Transport") != "plaintext" {
		t.Fatalf("the running nginx changed its hop without a reload: %q", r.Header.Get("X-Ingest-Transport"))
	}
}

// The subtler case: harden applied (the certificate is served, the canary
// refuses the decoy), then someone switched the route to plaintext and
// reloaded, then the rendered files were copied back without a reload.
// Everything on disk and every certificate is harden's, but the running
// nginx forwards in plaintext: the include was written after the newest
// worker started, so the route's configuration does not count.
func TestNginxRewrittenAfterReloadDoesNotCount(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	inc, _ := os.ReadFile(n.IncludeFile)
	front, canary, _ := strings.Cut(string(inc), "# harden's canary route")
	plain := strings.Replace(front, "proxy_pass https://"+n.Ingest.TLSAddress+";", "proxy_pass http://"+n.Ingest.PlaintextAddress+";", 1)
	if plain == front {
		t.Fatal("no proxy_pass to the backend in the applied include")
	}
	if err := os.WriteFile(n.IncludeFile, []byte(plain+"# harden's canary route"+canary), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := ingestGet(t, n, q); r.Header.Get("X-Ingest-Transport") != "plaintext" {
		t.Fatalf("the hand-edited route is %q, want plaintext", r.Header.Get("X-Ingest-Transport"))
	}
	time.Sleep(loadSlack + 500*time.Millisecond)
	writeRendered(t, q)
	cs := verifyOf(t, q)
	for _, id := range []string{checkConfigRendered, checkFrontSerialServed, checkBackendPlaintext} {
		wantStatus(t, cs, id, "", checks.Pass)
	}
	notPassed(t, cs, checkBackendTLS, "newest worker process")
	notPassed(t, cs, checkBackendVerified)
	// A reload makes it true, and everything passes again.
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, c := range verifyOf(t, q) {
		if c.Status != checks.Pass {
			t.Errorf("after the reload: %s (%s) = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
		}
	}
}

// Review M2 against real nginx: a regex location that forwards in
// plaintext, beside harden's location / in the front's server block
// (reloaded, so the running nginx does it). Requests it matches go to the
// ingest API in plaintext; the hop checks must not pass.
func TestNginxOtherLocationDoesNotPass(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	inc, _ := os.ReadFile(n.IncludeFile)
	extra := "    location ~ ^/healthz { proxy_pass http://" + n.Ingest.PlaintextAddress + "; }\n    location / {\n"
	edited := strings.Replace(string(inc), "    location / {\n", extra, 1)
	if err := os.WriteFile(n.IncludeFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := ingestGet(t, n, q); r.Header.Get("X-Ingest-Transport") != "plaintext" {
		t.Fatalf("/healthz went %q, want plaintext", r.Header.Get("X-Ingest-Transport"))
	}
	cs := verifyOf(t, q)
	notPassed(t, cs, checkBackendTLS, "location ~ ^/healthz")
	notPassed(t, cs, checkBackendVerified)
}

// Inventory lists the front: before apply the "before" certificate in
// fresh accepted handshakes, after apply the policy's; reloads_on empty
// (apply reloads).
func TestNginxInventory(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	leaf := func(file string) []byte {
		b, _ := os.ReadFile(file)
		c, err := leafOf(b)
		if err != nil {
			t.Fatal(err)
		}
		return c.Raw
	}
	check := func(what string, want []byte) {
		t.Helper()
		var r sdk.InventoryResponse
		proxyTLS{}.Inventory(context.Background(), sdk.InventoryRequest{RequestContext: q, Handshakes: 3}, &r)
		if r.Diagnostics.HasError() || len(r.Listeners) != 1 {
			t.Fatalf("%s: %v %+v", what, r.Diagnostics, r.Listeners)
		}
		l := r.Listeners[0]
		if l.Name != "front" || l.Address != n.Front || l.ReloadsOn != "" || l.Error != "" || len(l.Handshakes) != 3 {
			t.Fatalf("%s: listener %+v", what, l)
		}
		for i, h := range l.Handshakes {
			c, err := leafOf(h.ChainPEM)
			if err != nil || !bytes.Equal(c.Raw, want) || h.Outcome != sdk.OutcomeAccepted {
				t.Errorf("%s: handshake %d: %s %s (%v)", what, i, h.Outcome, h.Evidence, err)
			}
		}
	}
	check("before apply", leaf(n.BeforeCertFile))
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	check("after apply", leaf(n.CertFile))
}
