package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// asBefore fails t unless s is in its "before" state: plaintext port open
// and answering, no TLS port, none of the certificate files left.
func asBefore(t *testing.T, s *redisServer) {
	t.Helper()
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("tls-port = %s, want 0 (undone)", got)
	}
	if got := s.config("port"); got == "0" {
		t.Errorf("port = 0: the plaintext port was closed and not reopened")
	}
	if got := s.config("tls-cert-file"); got != "" {
		t.Errorf("tls-cert-file = %q, want empty (undone)", got)
	}
	for _, f := range []string{"redis.crt", "redis.key", "ca.crt", "openssl.cnf"} {
		if _, err := os.Stat(filepath.Join(s.dir, "tls", f)); err == nil {
			t.Errorf("%s left behind after the rollback", f)
		}
	}
	conf, _ := os.ReadFile(s.conf)
	if strings.Contains(string(conf), "tls-port") {
		t.Errorf("redis.conf was rewritten:\n%s", conf)
	}
	if pt := plaintextAttempt(context.Background(), "127.0.0.1:"+strconv.Itoa(s.port)); !pt.Bad {
		t.Errorf("the plaintext port does not answer after the rollback: %s", pt)
	}
}

func hasCode(ds sdk.Diagnostics, code string) bool {
	return slices.ContainsFunc(ds, func(d sdk.Diagnostic) bool { return d.Code == code && d.Severity == sdk.Error })
}

// errorSays requires msg (what: "apply error") to say each of wants and,
// when password is set, never to carry it.
func errorSays(t *testing.T, what, msg, password string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("%s does not say %q: %s", what, want, msg)
		}
	}
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("the password is in the %s: %s", what, msg)
	}
}

// The new TLS login fails (the server's certificate does not name the
// server_name harden checks): apply undoes the TLS port, the tls-*
// settings and the files, newest first, says so, and the plaintext port
// was never closed — the operator is not locked out.
func TestFailedLoginRollsBack(t *testing.T) {
	s := startRedis(t, "pw-rollback")
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"server_name": "not-the-server.example"}, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	r := applyOnce(t, cl, rc, nil)
	if !hasCode(r.Diagnostics, "redis.apply") {
		t.Fatalf("apply did not fail with redis.apply: %+v", r.Diagnostics)
	}
	errorSays(t, "apply error", r.Diagnostics.Err().Error(), "pw-rollback", "tls-login", "undone", "a new TLS session")
	if len(r.Applied) != 0 {
		t.Errorf("a rolled-back apply reports applied changes: %+v", r.Applied)
	}
	asBefore(t, s)
}

// A step redis refuses (CONFIG SET tls-port on a port something else
// holds) undoes the earlier steps: the tls-* settings and the files.
func TestFailingStepUndoesEarlierSteps(t *testing.T) {
	s := startRedis(t, "")
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	go func() { // hang up at once: harden's TLS dial fails fast and falls back to the socket
		for {
			c, err := busy.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	r := applyOnce(t, cl, rc, nil)
	if !hasCode(r.Diagnostics, "redis.apply") || !strings.Contains(r.Diagnostics.Err().Error(), "tls-port") {
		t.Fatalf("apply did not fail at tls-port: %+v", r.Diagnostics)
	}
	if got := s.config("tls-protocols"); got != "" {
		t.Errorf("tls-protocols = %q after the rollback, want the old empty value", got)
	}
	asBefore(t, s)
}

// Ctrl-C (the request's context cancelled) at a step boundary undoes
// every step taken so far.
func TestCancelUndoes(t *testing.T) {
	s := startRedis(t, "pw-cancel")
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stepHook = func(phase string) {
		if phase == "plaintext-closed" {
			cancel()
		}
	}
	defer func() { stepHook = nil }()
	var r sdk.ApplyResponse
	redisTLS{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
	stepHook = nil
	if !hasCode(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply was not reported interrupted: %+v", r.Diagnostics)
	}
	asBefore(t, s)
}

// A plan made before redis changed is refused, and nothing is changed.
func TestStalePlanRefused(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
	}
	if _, err := s.cli("CONFIG", "SET", "tls-protocols", "TLSv1.3"); err != nil {
		t.Fatal(err)
	}
	r := applyOnce(t, cl, rc, pr.PlanToken)
	if !hasCode(r.Diagnostics, applykit.PlanStaleCode) {
		t.Fatalf("stale plan not refused: %+v", r.Diagnostics)
	}
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("a refused apply set tls-port %s", got)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "tls", "redis.key")); err == nil {
		t.Errorf("a refused apply wrote redis.key")
	}
}

// Without TLS and without the Unix socket, the password is never sent
// over plaintext TCP: the plan says how to manage redis instead.
func TestNoPasswordOverPlaintext(t *testing.T) {
	s := startRedis(t, "pw-plain")
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"unix_socket": "", "allow_plaintext_admin": "test"}, nil)
	pr, err := hostclient.InProcess(redisTLS{}).Plan(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	if !hasCode(pr.Diagnostics, "redis.plan") || !strings.Contains(pr.Diagnostics.Err().Error(), "only over verified TLS or the Unix socket") {
		t.Fatalf("plan over plaintext with a password: %+v", pr.Diagnostics)
	}
	if strings.Contains(pr.Diagnostics.Err().Error(), "pw-plain") {
		t.Errorf("the password is in the error")
	}
}

