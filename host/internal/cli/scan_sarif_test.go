package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// tlsListener serves TLS on 127.0.0.1 with a fresh self-signed
// certificate; it returns the address and the CA file that trusts it.
func tlsListener(t *testing.T) (addr, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
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
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String(), caFile
}

// TestScanFormatSARIF: `harden scan --format sarif` against a live TLS
// listener writes SARIF that passes go-sarif's schema validation, with one
// result per check scan's own JSON reports as not passing, each on
// "harden-scan" line 1 (scan has no policy file).
func TestScanFormatSARIF(t *testing.T) {
	addr, ca := tlsListener(t)
	run := func(format string) (int, []byte, string) {
		var out, errb bytes.Buffer
		io := IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false },
			Getenv: func(string) (string, bool) { return "", false }}
		code := Run(context.Background(), []string{"harden", "scan", "--format", format, "--ca", ca, "--timeout", "5s", addr}, io)
		return code, out.Bytes(), errb.String()
	}
	code, out, stderr := run("sarif")
	if code != ExitOK && code != ExitFindings {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rep, err := sarif.FromBytes(out, sarif.WithStrictValidation())
	if err != nil {
		t.Fatalf("not SARIF: %v\n%s", err, out)
	}
	if err := rep.Validate(); err != nil {
		t.Fatalf("schema: %v", err)
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Name, Version string
					Rules         []struct{ ID string }
				}
			}
			AutomationDetails struct{ ID string }
			Results           []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
					LogicalLocations []struct{ Name string }
				}
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	r := doc.Runs[0]
	if r.Tool.Driver.Name != "harden" || r.Tool.Driver.Version != Version || !regexp.MustCompile(`^harden/scan/[0-9a-f]{12}/$`).MatchString(r.AutomationDetails.ID) {
		t.Fatalf("driver %+v, automation %q", r.Tool.Driver, r.AutomationDetails.ID)
	}

	code, js, stderr := run("json")
	if code != ExitOK && code != ExitFindings {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	var scanned struct {
		Endpoints []struct {
			Checks []struct{ ID, Status string }
		}
	}
	if err := json.Unmarshal(js, &scanned); err != nil || len(scanned.Endpoints) != 1 {
		t.Fatalf("%v: %s", err, js)
	}
	var notPassing []string
	ids := map[string]bool{}
	for _, c := range scanned.Endpoints[0].Checks {
		ids[c.ID] = true
		if c.Status != "pass" && c.Status != "skip" {
			notPassing = append(notPassing, c.ID)
		}
	}
	if !ids["tls.enabled"] || !ids["tls.protocol.versions"] || len(r.Tool.Driver.Rules) != len(ids) {
		t.Fatalf("scan's checks %v, SARIF rules %v", ids, r.Tool.Driver.Rules)
	}
	var got []string
	for _, res := range r.Results {
		got = append(got, res.RuleID)
		l := res.Locations[0]
		if l.PhysicalLocation.ArtifactLocation.URI != "harden-scan" || l.PhysicalLocation.Region.StartLine != 1 || l.LogicalLocations[0].Name != addr {
			t.Errorf("%s at %+v", res.RuleID, l)
		}
	}
	if strings.Join(got, ",") != strings.Join(notPassing, ",") {
		t.Fatalf("SARIF results %v, scan's checks not passing %v", got, notPassing)
	}
	t.Logf("%d checks, %d results: %v", len(ids), len(got), got)
}
