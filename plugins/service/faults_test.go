package main

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/testenv"
)

// weakService is an HTTPS service in a "before" state: TLS 1.0 and a CBC
// suite accepted, HSTS for ten minutes only, no client certificates while
// the target is in the mTLS scope.
func weakService(t *testing.T, ca *testenv.CA) string {
	t.Helper()
	certFile, keyFile, err := ca.Issue("weak", false, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		io.WriteString(w, "ok\n")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// The plugin's whole verify, directly and through every fault of the
// standard matrix in front of the service's TLS port (the declared
// plaintext port, the ingest API's, is reached directly): no check that
// fails or errs directly passes, vanishes or turns into a skip.
func TestVerifyNeverPassesThroughFaults(t *testing.T) {
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, certs := clientIdentity(t)
	addr := weakService(t, ca)
	ing := testenv.IngestForTest(t, "")
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	verifyAt := func(ctx context.Context, a string) ([]checks.Check, error) {
		conn := map[string]any{"address": a, "protocol": "https", "server_name": "localhost", "ca_file": ca.CertFile,
			"plaintext_addresses": []string{ing.PlaintextAddress}}
		return verify(t, request(t, "weak", conn, certs, true)).Checks, nil
	}
	direct := faultkit.NeverPasses(t, addr, verifyAt, faultkit.Standard(true)...)
	got := map[string]checks.Status{}
	for _, c := range direct {
		got[c.ID] = c.Status
	}
	for id, want := range map[string]checks.Status{"tls.protocol.versions": checks.Fail, "tls.cipher_suites": checks.Fail,
		"tls.client_auth.required": checks.Fail, "http.hsts": checks.Fail, "http.content_type_options": checks.Pass,
		checkPlaintextRefused: checks.Fail, "tls.certificate.trusted": checks.Pass} {
		if got[id] != want {
			t.Errorf("direct %s = %s, want %s", id, got[id], want)
		}
	}
}
