package probe

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// weakHTTPS is an HTTPS server in its "before" state: TLS 1.0-1.2 with a
// CBC suite, no client certificates required.
func weakHTTPS(t *testing.T, p pki, minV uint16, suites ...uint16) string {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: minV, MaxVersion: tls.VersionTLS13, CipherSuites: suites}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func fastTimeouts(t *testing.T) Options {
	t.Cleanup(WithDefaultTimeout(700 * time.Millisecond))
	return Options{Concurrency: 4}
}

// Every fault of the standard matrix, in front of a weak server: no check
// that fails (or errors) directly may pass through a fault.
func TestFaultsNeverPassProbe(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := weakHTTPS(t, p, tls.VersionTLS10, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	opts := fastTimeouts(t)
	exp := Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}
	verify := func(ctx context.Context, a string) ([]checks.Check, error) {
		res, err := Scan(ctx, Target{Address: a, Dialect: HTTP, RootCAs: p.pool, ServerName: "127.0.0.1"}, opts)
		if err != nil {
			return nil, err
		}
		return res.Checks(exp), nil
	}
	direct := faultkit.NeverPasses(t, addr, verify, faultkit.Standard(true)...)
	got := byID(direct)
	for id, want := range map[string]checks.Status{"tls.plaintext.refused": checks.Pass, "tls.protocol.versions": checks.Fail,
		"tls.cipher_suites": checks.Fail, "tls.client_auth.required": checks.Fail} {
		if got[id].Status != want {
			t.Errorf("direct %s = %s (%s), want %s", id, got[id].Status, got[id].Evidence, want)
		}
	}
}

// The scanners' blind spot: a proxy that answers TLS 1.0/1.1 hellos with
// garbage, a reset, silence or a close while the server behind accepts
// them. sslscan and testssl.sh report "not offered"; harden reports the
// versions as not tested and the check as an error, never a pass — also in
// front of a server that does refuse them (harden cannot tell there either).
func TestVersionsBehindAFaultyProxy(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	weak := weakHTTPS(t, p, tls.VersionTLS10)
	hardened := weakHTTPS(t, p, tls.VersionTLS12)
	opts := fastTimeouts(t)
	for _, f := range faultkit.Faults {
		for name, up := range map[string]string{"accepts TLS 1.0": weak, "refuses TLS 1.0": hardened} {
			t.Run(f.String()+"/"+name, func(t *testing.T) {
				px, err := faultkit.Start(up, faultkit.Rule{Fault: f, Match: faultkit.HelloVersions(0x0301, 0x0302)})
				if err != nil {
					t.Fatal(err)
				}
				defer px.Close()
				res, err := Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, opts)
				if err != nil {
					t.Fatal(err)
				}
				c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate()}))["tls.protocol.versions"]
				if c.Status != checks.Error || !strings.Contains(c.Evidence, "not tested") || c.Inconclusive != 2 {
					t.Errorf("tls.protocol.versions = %s (inconclusive %d): %s", c.Status, c.Inconclusive, c.Evidence)
				}
				for _, pr := range res.Protocols {
					if (pr.Version == tlsprofile.VersionTLS10 || pr.Version == tlsprofile.VersionTLS11) && pr.Outcome != Inconclusive {
						t.Errorf("%s: %s %s", tlsprofile.VersionName(pr.Version), pr.Outcome, pr.Evidence)
					}
				}
			})
		}
	}
}

// A fault after the first accepted suite leaves the enumeration partial:
// tls.cipher_suites is an error, not a pass on the partial list.
func TestSuiteEnumerationInterrupted(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	// Two intermediate suites and a CBC one, which Go's server picks last.
	up := weakHTTPS(t, p, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA)
	opts := fastTimeouts(t)
	// The first TLS 1.2 hello offers every suite; later ones lack the
	// accepted 0xC02B: reset those.
	offersWithout := func(c faultkit.Conn) bool {
		if c.Hello == nil || c.Hello.Version != 0x0303 {
			return false
		}
		return !faultkit.HelloSuite(0xC02B)(c)
	}
	px, err := faultkit.Start(up, faultkit.Rule{Fault: faultkit.Reset, Match: offersWithout})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	res, err := Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate()}))["tls.cipher_suites"]
	if c.Status != checks.Error || !strings.Contains(c.Evidence, "incomplete") {
		t.Errorf("tls.cipher_suites = %s: %s", c.Status, c.Evidence)
	}
	if strings.Contains(c.Evidence, "0xC009") {
		t.Errorf("the CBC suite was reached through the fault: %s", c.Evidence)
	}
	// Directly the same scan fails on the CBC suite: the fault hid it, and
	// the check says it could not tell rather than passing the partial list.
	res, _ = Scan(context.Background(), Target{Address: up, Dialect: HTTP}, opts)
	if c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate()}))["tls.cipher_suites"]; c.Status != checks.Fail || !strings.Contains(c.Evidence, "0xC009") {
		t.Errorf("direct tls.cipher_suites = %s: %s", c.Status, c.Evidence)
	}
	if px.Faulted() == 0 {
		t.Error("the fault never fired")
	}
}

