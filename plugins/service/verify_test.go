package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/schema.golden.json")

func TestSchemaGolden(t *testing.T) {
	sdktest.SchemaGolden(t, service{}, "testdata/schema.golden.json", *update)
}

// policy is the generated testenv policy's: the intermediate profile and
// the seed's rotation windows.
func policy(mtls ...string) sdk.Policy {
	return sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), MTLSScope: mtls,
		Rotation: sdk.Rotation{MaxLifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour, AlertAt: []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour}}}
}

func request(t testing.TB, name string, conn map[string]any, certs sdk.Certificates, mtls bool) sdk.RequestContext {
	t.Helper()
	raw, err := json.Marshal(conn)
	if err != nil {
		t.Fatal(err)
	}
	pol := policy()
	if mtls {
		pol = policy(name)
	}
	return sdk.RequestContext{Policy: pol, Target: sdk.NewTarget(name, raw, []byte(`{}`), nil), Certificates: certs}
}

// ingestConn is the connection block testenv writes for the ingest API.
func ingestConn(ing *testenv.Ingest) map[string]any {
	c := map[string]any{}
	for k, v := range ing.Target()["connection"].(map[string]any) {
		c[k] = v
	}
	return c
}

func verify(t testing.TB, rc sdk.RequestContext) sdk.VerifyResponse {
	t.Helper()
	client := hostclient.InProcess(service{})
	defer client.Close()
	r, err := client.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// byKey indexes checks by "id subject".
func byKey(r sdk.VerifyResponse) map[string]checks.Check {
	out := map[string]checks.Check{}
	for _, c := range r.Checks {
		out[c.ID+" "+c.Subject] = c
	}
	return out
}

var tlsIDs = []string{"tls.enabled", "tls.plaintext.refused", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
	"tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime"}

// requireStatus fails unless every "id subject" key is there with want.
func requireStatus(t *testing.T, r sdk.VerifyResponse, want map[string]checks.Status) {
	t.Helper()
	got := byKey(r)
	for k, w := range want {
		c, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s missing (have %d checks)", k, len(r.Checks))
		case c.Status != w:
			t.Errorf("%s = %s, want %s: %s", k, c.Status, w, c.Evidence)
		}
	}
}

