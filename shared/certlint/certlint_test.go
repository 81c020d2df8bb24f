package certlint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// issue makes a CA and a leaf signed by it from tmpl.
func issue(t *testing.T, tmpl *x509.Certificate) []*x509.Certificate {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return []*x509.Certificate{leaf, ca}
}

func TestLint(t *testing.T) {
	good := issue(t, &x509.Certificate{SerialNumber: big.NewInt(12345), Subject: pkix.Name{CommonName: "db"}, NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	fs, err := Lint(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Status == "error" || f.Status == "fatal" {
			t.Errorf("clean chain: %s", f)
		}
	}
	// An empty subject without a subjectAltName violates RFC 5280 4.1.2.6.
	bad := issue(t, &x509.Certificate{SerialNumber: big.NewInt(5), NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature})
	fs, err = Lint(bad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(Summary(fs), "cert[0] error e_subject_empty_without_san") {
		t.Errorf("empty subject not flagged: %s", Summary(fs))
	}
}
