package certstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string, notBefore, notAfter time.Time) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issuer signs CSRs for lifetime and counts them, as the vault-pki source
// would.
type issuer struct {
	ca       testCA
	lifetime time.Duration
	calls    int
	last     *x509.CertificateRequest
}

func (is *issuer) sign(t *testing.T) IssueFunc {
	return func(csrPEM []byte) ([]byte, error) {
		is.calls++
		b, _ := pem.Decode(csrPEM)
		if b == nil || b.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("issuer got %q, want a PEM CSR", csrPEM)
		}
		csr, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil || csr.CheckSignature() != nil {
			t.Fatalf("CSR: %v", err)
		}
		is.last = csr
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(10 + is.calls)), Subject: csr.Subject, DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses,
			NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(is.lifetime)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, is.ca.cert, csr.PublicKey, is.ca.key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// The key is made here and only a CSR goes to the issuer: the CSR carries
// the CN and the names (IP addresses as IP SANs), the key is P-256 PKCS#8.
func TestNewKeyAndCSR(t *testing.T) {
	keyPEM, csrPEM, err := NewKeyAndCSR("pg-a", []string{"db.example", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM type: %v", kb)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		t.Fatalf("key %T", k)
	}
	cb, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(cb.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("csr: %v", err)
	}
	if csr.Subject.CommonName != "pg-a" || !slices.Equal(csr.DNSNames, []string{"db.example"}) || len(csr.IPAddresses) != 2 ||
		!csr.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !csr.IPAddresses[1].Equal(net.ParseIP("::1")) {
		t.Errorf("csr subject %v dns %v ip %v", csr.Subject, csr.DNSNames, csr.IPAddresses)
	}
	if !ek.PublicKey.Equal(csr.PublicKey) {
		t.Error("CSR is not for the key")
	}
	if strings.Contains(string(csrPEM), "PRIVATE") {
		t.Error("private key material in the CSR")
	}
}

// Issued material is stored with the key 0600 (also under a permissive
// umask and over a leftover 0644 temp file) in a 0700 directory; the second
// Get reuses it without asking the issuer; a changed name set, a new CA or
// a certificate within renew_before gets a new key and certificate.
func TestStoreReuseAndRenew(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ca := newCA(t, "ca one", testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	is := &issuer{ca: ca, lifetime: 90 * 24 * time.Hour}
	s := Store{Dir: filepath.Join(t.TempDir(), "pg-a"), Target: "pg-a", RenewBefore: 30 * 24 * time.Hour, Now: func() time.Time { return testNow }}
	certFile, keyFile := s.Paths("server")
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile+".tmp", []byte("leftover"), 0o644)
	w := Want{Kind: "server", CommonName: "pg-a", Names: []string{"127.0.0.1", "db.example"}, CAPEM: ca.pem}
	chain, key, err := s.Get(w, is.sign(t))
	if err != nil || is.calls != 1 {
		t.Fatalf("first get: %v, %d issues", err, is.calls)
	}
	if _, err := tls.X509KeyPair(chain, key); err != nil {
		t.Fatalf("not a pair: %v", err)
	}
	if m := mode(t, keyFile); m != 0o600 {
		t.Errorf("key file mode %o, want 0600", m)
	}
	if m := mode(t, certFile); m != 0o644 {
		t.Errorf("certificate file mode %o, want 0644", m)
	}
	if m := mode(t, s.Dir); m != 0o700 {
		t.Errorf("store directory mode %o, want 0700", m)
	}
	if _, err := os.Stat(keyFile + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
	// Second apply: nothing changes.
	chain2, key2, err := s.Get(w, is.sign(t))
	if err != nil || is.calls != 1 || string(chain2) != string(chain) || string(key2) != string(key) {
		t.Fatalf("second get re-issued (%d issues) or changed the material: %v", is.calls, err)
	}
	renewed := func(why string, s Store, w Want) {
		t.Helper()
		before := is.calls
		c, k, err := s.Get(w, is.sign(t))
		if err != nil || is.calls != before+1 {
			t.Fatalf("%s: %v, %d issues, want one more", why, err, is.calls-before)
		}
		if string(k) == string(key) || string(c) == string(chain) {
			t.Errorf("%s: the old key or certificate was kept", why)
		}
		chain, key = c, k
	}
	w.Names = append(w.Names, "db2.example")
	renewed("a new name", s, w)
	ca2 := newCA(t, "ca two", testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	is.ca, w.CAPEM = ca2, ca2.pem
	renewed("a new CA", s, w)
	later := s
	later.Now = func() time.Time { return testNow.Add(61 * 24 * time.Hour) } // 29 days left < 30
	renewed("within renew_before", later, w)
	// 59 days on, 31 left: still good.
	s.Now = func() time.Time { return testNow.Add(59 * 24 * time.Hour) }
	before := is.calls
	if _, _, err := s.Get(w, is.sign(t)); err != nil || is.calls != before {
		t.Errorf("31 days before its end with renew_before 30 days: re-issued (%v)", err)
	}
}

func TestStaleReasons(t *testing.T) {
	ca := newCA(t, "ca", testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	is := &issuer{ca: ca, lifetime: 90 * 24 * time.Hour}
	key, csr, _ := NewKeyAndCSR("x", []string{"a.example"})
	chain, _ := is.sign(t)(csr)
	otherKey, _, _ := NewKeyAndCSR("y", nil)
	other := newCA(t, "other", testNow.Add(-time.Hour), testNow.Add(time.Hour))
	for _, tc := range []struct {
		name       string
		chain, key []byte
		ca         []byte
		names      []string
		now        time.Time
		want       string
	}{
		{"good", chain, key, ca.pem, []string{"a.example"}, testNow, ""},
		{"wrong key", chain, otherKey, ca.pem, nil, testNow, "certificate and key do not match"},
		{"other CA", chain, key, other.pem, nil, testNow, "does not chain to the issuer's current CA"},
		{"missing name", chain, key, ca.pem, []string{"b.example"}, testNow, "does not cover b.example"},
		{"renew window", chain, key, ca.pem, nil, testNow.Add(80 * 24 * time.Hour), "within renew_before of its end"},
		{"expired", chain, key, ca.pem, nil, testNow.Add(91 * 24 * time.Hour), "does not chain to the issuer's current CA"},
	} {
		if got := Stale(tc.chain, tc.key, tc.ca, tc.names, 30*24*time.Hour, tc.now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// verify never issues: nothing stored is "no certificate", a stored
// certificate due for renewal is used as it is, but a stored certificate
// that cannot be read is an error naming it, not a verify that silently
// runs without harden's certificate.
func TestVerifyNeverIssues(t *testing.T) {
	never := func([]byte) ([]byte, error) { t.Fatal("verify asked the issuer"); return nil, nil }
	s := Store{Dir: t.TempDir(), Target: "warehouse-pg", NoIssue: true, RenewBefore: time.Hour}
	w := Want{Kind: "client", CommonName: "harden-admin"}
	chain, key, err := s.Get(w, never)
	if err != nil || chain != nil || key != nil {
		t.Fatalf("nothing stored: %v %v %v", chain, key, err)
	}
	certFile, keyFile := s.Paths("client")
	// A directory where the certificate file belongs: unreadable, even as root.
	if err := os.Mkdir(certFile, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, []byte("x"), 0o600)
	_, _, err = s.Get(w, never)
	if err == nil || !strings.Contains(err.Error(), "client.pem") || !strings.Contains(err.Error(), "warehouse-pg") {
		t.Errorf("unreadable stored certificate: %v", err)
	}
	// Stored but stale (another CA): used as it is.
	os.Remove(certFile)
	ca := newCA(t, "ca", testNow.Add(-time.Hour), testNow.Add(time.Hour))
	k, csr, _ := NewKeyAndCSR("harden-admin", nil)
	c, _ := (&issuer{ca: ca, lifetime: time.Minute}).sign(t)(csr)
	os.WriteFile(certFile, c, 0o644)
	os.WriteFile(keyFile, k, 0o600)
	if chain, _, err := s.Get(w, never); err != nil || string(chain) != string(c) {
		t.Errorf("stale stored certificate under verify: %v", err)
	}
}

// An expired CA from the issuer is refused before anything is handed to a
// plugin, named by its issuer; a not yet valid one too; a bundle with one
// valid CA beside an expired legacy root is accepted.
func TestExpiredCARefused(t *testing.T) {
	pol, err := policy.Parse("/p/policy.yaml", []byte("apiVersion: harden/v1\nprofile: intermediate\ncertificates: {source: vault-pki, vault: {target: vault}}\n"+
		"targets: [{name: vault, plugin: vaultpki}, {name: pg, plugin: postgres}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	expired := newCA(t, "old ca", testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))
	future := newCA(t, "new ca", testNow.Add(time.Hour), testNow.Add(48*time.Hour))
	good := newCA(t, "good ca", testNow.Add(-time.Hour), testNow.Add(48*time.Hour))
	for _, tc := range []struct {
		ca   []byte
		want string
	}{
		{expired.pem, "target pg: CA bundle issued by certificate source vault-pki (target vault) (subject CN=old ca) has expired: valid from 2026-05-30 12:00:00 UTC to 2026-06-01 11:00:00 UTC"},
		{future.pem, "target pg: CA bundle issued by certificate source vault-pki (target vault) (subject CN=new ca) is not valid yet"},
		{append(append([]byte{}, expired.pem...), good.pem...), ""},
	} {
		err := CheckValidity(pol, pol.Targets[1], sdk.Certificates{CABundlePEM: tc.ca}, testNow)
		if tc.want == "" {
			if err != nil {
				t.Errorf("bundle with a valid CA refused: %v", err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v\nwant prefix %s", err, tc.want)
		}
	}
	// An issued leaf that expired is named by its issuer too.
	k, csr, _ := NewKeyAndCSR("pg", nil)
	is := &issuer{ca: good, lifetime: -30 * time.Minute}
	chain, _ := is.sign(t)(csr)
	err = CheckValidity(pol, pol.Targets[1], sdk.Certificates{CABundlePEM: good.pem, ChainPEM: chain, KeyPEM: k}, testNow)
	if err == nil || !strings.HasPrefix(err.Error(), "target pg: certificate issued by certificate source vault-pki (target vault) (subject CN=pg) has expired: valid from 2026-06-01 11:00:00 UTC to 2026-06-01 11:30:00 UTC") {
		t.Errorf("expired issued certificate: %v", err)
	}
}