// The ingest API as testenv runs it (TLS 1.2+, AEAD suites, the testenv
// CA's certificate, HSTS and nosniff): every check passes; declaring its
// legacy plaintext port fails service.plaintext.refused there.
func TestVerifyIngest(t *testing.T) {
	ing := testenv.IngestForTest(t, "")
	conn := ingestConn(ing)
	r := verify(t, request(t, "ingest", conn, sdk.Certificates{}, false))
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	want := map[string]checks.Status{"http.hsts " + ing.TLSAddress: checks.Pass, "http.content_type_options " + ing.TLSAddress: checks.Pass}
	for _, id := range tlsIDs {
		want[id+" "+ing.TLSAddress] = checks.Pass
	}
	requireStatus(t, r, want)
	for _, c := range r.Checks {
		t.Logf("%s %s %s: %s", c.Status, c.ID, c.Subject, c.Evidence)
		if c.Status != checks.Pass {
			t.Errorf("%s %s = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
		}
	}
	if len(r.Endpoints) != 1 || r.Endpoints[0].Address != ing.TLSAddress || r.Endpoints[0].Name != "https" || len(r.Endpoints[0].ChainDER) == 0 {
		t.Errorf("endpoint scans: %+v", r.Endpoints)
	}

	closed := freeAddr(t)
	conn["plaintext_addresses"] = []string{ing.PlaintextAddress, closed}
	r = verify(t, request(t, "ingest", conn, sdk.Certificates{}, false))
	requireStatus(t, r, map[string]checks.Status{
		checkPlaintextRefused + " " + ing.PlaintextAddress: checks.Fail,
		checkPlaintextRefused + " " + closed:               checks.Pass,
		"http.hsts " + ing.TLSAddress:                      checks.Pass,
	})
	if c := byKey(r)[checkPlaintextRefused+" "+ing.PlaintextAddress]; !strings.Contains(c.Evidence, "takes plaintext sessions") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	// A closed port is only closed as seen from here (a firewall on the
	// way refuses what other clients may still reach): the evidence says so.
	if c := byKey(r)[checkPlaintextRefused+" "+closed]; !strings.Contains(c.Evidence, "nothing listening, seen from this host") {
		t.Errorf("evidence for a closed port: %s", c.Evidence)
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// harden's client identity: a certificate from a CA of its own, which the
// ingest API is told to trust (ClientCAFile).
func clientIdentity(t *testing.T) (caFile string, certs sdk.Certificates) {
	t.Helper()
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue("harden-admin", true)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := os.ReadFile(certFile)
	key, _ := os.ReadFile(keyFile)
	return ca.CertFile, sdk.Certificates{ClientChainPEM: chain, ClientKeyPEM: key}
}

// In the mTLS scope: the ingest API requiring certificates from harden's
// client CA passes tls.client_auth.required (and its headers are judged
// over a session with harden's certificate); an ingest API that does not
// verify clients fails it.
func TestVerifyIngestMTLS(t *testing.T) {
	caFile, certs := clientIdentity(t)
	ing := testenv.IngestForTest(t, caFile)
	r := verify(t, request(t, "ingest", ingestConn(ing), certs, true))
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	want := map[string]checks.Status{"tls.client_auth.required " + ing.TLSAddress: checks.Pass, "http.hsts " + ing.TLSAddress: checks.Pass,
		"http.content_type_options " + ing.TLSAddress: checks.Pass}
	for _, id := range tlsIDs {
		want[id+" "+ing.TLSAddress] = checks.Pass
	}
	requireStatus(t, r, want)
	if c := byKey(r)["tls.client_auth.required "+ing.TLSAddress]; !strings.Contains(c.Evidence, "trusted certificate accepted") {
		t.Errorf("harden's own certificate was not shown to get in: %s", c.Evidence)
	}

	open := testenv.IngestForTest(t, "")
	r = verify(t, request(t, "ingest", ingestConn(open), certs, true))
	requireStatus(t, r, map[string]checks.Status{"tls.client_auth.required " + open.TLSAddress: checks.Fail, "tls.protocol.versions " + open.TLSAddress: checks.Pass})
}

// The ingest API's plaintext port given as the address: one error naming
// the target and the address, and no check passes.
func TestVerifyEndpointWithoutTLS(t *testing.T) {
	ing := testenv.IngestForTest(t, "")
	conn := ingestConn(ing)
	conn["address"] = ing.PlaintextAddress
	r := verify(t, request(t, "ingest", conn, sdk.Certificates{}, false))
	var errs []sdk.Diagnostic
	for _, d := range r.Diagnostics {
		if d.Severity == sdk.Error {
			errs = append(errs, d)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Summary, "target ingest") || !strings.Contains(errs[0].Summary, ing.PlaintextAddress) || !strings.Contains(errs[0].Summary, "speaks no TLS") {
		t.Fatalf("want one error naming the target and %s, got %v", ing.PlaintextAddress, r.Diagnostics)
	}
	requireStatus(t, r, map[string]checks.Status{"tls.enabled " + ing.PlaintextAddress: checks.Fail})
	for _, c := range r.Checks {
		if c.Status == checks.Pass {
			t.Errorf("%s passed on a plaintext port: %s", c.ID, c.Evidence)
		}
	}
}

// grpcService is a real grpc-go server with the health service on
// loopback, TLS with the testenv CA's certificate (nil ca: cleartext h2c).
func grpcService(t *testing.T, ca *testenv.CA) string {
	t.Helper()
	var opts []grpc.ServerOption
	if ca != nil {
		certFile, keyFile, err := ca.Issue("grpc", false, "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
			CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})))
	}
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// A gRPC service over TLS: the health check goes through on an h2
// session and the TLS checks pass; grpc-go hangs up on the h2c preface
// without a word, so the TLS port's own plaintext refusal stays
// unproven (an error, never a pass); a declared cleartext gRPC port
// fails service.plaintext.refused.
func TestVerifyGRPC(t *testing.T) {
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, h2c := grpcService(t, ca), grpcService(t, nil)
	conn := map[string]any{"address": addr, "protocol": "grpc", "server_name": "localhost", "ca_file": ca.CertFile, "plaintext_addresses": []string{h2c}}
	r := verify(t, request(t, "events-grpc", conn, sdk.Certificates{}, false))
	want := map[string]checks.Status{"tls.plaintext.refused " + addr: checks.Error, checkPlaintextRefused + " " + h2c: checks.Fail}
	for _, id := range tlsIDs[2:] {
		want[id+" "+addr] = checks.Pass
	}
	want["tls.enabled "+addr] = checks.Pass
	requireStatus(t, r, want)
	if len(r.Endpoints) != 1 || r.Endpoints[0].Dialect != "grpc" || r.Endpoints[0].NoClientCert != "accepted" {
		t.Errorf("endpoint scan: %+v", r.Endpoints)
	}
	for _, c := range r.Checks {
		if strings.HasPrefix(c.ID, "http.") {
			t.Errorf("HTTP header check on a gRPC target: %s", c.ID)
		}
	}
}

// Bad settings are refused at their attribute before anything connects.
func TestValidateSpec(t *testing.T) {
	for name, tc := range map[string]struct {
		conn map[string]any
		want string
	}{
		"path on grpc":         {map[string]any{"address": "127.0.0.1:1", "protocol": "grpc", "path": "/x"}, "connection.path"},
		"tls address as plain": {map[string]any{"address": "127.0.0.1:1", "protocol": "https", "plaintext_addresses": []string{"127.0.0.1:1"}}, "connection.plaintext_addresses[0]"},
		"relative ca_file":     {map[string]any{"address": "127.0.0.1:1", "protocol": "https", "ca_file": "ca.pem"}, "connection.ca_file"},
		"no port":              {map[string]any{"address": "127.0.0.1", "protocol": "tls"}, "connection.address"},
		"bad path":             {map[string]any{"address": "127.0.0.1:1", "protocol": "https", "path": "/a b"}, "path"},
		"unknown protocol":     {map[string]any{"address": "127.0.0.1:1", "protocol": "ftp"}, "protocol"},
	} {
		t.Run(name, func(t *testing.T) {
			client := hostclient.InProcess(service{})
			defer client.Close()
			rc := request(t, "svc", tc.conn, sdk.Certificates{}, false)
			r, err := client.ValidateSpec(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), tc.want) {
				t.Errorf("want an error at %s, got %v", tc.want, r.Diagnostics)
			}
		})
	}
}

// Inventory lists the served chain in fresh handshakes; the certificate is
// not harden's to rotate.
func TestInventory(t *testing.T) {
	ing := testenv.IngestForTest(t, "")
	client := hostclient.InProcess(service{})
	defer client.Close()
	r, err := client.Inventory(context.Background(), request(t, "ingest", ingestConn(ing), sdk.Certificates{}, false), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Listeners) != 1 {
		t.Fatalf("listeners: %+v", r.Listeners)
	}
	l := r.Listeners[0]
	if l.Address != ing.TLSAddress || l.ReloadsOn != sdk.ReloadsNever || len(l.Handshakes) != 3 {
		t.Fatalf("listener: %+v", l)
	}
	want, _ := os.ReadFile(filepath.Clean(ing.CertFile))
	for _, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeAccepted || !strings.Contains(string(want), strings.TrimSpace(string(h.ChainPEM))) {
			t.Errorf("handshake: %s %s (chain served: %d bytes)", h.Outcome, h.Evidence, len(h.ChainPEM))
		}
	}
}

