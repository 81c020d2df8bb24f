package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// The whole verify against a real redis in a weak state — TLS on with
// redis's defaults (every TLS 1.2 suite OpenSSL offers, every group), the
// plaintext port open, no password — directly and through every fault of
// the standard matrix in front of its TLS port: a fault never turns a
// check that fails (or errors) directly into a pass, and never makes one
// vanish. The management socket and the plaintext port are reached
// directly: the faults are on the TLS path the probe and the
// unauthenticated PING take.
func TestVerifyNeverPassesThroughFaults(t *testing.T) {
	for name, mtls := range map[string]bool{"tls": false, "mtls_scope": true} {
		t.Run(name, func(t *testing.T) { faultMatrix(t, mtls) })
	}
}

// weakRedis is a real redis with TLS on with redis's defaults, the
// plaintext port open and no password.
func weakRedis(t *testing.T) (*redisServer, pki) {
	p := newPKI(t, "fault CA")
	dir := t.TempDir()
	for name, data := range map[string][]byte{"redis.crt": p.serverPEM, "redis.key": p.serverKey, "ca.crt": p.caPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsPort := freePort(t)
	s := startRedis(t, "", "tls-port "+strconv.Itoa(tlsPort), "tls-cert-file "+filepath.Join(dir, "redis.crt"),
		"tls-key-file "+filepath.Join(dir, "redis.key"), "tls-ca-cert-file "+filepath.Join(dir, "ca.crt"), "tls-auth-clients no")
	s.tlsPort = tlsPort
	return s, p
}

// faultMatrix: under mTLS scope redis (tls-auth-clients no) also fails
// tls.client_auth.required directly, through redisDialect's Exchange.
func faultMatrix(t *testing.T, mtls bool) {
	s, p := weakRedis(t)
	tlsPort := s.tlsPort
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	plugin := hostclient.InProcess(redisTLS{})
	defer plugin.Close()
	verify := verifyAt(t, s, p, plugin, mtls, "address")
	upstream := "127.0.0.1:" + strconv.Itoa(tlsPort)
	direct := faultkit.NeverPasses(t, upstream, verify, faultkit.Standard(false)...)
	got := map[string]sdk.Check{}
	for _, c := range direct {
		got[c.ID] = c
	}
	want := []string{checkPlaintextClosed, checkAuthRequired, checkConfigTLS, "tls.cipher_suites"}
	if mtls {
		want = append(want, "tls.client_auth.required")
	}
	for _, id := range want {
		if got[id].Status != checks.Fail {
			t.Errorf("direct %s = %s, want fail: %s", id, got[id].Status, got[id].Evidence)
		}
	}
	if got["tls.enabled"].Status != checks.Pass {
		t.Errorf("direct tls.enabled = %s: %s", got["tls.enabled"].Status, got["tls.enabled"].Evidence)
	}
}

// The faults in front of plaintext_address instead (the TLS port reached
// directly): redis answers a plaintext PING there, so
// redis.plaintext.closed fails directly, and a garbled answer, a reset, a
// stall (the call's timeout), a close or a truncated answer on the
// plaintext port never passes it — none of them is the "connection
// refused" that, with redis reporting port 0, would.
func TestPlaintextVerdictNeverPassesThroughFaults(t *testing.T) {
	s, p := weakRedis(t)
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	plugin := hostclient.InProcess(redisTLS{})
	defer plugin.Close()
	verify := verifyAt(t, s, p, plugin, false, "plaintext_address")
	var rules []faultkit.Rule
	for _, f := range faultkit.Faults {
		rules = append(rules, faultkit.Rule{Fault: f, Match: faultkit.Plaintext, Name: "on the plaintext port"})
	}
	upstream := "127.0.0.1:" + strconv.Itoa(s.port)
	direct := faultkit.NeverPasses(t, upstream, verify, rules...)
	got := byID(direct)
	if c := got[checkPlaintextClosed]; c.Status != checks.Fail || !strings.Contains(c.Evidence, "answered a plaintext PING") {
		t.Errorf("direct %s = %s, want fail on redis's answer: %s", checkPlaintextClosed, c.Status, c.Evidence)
	}
}

// The dialect's exchange on a real TLS port: under TLS 1.2 a PING answered
// in RESP is acceptance; under TLS 1.3 it leaves the verdict to the probe.
func TestDialectExchange(t *testing.T) {
	p := newPKI(t, "CA")
	dir := t.TempDir()
	for name, data := range map[string][]byte{"redis.crt": p.serverPEM, "redis.key": p.serverKey, "ca.crt": p.caPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsPort := freePort(t)
	startRedis(t, "", "tls-port "+strconv.Itoa(tlsPort), "tls-cert-file "+filepath.Join(dir, "redis.crt"),
		"tls-key-file "+filepath.Join(dir, "redis.key"), "tls-ca-cert-file "+filepath.Join(dir, "ca.crt"), "tls-auth-clients no")
	for name, tc := range map[string]struct {
		version uint16
		want    probe.Outcome
	}{"TLS 1.2": {tls.VersionTLS12, probe.Accepted}, "TLS 1.3": {tls.VersionTLS13, probe.NotAttempted}} {
		t.Run(name, func(t *testing.T) {
			c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tlsPort), &tls.Config{MinVersion: tc.version, MaxVersion: tc.version, InsecureSkipVerify: true}) //nolint:gosec // the dialect is under test, not trust
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			o, err := redisDialect{}.Exchange(context.Background(), c)
			if err != nil || o.Outcome != tc.want {
				t.Fatalf("Exchange = %v %q, %v; want %v", o.Outcome, o.Evidence, err, tc.want)
			}
			if tc.want == probe.Accepted && !strings.Contains(o.Evidence, "+PONG") {
				t.Errorf("evidence %q does not show the PONG", o.Evidence)
			}
		})
	}
}

// verifyAt is the fault kit's verify: the whole Verify with the connection
// key (address or plaintext_address) pointed at the fault proxy; an error
// diagnostic counts as the call's error.
func verifyAt(t *testing.T, s *redisServer, p pki, plugin *hostclient.Client, mtls bool, key string) func(context.Context, string) ([]checks.Check, error) {
	return func(ctx context.Context, addr string) ([]checks.Check, error) {
		rc := s.request(t, p, mtls, map[string]any{key: addr}, nil)
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r, err := plugin.Verify(ctx, rc)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Checks, err
	}
}