// Without a password, allow_plaintext_admin lets harden bootstrap TLS over
// the plaintext port, and the plaintext management session survives the
// port's closing long enough to rewrite the config.
func TestPlaintextAdminBootstrap(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"unix_socket": "", "allow_plaintext_admin": "test bootstrap"}, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	r := applyOnce(t, cl, rc, nil)
	if r.Diagnostics.HasError() {
		t.Fatalf("apply: %v", r.Diagnostics.Err())
	}
	if got := s.config("port"); got != "0" {
		t.Errorf("port = %s", got)
	}
	// Now TLS is the management path; a second apply changes nothing.
	if r2 := applyOnce(t, cl, rc, nil); r2.Diagnostics.HasError() || len(r2.Applied) != 0 {
		t.Errorf("second apply: %v %+v", r2.Diagnostics.Err(), r2.Applied)
	}
}

// spec.config_file must be the file redis runs with: else nothing is
// changed (CONFIG REWRITE would persist the settings elsewhere).
func TestConfigFileMustBeRedisOwn(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), false, nil, map[string]any{"config_file": "/etc/redis/other.conf"})
	r := applyOnce(t, hostclient.InProcess(redisTLS{}), rc, nil)
	if !hasCode(r.Diagnostics, "redis.apply") || !strings.Contains(r.Diagnostics.Err().Error(), "not spec.config_file /etc/redis/other.conf") {
		t.Fatalf("apply with another config file: %+v", r.Diagnostics)
	}
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("tls-port = %s", got)
	}
}

// servedSerial is the serial of the certificate redis serves now.
func servedSerial(t *testing.T, s *redisServer, p pki) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.tlsPort), &tls.Config{RootCAs: pool, ServerName: "localhost", InsecureSkipVerify: true}) //nolint:gosec // the serial is all we read
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// Certificate rotation on a live TLS port: the new files are written and
// redis reloads them (the tls-* settings set again); a rotation whose new
// certificate fails the login gate (it does not name the server) is
// undone — files restored and reloaded, the old certificate served again.
func TestRotation(t *testing.T) {
	s := startRedis(t, "pw-rotate")
	p := newPKI(t, "CA")
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	if r := applyOnce(t, cl, s.request(t, p, false, nil, nil), nil); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	if got := servedSerial(t, s, p); got != "2" {
		t.Fatalf("served serial %s, want 2", got)
	}

	bad := p
	bad.serverPEM, bad.serverKey = p.issue(10, "other", []string{"other.example"}, true)
	r := applyOnce(t, cl, s.request(t, bad, false, nil, nil), nil)
	if !hasCode(r.Diagnostics, "redis.apply") || !strings.Contains(r.Diagnostics.Err().Error(), "tls-login") {
		t.Fatalf("a rotation to a certificate that fails the login gate: %+v", r.Diagnostics)
	}
	if got := servedSerial(t, s, p); got != "2" {
		t.Errorf("after the undone rotation redis serves serial %s, want the old 2", got)
	}
	if key, _ := os.ReadFile(filepath.Join(s.dir, "tls", "redis.key")); string(key) != string(p.serverKey) {
		t.Errorf("redis.key was not restored")
	}

	good := p
	good.serverPEM, good.serverKey = p.issue(11, "localhost", []string{"localhost"}, true)
	rc := s.request(t, good, false, nil, nil)
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
	}
	if r := applyOnce(t, cl, rc, pr.PlanToken); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	if got := servedSerial(t, s, p); got != "11" {
		t.Errorf("after the rotation redis serves serial %s, want 11", got)
	}

	// Only openssl.cnf missing: one file, marked restart required, and no
	// reload, login gate or rewrite around it.
	os.Remove(filepath.Join(s.dir, "tls", "openssl.cnf"))
	conf, _ := os.ReadFile(s.conf)
	r = applyOnce(t, cl, rc, nil)
	if r.Diagnostics.HasError() || len(r.Applied) != 1 || !r.Applied[0].RequiresRestart || !strings.HasSuffix(r.Applied[0].Resource, "openssl.cnf") {
		t.Errorf("apply of a missing openssl.cnf: %v %+v", r.Diagnostics.Err(), r.Applied)
	}
	if now, _ := os.ReadFile(s.conf); string(now) != string(conf) {
		t.Errorf("redis.conf was rewritten for a file redis reads only at its start")
	}
}

// Under mTLS scope without harden's client certificate, plan refuses
// before anything changes (the login gate could never pass).
func TestMTLSNeedsHardensClientCertificate(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), true, nil, nil)
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = nil, nil
	r := applyOnce(t, hostclient.InProcess(redisTLS{}), rc, nil)
	if !hasCode(r.Diagnostics, "redis.apply") || !strings.Contains(r.Diagnostics.Err().Error(), "no client certificate") {
		t.Fatalf("%+v", r.Diagnostics)
	}
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("tls-port = %s", got)
	}
}
