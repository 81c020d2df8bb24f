package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// skid is an RFC 5280 method-1 style key identifier.
func skid(pub any) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha1.Sum(der)
	return sum[:]
}

type pki struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newPKI(t *testing.T, lifetime time.Duration) pki {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(lifetime), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, DNSNames: []string{"localhost"}, SubjectKeyId: skid(&k.PublicKey)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{pool: pool, server: issue("server", x509.ExtKeyUsageServerAuth), client: issue("client", x509.ExtKeyUsageClientAuth)}
}

// serve runs a TLS server that answers every session with "hello".
func serve(t *testing.T, cfg *tls.Config) string {
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
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Write([]byte("hello"))
					io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func byID(cs []checks.Check) map[string]checks.Check {
	m := map[string]checks.Check{}
	for _, c := range cs {
		if _, dup := m[c.ID]; !dup {
			m[c.ID] = c
		}
	}
	return m
}

func TestScanWeakServer(t *testing.T) {
	p := newPKI(t, 24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
	res, err := Scan(context.Background(), Target{Address: addr, RootCAs: p.pool}, Options{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionList(res.AcceptedVersions()); got != "TLSv1.1, TLSv1.2" {
		t.Errorf("accepted versions %q", got)
	}
	var ids []string
	for _, c := range res.Ciphers {
		ids = append(ids, tlsprofile.VersionName(c.Version)+" "+tlsprofile.HexID(c.ID))
	}
	if strings.Join(ids, ",") != "TLSv1.1 0xC009,TLSv1.2 0xC009,TLSv1.2 0xC02B" {
		t.Errorf("ciphers %v", ids)
	}
	// Go's server picks by its own order; x25519 and the NIST curves are offered.
	if !res.ServerPreference {
		t.Errorf("server preference not detected")
	}
	var groups []string
	for _, g := range res.Groups {
		groups = append(groups, GroupName(g))
	}
	if strings.Join(groups, ",") != "x25519,secp256r1,secp384r1,secp521r1" {
		t.Errorf("groups %v", groups)
	}
	cs := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true, RenewBefore: 30 * 24 * time.Hour}))
	want := map[string]checks.Status{
		"tls.plaintext.refused": checks.Skip, "tls.enabled": checks.Pass, "tls.protocol.versions": checks.Fail,
		"tls.cipher_suites": checks.Fail, "tls.certificate.trusted": checks.Pass, "tls.certificate.lifetime": checks.Fail,
		// Go's groups: P-521 is outside the profile's list but stronger
		// than its groups (tlsprofile.GroupVerdict), so not a failure.
		"tls.client_auth.required": checks.Fail, "tls.key_exchange.groups": checks.Pass,
	}
	for id, st := range want {
		if cs[id].Status != st {
			t.Errorf("%s = %s (%s), want %s", id, cs[id].Status, cs[id].Evidence, st)
		}
	}
	if !strings.Contains(cs["tls.protocol.versions"].Evidence, "TLSv1.1 handshake accepted") {
		t.Errorf("version evidence %q", cs["tls.protocol.versions"].Evidence)
	}
	if !strings.Contains(cs["tls.cipher_suites"].Evidence, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (0xC009)") {
		t.Errorf("cipher evidence %q", cs["tls.cipher_suites"].Evidence)
	}
	// 24 h left is inside the default 30-day renewal window.
	if !strings.Contains(cs["tls.certificate.lifetime"].Evidence, "renewal window") {
		t.Errorf("lifetime evidence %q", cs["tls.certificate.lifetime"].Evidence)
	}
	if res.Connections < 5 || res.Connections > 80 {
		t.Errorf("connections %d", res.Connections)
	}
}

func TestScanHardenedServerWithMTLS(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		ClientAuth:       tls.RequireAndVerifyClientCert, ClientCAs: p.pool})
	res, err := Scan(context.Background(), Target{Address: addr, RootCAs: p.pool, ClientCert: &p.client}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true, RenewBefore: 30 * 24 * time.Hour})
	for _, c := range cs {
		want := checks.Pass
		if c.ID == "tls.plaintext.refused" {
			want = checks.Skip
		}
		if c.Status != want {
			t.Errorf("%s = %s: %s", c.ID, c.Status, c.Evidence)
		}
	}
	ca := byID(cs)["tls.client_auth.required"]
	// TLS 1.3 under plain TLS: the refusal is the post-handshake alert, the
	// acceptance the session ticket sent after the client's flight (no wait).
	if !strings.Contains(ca.Evidence, "refused") || !strings.Contains(ca.Evidence, "trusted certificate accepted") || !strings.Contains(ca.Evidence, "session ticket") {
		t.Errorf("client auth evidence %q", ca.Evidence)
	}
}

func TestScanUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	res, err := Scan(context.Background(), Target{Address: addr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := res.Checks(Expectations{Profile: tlsprofile.Modern()})
	if len(cs) != 1 || cs[0].Status != checks.Error || !strings.Contains(cs[0].Evidence, "refused") {
		t.Errorf("checks %+v", cs)
	}
}

// Without a client certificate, a TLS 1.2 server that requires one aborts
// every handshake after its ServerHello: versions and suites still count.
func TestScanMTLSServerWithoutClientCert(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool})
	res, err := Scan(context.Background(), Target{Address: addr, RootCAs: p.pool}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionList(res.AcceptedVersions()); got != "TLSv1.2" {
		t.Errorf("accepted %q", got)
	}
	if len(res.Ciphers) != 1 || res.Ciphers[0].ID != 0xC02C {
		t.Errorf("ciphers %+v", res.Ciphers)
	}
	cs := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}))
	if cs["tls.client_auth.required"].Status != checks.Pass || cs["tls.certificate.trusted"].Status != checks.Pass {
		t.Errorf("checks: %+v", cs)
	}
}

// A server that demands a certificate but accepts any (RequireAnyClientCert)
// fails the mTLS check: the wrong-CA client gets in.
func TestScanAcceptsAnyClientCert(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAnyClientCert})
	res, err := Scan(context.Background(), Target{Address: addr, RootCAs: p.pool}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}))["tls.client_auth.required"]
	if c.Status != checks.Fail || !strings.Contains(c.Evidence, "unrelated CA ACCEPTED") {
		t.Errorf("%s: %s", c.Status, c.Evidence)
	}
}

// Go's TLS 1.3 server offers the hybrid post-quantum group first.
func TestScanDetectsHybridPQGroup(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS13})
	res, err := Scan(context.Background(), Target{Address: addr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) == 0 || GroupName(res.Groups[0]) != "X25519MLKEM768" {
		t.Errorf("groups %v", res.Groups)
	}
}

// A server that hangs up on ClientHellos above 450 bytes without an alert: the
// offer is split until the hellos fit, and every suite is still found.
func TestScanSplitsOversizedHellos(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	inner := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
				defer c.Close()
				hdr := make([]byte, 5)
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				if n := int(hdr[3])<<8 | int(hdr[4]); n > 450 {
					return // drop oversized hellos without an alert
				}
				up, err := net.Dial("tcp", inner)
				if err != nil {
					return
				}
				defer up.Close()
				up.Write(hdr)
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	res, err := Scan(context.Background(), Target{Address: ln.Addr().String()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := hardenPairs(res); strings.Join(got, ",") != "TLSv1.2 0xC00A,TLSv1.2 0xC02B" {
		t.Errorf("pairs %v", got)
	}
}
