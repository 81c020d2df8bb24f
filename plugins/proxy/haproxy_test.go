package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// haproxyRequest is the request harden sends for testenv's lake-proxy
// target (its generated policy block), with edit applied to the
// connection and spec blocks first.
func haproxyRequest(t testing.TB, h *testenv.HAProxy, mtls bool, edit func(conn, spec map[string]any)) sdk.RequestContext {
	t.Helper()
	tg := h.Target()
	conn, spec := tg["connection"].(map[string]any), tg["spec"].(map[string]any)
	if edit != nil {
		edit(conn, spec)
	}
	cj, _ := json.Marshal(conn)
	sj, _ := json.Marshal(spec)
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certs := sdk.Certificates{ChainPEM: read(h.CertFile), KeyPEM: read(h.KeyFile), CABundlePEM: read(h.CAFile)}
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files",
		Rotation: sdk.Rotation{RenewBefore: 7 * 24 * time.Hour},
		Targets:  []sdk.TargetRef{{Name: "lake-proxy", Plugin: "proxy", MTLS: mtls}}}
	if mtls {
		policy.MTLSScope = []string{"lake-proxy"}
		cf, kf, err := h.CA.Issue("harden-client", true)
		if err != nil {
			t.Fatal(err)
		}
		certs.ClientChainPEM, certs.ClientKeyPEM = read(cf), read(kf)
	}
	return sdk.RequestContext{Policy: policy, Target: sdk.NewTarget("lake-proxy", cj, sj, nil), Certificates: certs}
}

// hapSnapshot is the content of every file of the HAProxy directory
// (cert_dir included): what "nothing changed" compares.
func hapSnapshot(t *testing.T, h *testenv.HAProxy) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{h.Dir, h.CertDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			// The apply kit's backups stay beside the files (the operator's
			// undo), by design.
			if e.Type().IsRegular() && p != h.LogFile && p != h.PIDFile && !strings.Contains(e.Name(), ".harden-backup-") {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				out[p] = b
			}
		}
	}
	return out
}

