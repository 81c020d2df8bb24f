package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDescribe: the report data says what the scan saw — the versions with
// their outcomes, every accepted suite, the groups, the presented chain and
// the client-certificate attempt — and nothing is invented for a dialect
// without a plaintext session.
func TestDescribe(t *testing.T) {
	p := newPKI(t, 24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool})
	res, err := Scan(context.Background(), Target{Address: addr, RootCAs: p.pool}, Options{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Describe("api")
	if d.Name != "api" || d.Address != addr || d.Dialect != "tls" || d.Error != "" {
		t.Fatalf("identity %+v", d)
	}
	var outcomes []string
	for _, v := range d.Versions {
		outcomes = append(outcomes, v.Version+"="+v.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "SSLv3=refused,TLSv1=refused,TLSv1.1=refused,TLSv1.2=accepted,TLSv1.3=refused" {
		t.Errorf("versions %s", got)
	}
	if len(d.Suites) != 1 || d.Suites[0].ID != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 || d.Suites[0].Name != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" || d.Suites[0].Version != "TLSv1.2" {
		t.Errorf("suites %+v", d.Suites)
	}
	if len(d.Groups) == 0 || d.Groups[0] != "x25519" {
		t.Errorf("groups %v", d.Groups)
	}
	if len(d.ChainDER) != 1 || !bytes.Equal(d.ChainDER[0], p.server.Certificate[0]) || !d.TrustChecked || d.TrustError != "" {
		t.Errorf("chain %d certs, trust checked %v, error %q", len(d.ChainDER), d.TrustChecked, d.TrustError)
	}
	if !d.ClientCertRequested || d.NoClientCert != "refused" {
		t.Errorf("client auth: requested %v, without a certificate %q", d.ClientCertRequested, d.NoClientCert)
	}
	if d.Plaintext != "" {
		t.Errorf("plain TLS has no plaintext session, got %q", d.Plaintext)
	}
	if d.Inconclusive != res.Inconclusive() {
		t.Errorf("inconclusive %d, scan says %d", d.Inconclusive, res.Inconclusive())
	}
}

// TestDescribeUnreachable: nothing listening is an error, not an empty
// endpoint that looks like it refused everything.
func TestDescribeUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Scan(context.Background(), Target{Address: addr}, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Describe("gone")
	if d.Error == "" || len(d.Versions) != 0 {
		t.Fatalf("unreachable endpoint described as %+v", d)
	}
}