// The plugin contract (metadata, schemas, unknown keys, Stop cancels an
// in-flight verify, nothing on stdout), in process and as the built binary.
func TestConformance(t *testing.T) {
	target := func(addr string) sdk.Target {
		return sdk.NewTarget("svc", []byte(`{"address":"`+addr+`","protocol":"https","server_name":"localhost"}`), []byte(`{}`), nil)
	}
	t.Run("in_process", func(t *testing.T) {
		sdktest.Run(t, sdktest.Harness{Plugin: service{}, Name: "service", Target: target})
	})
	t.Run("binary", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "harden-plugin-service")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		sdktest.Run(t, sdktest.Harness{Binary: bin, Target: target})
	})
}

// plainTLS is a real TLS server with no application protocol (Go's
// crypto/tls, the testenv CA's certificate, TLS 1.2+ with AEAD suites and
// the profile's groups): every session gets a greeting and is closed.
func plainTLS(t *testing.T, ca *testenv.CA) string {
	t.Helper()
	certFile, keyFile, err := ca.Issue("tls-svc", false, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("hello\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// protocol tls: a plain TLS port passes the TLS checks, has no HTTP checks;
// a declared plaintext port that takes TCP connections cannot be judged in
// a protocol without a plaintext session (NotAttempted: an error that says
// to set the protocol, never a pass), while a closed one passes.
func TestVerifyPlainTLS(t *testing.T) {
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := plainTLS(t, ca)
	ing := testenv.IngestForTest(t, "")
	closed := freeAddr(t)
	conn := map[string]any{"address": addr, "protocol": "tls", "server_name": "localhost", "ca_file": ca.CertFile,
		"plaintext_addresses": []string{ing.PlaintextAddress, closed}}
	r := verify(t, request(t, "tls-svc", conn, sdk.Certificates{}, false))
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	want := map[string]checks.Status{checkPlaintextRefused + " " + ing.PlaintextAddress: checks.Error, checkPlaintextRefused + " " + closed: checks.Pass}
	for _, id := range []string{"tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups", "tls.certificate.trusted", "tls.certificate.lifetime"} {
		want[id+" "+addr] = checks.Pass
	}
	requireStatus(t, r, want)
	if c := byKey(r)[checkPlaintextRefused+" "+ing.PlaintextAddress]; !strings.Contains(c.Evidence, "set protocol to what the port speaks") {
		t.Errorf("NotAttempted evidence: %s", c.Evidence)
	}
	for _, c := range r.Checks {
		t.Logf("%s %s %s: %s", c.Status, c.ID, c.Subject, c.Evidence)
		if strings.HasPrefix(c.ID, "http.") {
			t.Errorf("HTTP header check on a plain TLS target: %s", c.ID)
		}
	}
	if len(r.Endpoints) != 1 || r.Endpoints[0].Name != "tls" {
		t.Errorf("endpoint scans: %+v", r.Endpoints)
	}
}

// protocol postgres: a real PostgreSQL with TLS switched on by hand (the
// default cipher list, plaintext still allowed — the state before harden)
// is judged through the SSLRequest dialect: TLS is there and its
// certificate is trusted, but CBC suites are accepted and a plaintext
// startup on the TLS port goes through; a declared plaintext port that
// takes TCP in the postgres protocol is tried in it (here the ingest API's
// HTTP port: no PostgreSQL answer, so an error, never a pass).
func TestVerifyPostgresProtocol(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	if err := pg.EnableTLS(context.Background()); err != nil {
		t.Fatal(err)
	}
	ing := testenv.IngestForTest(t, "")
	t.Cleanup(probe.WithDefaultTimeout(2 * time.Second)) // the HTTP port never answers a StartupMessage
	addr := net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port))
	closed := freeAddr(t)
	conn := map[string]any{"address": addr, "protocol": "postgres", "server_name": "localhost", "ca_file": pg.CAFile(),
		"plaintext_addresses": []string{closed, ing.PlaintextAddress}}
	var r sdk.VerifyResponse
	// ssl = on takes effect with the reload EnableTLS asked for.
	for deadline := time.Now().Add(10 * time.Second); ; {
		r = verify(t, request(t, "warehouse-pg", conn, sdk.Certificates{}, false))
		if byKey(r)["tls.enabled "+addr].Status == checks.Pass || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	requireStatus(t, r, map[string]checks.Status{
		"tls.enabled " + addr:                checks.Pass,
		"tls.certificate.trusted " + addr:    checks.Pass,
		"tls.cipher_suites " + addr:          checks.Fail,
		"tls.plaintext.refused " + addr:      checks.Fail,
		checkPlaintextRefused + " " + closed: checks.Pass,
		// No PostgreSQL answer at all: inconclusive, never a pass.
		checkPlaintextRefused + " " + ing.PlaintextAddress: checks.Error,
	})
	for _, c := range r.Checks {
		t.Logf("%s %s %s: %s", c.Status, c.ID, c.Subject, c.Evidence)
		if strings.HasPrefix(c.ID, "http.") {
			t.Errorf("HTTP header check on a postgres target: %s", c.ID)
		}
	}
	if len(r.Endpoints) != 1 || r.Endpoints[0].Dialect != "postgres" {
		t.Errorf("endpoint scans: %+v", r.Endpoints)
	}
}
