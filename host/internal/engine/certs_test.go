package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, notBefore, notAfter time.Time) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf returns a certificate and key PEM signed by ca.
func (ca testCA) leaf(t *testing.T, cn string, notBefore, notAfter time.Time) ([]byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

const certPolicy = `apiVersion: harden/v1
profile: intermediate
certificates: {source: files, files: {ca_file: ca.pem}}
targets:
  - name: pg
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5432}
    certificate: {cert_file: pg.pem, key_file: pg-key.pem, client_cert_file: client.pem, client_key_file: client-key.pem}
`

type certFixture struct {
	dir string
	pol *policy.Policy
}

func writeCertFixture(t *testing.T, ca testCA, server, client [2][]byte) certFixture {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ca.pem": ca.pem, "pg.pem": server[0], "pg-key.pem": server[1], "client.pem": client[0], "client-key.pem": client[1]} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pf := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pf, []byte(certPolicy), 0o600)
	pol, err := policy.Load(pf)
	if err != nil {
		t.Fatal(err)
	}
	return certFixture{dir, pol}
}

func pair(c, k []byte) [2][]byte { return [2][]byte{c, k} }

// An expired or not yet valid certificate never reaches a plugin's render,
// plan or apply: the error names the policy line of its file, its subject
// and its dates, and is a configuration error (exit 1). verify still runs
// with it — the live server is what verify judges.
func TestCertificatesValidNow(t *testing.T) {
	year := 365 * 24 * time.Hour
	okCA := newCA(t, testNow.Add(-year), testNow.Add(year))
	good := pair(okCA.leaf(t, "pg", testNow.Add(-time.Hour), testNow.Add(30*24*time.Hour)))
	goodClient := pair(okCA.leaf(t, "harden-admin", testNow.Add(-time.Hour), testNow.Add(30*24*time.Hour)))
	tests := map[string]struct {
		ca             testCA
		server, client [2][]byte
		want           string // after the policy file name
	}{
		"expired server certificate": {okCA, pair(okCA.leaf(t, "pg", testNow.Add(-90*24*time.Hour), testNow.Add(-time.Second))), goodClient,
			":8:30: targets[0].certificate.cert_file: certificate %DIR%/pg.pem (subject CN=pg) has expired: valid from 2026-03-03 12:00:00 UTC to 2026-06-01 11:59:59 UTC (now 2026-06-01 12:00:00 UTC)"},
		"server certificate ending exactly now": {okCA, pair(okCA.leaf(t, "pg", testNow.Add(-time.Hour), testNow)), goodClient,
			":8:30: targets[0].certificate.cert_file: certificate %DIR%/pg.pem (subject CN=pg) has expired"},
		"server certificate not yet valid": {okCA, pair(okCA.leaf(t, "pg", testNow.Add(time.Hour), testNow.Add(48*time.Hour))), goodClient,
			":8:30: targets[0].certificate.cert_file: certificate %DIR%/pg.pem (subject CN=pg) is not valid yet: valid from 2026-06-01 13:00:00 UTC"},
		"expired client certificate": {okCA, good, pair(okCA.leaf(t, "harden-admin", testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))),
			":8:78: targets[0].certificate.client_cert_file: client certificate %DIR%/client.pem (subject CN=harden-admin) has expired"},
		"expired CA": {newCA(t, testNow.Add(-2*year), testNow.Add(-time.Minute)), good, goodClient,
			":3:48: certificates.files.ca_file: CA bundle %DIR%/ca.pem (subject CN=test CA) has expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := writeCertFixture(t, tc.ca, tc.server, tc.client)
			e := &Engine{Now: func() time.Time { return testNow }}
			_, err := e.certificates(context.Background(), f.pol, f.pol.Targets[0])
			want := filepath.Join(f.dir, "policy.yaml") + strings.ReplaceAll(tc.want, "%DIR%", f.dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("got %v\nwant prefix %s", err, want)
			}
			var ee *Error
			if !errors.As(err, &ee) || ee.Kind != KindConfig {
				t.Errorf("not a configuration error: %#v", err)
			}
			e.NoIssue = true
			if c, err := e.certificates(context.Background(), f.pol, f.pol.Targets[0]); err != nil || len(c.ChainPEM) == 0 {
				t.Errorf("verify must still get the material: %v", err)
			}
		})
	}
	f := writeCertFixture(t, okCA, good, goodClient)
	e := &Engine{Now: func() time.Time { return testNow }}
	if c, err := e.certificates(context.Background(), f.pol, f.pol.Targets[0]); err != nil || len(c.ClientKeyPEM) == 0 {
		t.Errorf("valid material refused: %v", err)
	}
	// An organisation's bundle that still holds an expired legacy root
	// beside the valid CA is accepted (it was refused: review).
	legacy := newCA(t, testNow.Add(-3*year), testNow.Add(-year))
	bundle := okCA
	bundle.pem = append(append([]byte(nil), legacy.pem...), okCA.pem...)
	f = writeCertFixture(t, bundle, good, goodClient)
	if _, err := e.certificates(context.Background(), f.pol, f.pol.Targets[0]); err != nil {
		t.Errorf("a bundle with one expired legacy root beside a valid CA refused: %v", err)
	}
}

// Files the policy names are read bounded, and their problems are placed at
// the policy line: /dev/zero as the CA bundle is a configuration error, not
// an out-of-memory crash; a group-readable key is refused.
func TestCertificateFilesBounded(t *testing.T) {
	ca := newCA(t, testNow.Add(-time.Hour), testNow.Add(time.Hour))
	s := pair(ca.leaf(t, "pg", testNow.Add(-time.Hour), testNow.Add(time.Hour)))
	c := pair(ca.leaf(t, "harden-admin", testNow.Add(-time.Hour), testNow.Add(time.Hour)))
	f := writeCertFixture(t, ca, s, c)
	pf := filepath.Join(f.dir, "policy.yaml")
	e := &Engine{Now: func() time.Time { return testNow }}

	os.Chmod(filepath.Join(f.dir, "pg-key.pem"), 0o644)
	_, err := e.certificates(context.Background(), f.pol, f.pol.Targets[0])
	if err == nil || !strings.HasPrefix(err.Error(), pf+":8:48: targets[0].certificate.key_file: "+filepath.Join(f.dir, "pg-key.pem")+": secret file has mode 0644") {
		t.Errorf("0644 key: %v", err)
	}
	os.Chmod(filepath.Join(f.dir, "pg-key.pem"), 0o600)

	zero := strings.Replace(certPolicy, "ca_file: ca.pem", "ca_file: /dev/zero", 1)
	os.WriteFile(pf, []byte(zero), 0o600)
	pol, err := policy.Load(pf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.certificates(context.Background(), pol, pol.Targets[0])
	var ee *Error
	if err == nil || !strings.HasPrefix(err.Error(), pf+":3:48: certificates.files.ca_file: /dev/zero: not a regular file (a character device)") || !errors.As(err, &ee) || ee.Kind != KindConfig {
		t.Errorf("/dev/zero CA: %v", err)
	}
}