// Group enumeration that hits a fault after the first group is an error,
// not a pass on the groups found so far (Go's server also accepts P-521,
// outside the intermediate profile's list but stronger than its groups).
func TestGroupEnumerationInterrupted(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	up := weakHTTPS(t, p, tls.VersionTLS13)
	opts := fastTimeouts(t)
	withoutFirst := func(c faultkit.Conn) bool {
		if c.Hello == nil || c.Hello.Version != 0x0304 || len(c.Hello.Groups) == 0 {
			return false
		}
		for _, g := range c.Hello.Groups {
			if g == 0x11EC {
				return false
			}
		}
		return true
	}
	px, err := faultkit.Start(up, faultkit.Rule{Fault: faultkit.Close, Match: withoutFirst})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	exp := Expectations{Profile: tlsprofile.Intermediate()}
	res, err := Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := byID(res.Checks(exp))["tls.key_exchange.groups"]; c.Status != checks.Error || len(res.Groups) != 1 || px.Faulted() == 0 {
		t.Errorf("groups through the fault = %s (%d found, %d faulted): %s", c.Status, len(res.Groups), px.Faulted(), c.Evidence)
	}
	res, _ = Scan(context.Background(), Target{Address: up, Dialect: HTTP}, opts)
	// Directly: P-521 is outside the profile's list but stronger than its
	// groups, so it passes, named; a strict profile fails it.
	if c := byID(res.Checks(exp))["tls.key_exchange.groups"]; c.Status != checks.Pass || !strings.Contains(c.Evidence, "secp521r1") {
		t.Errorf("direct groups = %s: %s", c.Status, c.Evidence)
	}
	exp.Profile.StrictGroups = true
	if c := byID(res.Checks(exp))["tls.key_exchange.groups"]; c.Status != checks.Fail || !strings.Contains(c.Evidence, "secp521r1") {
		t.Errorf("direct groups, strict profile = %s: %s", c.Status, c.Evidence)
	}
}

// Client authentication: a server that asks for a certificate but lets a
// client without one in (VerifyClientCertIfGiven) fails mTLS directly;
// through a reset, stall, close, truncation, garbage or a hang-up after its
// CertificateRequest on the full handshakes, never a refusal and never a
// pass (a CertificateRequest seen on one attempt must not make another
// attempt's failure a refusal).
func TestClientAuthFaultsAreNotRefusals(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: p.pool}
	srv.StartTLS()
	defer srv.Close()
	up := strings.TrimPrefix(srv.URL, "https://")
	opts := fastTimeouts(t)
	exp := Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}
	res, _ := Scan(context.Background(), Target{Address: up, Dialect: HTTP}, opts)
	if c := byID(res.Checks(exp))["tls.client_auth.required"]; c.Status != checks.Fail || !res.ClientAuth.Requested {
		t.Fatalf("direct: %s %s", c.Status, c.Evidence)
	}
	// Faults on every other full handshake too: a CertificateRequest on one
	// attempt, a failure on the next.
	for _, f := range append(faultkit.Faults, faultkit.HangUp) {
		for _, name := range []string{"every", "alternate"} {
			match := goHandshake
			if name == "alternate" {
				// The 1st, 3rd, ... full handshake (whatever the
				// connection index): one attempt faulted, the next not.
				var n atomic.Int64
				match = func(c faultkit.Conn) bool { return goHandshake(c) && n.Add(1)%2 == 1 }
			}
			t.Run(f.String()+"/"+name, func(t *testing.T) {
				px, err := faultkit.Start(up, faultkit.Rule{Fault: f, Match: match})
				if err != nil {
					t.Fatal(err)
				}
				defer px.Close()
				res, err := Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if res.ClientAuth.NoCert.Outcome == Refused {
					t.Errorf("%s counted as a refusal: %s", f, res.ClientAuth.NoCert.Evidence)
				}
				c := byID(res.Checks(exp))["tls.client_auth.required"]
				if c.Status == checks.Pass || c.Status == checks.Skip {
					t.Errorf("tls.client_auth.required %s through %s: %s", c.Status, f, c.Evidence)
				}
				if px.Faulted() == 0 {
					t.Error("the fault never fired")
				}
			})
		}
	}
}

// goHandshake tells Go crypto/tls hellos (the full handshakes) from the
// probe's raw ones: the raw hellos offer far more suites.
func goHandshake(c faultkit.Conn) bool {
	return c.Hello != nil && len(c.Hello.Suites) < 40 && len(c.Hello.Suites) > 20
}

// A stalled endpoint costs about two connection timeouts, not one per
// probe, and every observation is inconclusive.
func TestStalledEndpointBudget(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	up := weakHTTPS(t, p, tls.VersionTLS12)
	px, err := faultkit.Start(up, faultkit.Rule{Fault: faultkit.Stall})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	timeout := 300 * time.Millisecond
	start := time.Now()
	res, err := Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// About three timeouts here; the bound leaves room for a loaded CI
	// machine, far below one timeout per probe (~40 probes).
	if took > 8*timeout {
		t.Errorf("stalled endpoint took %v (timeout %v): more than the documented 2-3 timeouts", took, timeout)
	}
	cs := res.Checks(Expectations{Profile: tlsprofile.Intermediate()})
	for _, c := range cs {
		if c.Status != checks.Error {
			t.Errorf("%s = %s on a stalled endpoint: %s", c.ID, c.Status, c.Evidence)
		}
	}
	if len(cs) == 0 {
		t.Fatal("no checks")
	}
	t.Logf("stalled endpoint: %v, %d connections, %d retries", took, res.Connections, res.Retries)
	// The hard budget cuts even a slow stall.
	start = time.Now()
	Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP}, Options{Timeout: 10 * time.Second, Budget: 400 * time.Millisecond})
	if took := time.Since(start); took > time.Second {
		t.Errorf("budget 400ms, scan took %v", took)
	}
}

// A healthy server pays nothing for the retry policy.
func TestHealthyServerNoRetries(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	up := weakHTTPS(t, p, tls.VersionTLS10, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	res, err := Scan(context.Background(), Target{Address: up, Dialect: HTTP, RootCAs: p.pool, ClientCert: &p.client}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	requireConclusive(t, res)
}
