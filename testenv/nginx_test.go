package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// The "before" nginx: its front answers over TLS 1.0 (the weak front the
// proxy plugin must fix), forwards to the ingest API's PLAINTEXT port
// (X-Ingest-Transport: plaintext) and sends no HSTS; a reload starts new
// workers; the target names the ingest API's TLS port as the backend.
func TestNginxBefore(t *testing.T) {
	n := NginxForTest(t)
	pem, err := os.ReadFile(n.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", n.Front, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
	if err != nil {
		t.Fatalf("the before front refuses TLS 1.0 with a CBC suite: %v", err)
	}
	c.Close()
	get := func() *http.Response {
		t.Helper()
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
		r, err := cl.Get("https://" + n.Front + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r
	}
	r := get()
	if r.StatusCode != 200 || r.Header.Get("X-Ingest-Transport") != "plaintext" || r.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("before: %s, transport %q, HSTS %q; want 200 over the plaintext hop without HSTS", r.Status, r.Header.Get("X-Ingest-Transport"), r.Header.Get("Strict-Transport-Security"))
	}
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := get(); r.StatusCode != 200 {
		t.Errorf("after reload: %s", r.Status)
	}
	tg := n.Target()
	spec := tg["spec"].(map[string]any)
	if b := spec["backend"].(map[string]any); b["address"] != n.Ingest.TLSAddress || tg["name"] != "ingest-proxy" {
		t.Errorf("target: %v", tg)
	}
	inc, _ := os.ReadFile(n.IncludeFile)
	if !strings.Contains(string(inc), "proxy_pass http://"+n.Ingest.PlaintextAddress) {
		t.Errorf("before include:\n%s", inc)
	}
}

// nginx without the ingest API in its env is refused with the reason.
func TestNginxNeedsIngest(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := &Nginx{}
	err = n.Start(context.Background(), &Env{Dir: dir, CA: ca})
	if err == nil || !strings.Contains(err.Error(), "ingest") {
		t.Fatalf("Start without ingest: %v", err)
	}
}