// s3Front is an S3 client of the admin identity whose requests go through
// the proxy's front (verified with the policy's CA; harden's client
// certificate under mTLS).
func s3Front(t *testing.T, h *testenv.HAProxy, q sdk.RequestContext) *minio.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(q.Certificates.CABundlePEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if len(q.Certificates.ClientChainPEM) > 0 {
		pair, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	ak, _ := os.ReadFile(h.S3.AccessKeyFile)
	sk, _ := os.ReadFile(h.S3.SecretKeyFile)
	cl, err := minio.New(h.Front, &minio.Options{Creds: credentials.NewStaticV4(string(ak), string(sk), ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: cfg, ResponseHeaderTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// s3RoundTrip puts an object through the front and reads it back.
func s3RoundTrip(t *testing.T, h *testenv.HAProxy, q sdk.RequestContext) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := s3Front(t, h, q)
	body := "through the proxy " + time.Now().String()
	if _, err := cl.PutObject(ctx, h.S3.Bucket, "via-proxy.txt", strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		return err
	}
	obj, err := cl.GetObject(ctx, h.S3.Bucket, "via-proxy.txt", minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		return err
	}
	if string(got) != body {
		return fmt.Errorf("the object read back through %s differs: %q", h.Front, got)
	}
	return nil
}

// The whole life of the HAProxy route: before (a weak front, the
// plaintext hop to weed's S3 port, no canary) it fails with the specific
// check IDs; plan lists the files and the reload; apply makes every check
// pass and S3 requests through the front work; a second apply changes
// nothing and does not reload; the decoy proof's negative control —
// verify none in the applied file, reloaded — fails proxy.backend.verified
// on live evidence.
func TestHAProxyBeforeApplyAfter(t *testing.T) {
	s3 := testenv.SeaweedFSForTest(t)
	for name, mtls := range map[string]bool{"tls": false, "mtls_scope": true} {
		t.Run(name, func(t *testing.T) {
			h := testenv.HAProxyForTest(t, s3)
			q := haproxyRequest(t, h, mtls, nil)
			before := verifyOf(t, q)
			for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", checkFrontSerialServed} {
				wantStatus(t, before, id, "(front)", checks.Fail)
			}
			for _, id := range []string{checkBackendTLS, checkBackendVerified, checkConfigRendered} {
				wantStatus(t, before, id, "", checks.Fail)
			}
			wantStatus(t, before, checkConfigValid, "", checks.Pass)
			for _, c := range before {
				if c.ID == checkBackendTLS && !strings.Contains(c.Evidence, "over plain HTTP") {
					t.Errorf("before: %s without the plaintext route as evidence: %s", c.ID, c.Evidence)
				}
			}
			if mtls {
				wantStatus(t, before, "tls.client_auth.required", "(front)", checks.Fail)
			}
			// HAProxy's ssl bind closes a plaintext request without a word:
			// inconclusive before; the rendered front answers it (after).
			wantStatus(t, before, "tls.plaintext.refused", "(front)", checks.Error)

			p := planOf(t, q)
			// front.crt, front.key, [client-ca.crt], backend-ca.crt,
			// front.pem, the include, the reload.
			if p.Diagnostics.HasError() || len(p.Changes) != 6+btoi(mtls) {
				t.Fatalf("plan: %v, %d changes: %+v", p.Diagnostics, len(p.Changes), p.Changes)
			}
			procs, err := h.Processes()
			if err != nil {
				t.Fatal(err)
			}
			var ar sdk.ApplyResponse
			proxyTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: q, PlanToken: p.PlanToken}, &ar)
			if ar.Diagnostics.HasError() || len(ar.Applied) != len(p.Changes) {
				t.Fatalf("apply: %v, applied %+v", ar.Diagnostics, ar.Applied)
			}
			for _, f := range []string{"front.key", "front.pem"} {
				if fi, err := os.Stat(filepath.Join(h.CertDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v %v, want mode 0600", f, err, fi)
				}
			}
			if now, err := h.Processes(); err != nil || now.Reloads != procs.Reloads+1 || now.FailedReloads != procs.FailedReloads {
				t.Errorf("apply reloaded HAProxy how? %+v, before %+v (%v)", now, procs, err)
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
				if c.ID == checkBackendVerified && !strings.Contains(c.Evidence, "aborted the TLS handshake") {
					t.Errorf("after apply: %s passed without HAProxy's alert to the decoy: %s", c.ID, c.Evidence)
				}
				if c.ID == "tls.plaintext.refused" && strings.HasSuffix(c.Subject, "(front)") && !strings.Contains(c.Evidence, "400") {
					t.Errorf("after apply: the front's plaintext refusal is not HAProxy's 400: %s", c.Evidence)
				}
			}
			if err := s3RoundTrip(t, h, q); err != nil {
				t.Errorf("after: S3 through the front: %v", err)
			}

			// A second apply: nothing to change, nothing written, no reload.
			snap, procs := hapSnapshot(t, h), mustProcs(t, h)
			if p := planOf(t, q); p.Diagnostics.HasError() || len(p.Changes) != 0 {
				t.Errorf("second plan: %v %+v", p.Diagnostics, p.Changes)
			}
			if r := applyOf(t, q); r.Diagnostics.HasError() || len(r.Applied) != 0 {
				t.Errorf("second apply: %v %+v", r.Diagnostics, r.Applied)
			}
			sameSnapshot(t, "second apply", snap, hapSnapshot(t, h))
			if now := mustProcs(t, h); now.Reloads != procs.Reloads || !slices.Equal(now.Workers, procs.Workers) {
				t.Errorf("second apply reloaded HAProxy: %+v, then %+v", procs, now)
			}

			// The negative control: verification off, for real.
			inc, _ := os.ReadFile(h.IncludeFile)
			off := strings.ReplaceAll(string(inc), " verify required ca-file "+filepath.Join(h.CertDir, "backend-ca.crt"), " verify none ca-file "+filepath.Join(h.CertDir, "backend-ca.crt"))
			if strings.Count(off, "verify none") != 2 {
				t.Fatalf("the applied include has not two server lines with verify required:\n%s", inc)
			}
			if err := os.WriteFile(h.IncludeFile, []byte(off), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := h.Reload(); err != nil {
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

func mustProcs(t *testing.T, h *testenv.HAProxy) testenv.HAProxyProcs {
	t.Helper()
	p, err := h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A reload HAProxy refuses although haproxy -c passed — the canary's
// listen port is taken by another process (haproxy -c does not bind):
// the master counts a failed reload and keeps the old worker; apply
// fails, every file is restored byte for byte (those it created removed),
// HAProxy is reloaded with them and still serves the old front.
func TestHAProxyRefusedReloadRestores(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, nil)
	ln, err := net.Listen("tcp", h.CanaryListen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	snap, procs := hapSnapshot(t, h), mustProcs(t, h)
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "refused the new configuration at reload") {
		t.Fatalf("apply with the canary port taken: %v", r.Diagnostics)
	}
	sameSnapshot(t, "refused reload", snap, hapSnapshot(t, h))
	// The refused reload and the one of the restored files (HAProxy counts
	// failed reloads since the last good one: back to 0).
	if now := mustProcs(t, h); now.Reloads != procs.Reloads+2 || now.FailedReloads != 0 || slices.Equal(now.Workers, procs.Workers) {
		t.Errorf("want a refused reload, then a good one: %+v, before %+v", now, procs)
	}
	before := verifyOf(t, q)
	wantStatus(t, before, checkFrontSerialServed, "", checks.Fail)
	wantStatus(t, before, "tls.protocol.versions", "(front)", checks.Fail)
	if jp, _, _ := (&target{conn: connection{Kind: "haproxy", ConfigFile: h.ConfigFile}, spec: spec{IncludeFile: h.IncludeFile}}).journalPaths(); fileExists(jp) {
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
func TestHAProxyReloadThatDoesNotTakeRollsBack(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, func(conn, _ map[string]any) { conn["reload_command"] = []string{"true"} })
	defer func(d time.Duration) { servedWait = d }(servedWait)
	servedWait = 2 * time.Second
	snap, procs := hapSnapshot(t, h), mustProcs(t, h)
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "did not serve the new certificate") {
		t.Fatalf("apply with a reload that does nothing: %v", r.Diagnostics)
	}
	sameSnapshot(t, "reload that did not take", snap, hapSnapshot(t, h))
	if now := mustProcs(t, h); now.Reloads != procs.Reloads {
		t.Errorf("reload_command true, yet the master reloaded: %+v, before %+v", now, procs)
	}
}

// An HAProxy configuration that fails haproxy -c before harden touches
// it: plan and apply refuse, and not a byte changes.
func TestHAProxyBrokenConfigRefused(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, nil)
	conf, _ := os.ReadFile(h.ConfigFile)
	if err := os.WriteFile(h.ConfigFile, append(conf, []byte("    this-is-not-haproxy 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := hapSnapshot(t, h)
	if p := planOf(t, q); !p.Diagnostics.HasError() || !strings.Contains(p.Diagnostics.Err().Error(), "fails its own test") ||
		!strings.Contains(p.Diagnostics.Err().Error(), "haproxy.cfg:") {
		t.Errorf("plan of a broken configuration: %v", p.Diagnostics)
	}
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "nothing was changed") || len(r.Applied) != 0 {
		t.Errorf("apply of a broken configuration: %v %+v", r.Diagnostics, r.Applied)
	}
	sameSnapshot(t, "broken configuration", snap, hapSnapshot(t, h))
	wantStatus(t, verifyOf(t, q), checkConfigValid, "", checks.Fail)
}

// No master socket and no reload_command (an HAProxy without a reload
// path): refused with one clear error, nothing changed.
func TestHAProxyWithoutReloadPathRefused(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, func(conn, _ map[string]any) { delete(conn, "master_socket") })
	snap := hapSnapshot(t, h)
	for what, d := range map[string]sdk.Diagnostics{"plan": planOf(t, q).Diagnostics, "apply": applyOf(t, q).Diagnostics} {
		if !d.HasError() || !strings.Contains(d.Err().Error(), "no reload path") || !strings.Contains(d.Err().Error(), "master_socket") {
			t.Errorf("%s without a reload path: %v", what, d)
		}
	}
	sameSnapshot(t, "no reload path", snap, hapSnapshot(t, h))
}

// An include_file the running HAProxy does not load (not on its command
// line): refused before anything changes — a reload would never read it.
func TestHAProxyIncludeNotLoadedRefused(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	other := filepath.Join(h.Dir, "other.cfg")
	q := haproxyRequest(t, h, false, func(_, spec map[string]any) { spec["include_file"] = other })
	snap := hapSnapshot(t, h)
	r := applyOf(t, q)
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "does not load "+other) {
		t.Errorf("apply of an include HAProxy does not load: %v", r.Diagnostics)
	}
	sameSnapshot(t, "include not loaded", snap, hapSnapshot(t, h))
	if fileExists(other) {
		t.Errorf("%s was written", other)
	}
}

// Review M1 for HAProxy: the rendered files written into place and never
// reloaded. The running HAProxy still forwards to weed's plaintext port:
// the hop checks must not pass.
func TestHAProxyRenderedButNotReloaded(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, nil)
	writeRendered(t, q)
	cs := verifyOf(t, q)
	wantStatus(t, cs, checkConfigRendered, "", checks.Pass)
	wantStatus(t, cs, checkFrontSerialServed, "", checks.Fail)
	wantStatus(t, cs, checkBackendTLS, "", checks.Error)
	notPassed(t, cs, checkBackendTLS, checkFrontSerialServed)
	notPassed(t, cs, checkBackendVerified)
}

// Inventory lists HAProxy's front: the "before" certificate, then after
// apply the policy's, each in fresh accepted handshakes; reloads_on empty.
func TestHAProxyInventory(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	// In this order: the "before" front first, then the mTLS scope's over
	// the applied one.
	for _, mtls := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "mtls_scope"}[mtls], func(t *testing.T) {
			q := haproxyRequest(t, h, mtls, nil)
			inventory := func() sdk.ServedListener {
				t.Helper()
				var r sdk.InventoryResponse
				proxyTLS{}.Inventory(context.Background(), sdk.InventoryRequest{RequestContext: q, Handshakes: 3}, &r)
				if r.Diagnostics.HasError() || len(r.Listeners) != 1 {
					t.Fatalf("%v %+v", r.Diagnostics, r.Listeners)
				}
				l := r.Listeners[0]
				if l.Name != "front" || l.Address != h.Front || l.ReloadsOn != "" || l.Error != "" || len(l.Handshakes) != 3 {
					t.Fatalf("listener %+v", l)
				}
				return l
			}
			if !mtls {
				before, _ := os.ReadFile(h.BeforePEM)
				want, _ := leafOf(before)
				for i, hs := range inventory().Handshakes {
					if c, err := leafOf(hs.ChainPEM); err != nil || !c.Equal(want) || hs.Outcome != sdk.OutcomeAccepted {
						t.Errorf("before apply, handshake %d: %s %s (%v)", i, hs.Outcome, hs.Evidence, err)
					}
				}
			}
			if r := applyOf(t, q); r.Diagnostics.HasError() {
				t.Fatal(r.Diagnostics)
			}
			want, _ := leafOf(q.Certificates.ChainPEM)
			for i, hs := range inventory().Handshakes {
				if c, err := leafOf(hs.ChainPEM); err != nil || !c.Equal(want) || hs.Outcome != sdk.OutcomeAccepted || hs.ClientCertRequested != mtls {
					t.Errorf("after apply, handshake %d: %s %s asked for a client certificate %v (%v)", i, hs.Outcome, hs.Evidence, hs.ClientCertRequested, err)
				}
			}
		})
	}
}
