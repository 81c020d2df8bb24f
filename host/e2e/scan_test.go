package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/testenv"
)

// TestScanJSONContract scans a live Go TLS server that requires client
// certificates and accepts one CBC suite, and checks the documented JSON.
func TestScanJSONContract(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := ca.Issue("server", false, "127.0.0.1")
	clientCert, clientKey, _ := ca.Issue("client", true)
	pair, _ := tls.LoadX509KeyPair(certFile, keyFile)
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	var out, errb bytes.Buffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: func(string) (string, bool) { return "", false }}
	code := cli.Run(context.Background(), []string{"harden", "scan", "--format", "json", "--ca", ca.CertFile, "--client-cert", clientCert, "--client-key", clientKey,
		"--require-client-cert", ln.Addr().String()}, io)
	if code != cli.ExitFindings {
		t.Fatalf("exit %d (want 2: the CBC suite fails the intermediate profile)\n%s\n%s", code, out.String(), errb.String())
	}
	var doc struct {
		FormatVersion int `json:"format_version"`
		Endpoints     []struct {
			Address   string
			Protocols []struct {
				Version  string
				Accepted bool
			}
			Ciphers      []struct{ Protocol, ID, Name string }
			Groups       []struct{ ID, Name string }
			Certificates []struct {
				Subject string
				Key     string
			}
			ClientAuth struct{ Requested, Required bool } `json:"client_auth"`
			Checks     []struct{ ID, Status, Evidence string }
		}
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	e := doc.Endpoints[0]
	if doc.FormatVersion != 1 || e.Address != ln.Addr().String() {
		t.Fatalf("doc %+v", doc)
	}
	var ciphers []string
	for _, c := range e.Ciphers {
		ciphers = append(ciphers, c.Protocol+" "+c.ID+" "+c.Name)
	}
	if strings.Join(ciphers, "|") != "TLSv1.2 0xC00A TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA|TLSv1.2 0xC02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" {
		t.Errorf("ciphers %v", ciphers)
	}
	if len(e.Protocols) != 5 || e.Protocols[3].Version != "TLSv1.2" || !e.Protocols[3].Accepted || e.Protocols[4].Accepted {
		t.Errorf("protocols %+v", e.Protocols)
	}
	if !e.ClientAuth.Requested || !e.ClientAuth.Required || len(e.Certificates) != 1 || e.Certificates[0].Key != "ECDSA P-256" || len(e.Groups) == 0 {
		t.Errorf("endpoint %+v", e)
	}
	status := map[string]string{}
	for _, c := range e.Checks {
		status[c.ID] = c.Status
	}
	if status["tls.cipher_suites"] != "fail" || status["tls.client_auth.required"] != "pass" || status["tls.certificate.trusted"] != "pass" {
		t.Errorf("checks %v", status)
	}
	// Unreachable endpoint: exit 3.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	out.Reset()
	if code := cli.Run(context.Background(), []string{"harden", "scan", addr}, io); code != cli.ExitTarget {
		t.Errorf("unreachable: exit %d", code)
	}
}
