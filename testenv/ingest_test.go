package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestIngestServesBothListeners(t *testing.T) {
	in := IngestForTest(t, "")
	pem, err := os.ReadFile(in.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Post("https://"+in.TLSAddress+"/v1/events", "application/json", strings.NewReader(`[{"a":1},{"b":2}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Ingest-Transport") != "tls" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("TLS answer: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get("http://" + in.PlaintextAddress + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Ingest-Transport") != "plaintext" || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("plaintext answer: %d %v", resp.StatusCode, resp.Header)
	}
	if in.Events.Load() != 2 {
		t.Fatalf("events = %d, want 2", in.Events.Load())
	}
}

func TestIngestMTLSRefusesClientsWithoutCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := IngestForTest(t, ca.CertFile)
	pem, _ := os.ReadFile(in.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := c.Get("https://" + in.TLSAddress + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: got %d, want a refused handshake", resp.StatusCode)
	}
	cert, key, err := ca.Issue("client", true)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := c.Get("https://" + in.TLSAddress + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a client certificate: %d", resp.StatusCode)
	}
}
