package sdk

import (
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
)

func testPair(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func TestClientTLS(t *testing.T) {
	ca, _ := testPair(t, "ca")
	cc, ck := testPair(t, "harden")
	_, otherKey := testPair(t, "other")
	cfg, err := ClientTLS(Certificates{CABundlePEM: ca, ClientChainPEM: cc, ClientKeyPEM: ck}, ClientTLSOptions{ServerName: "db"})
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "db" || cfg.InsecureSkipVerify || cfg.MinVersion < 0x0303 {
		t.Fatalf("good material: %v %+v", err, cfg)
	}
	if cfg, err := ClientTLS(Certificates{CABundlePEM: ca, ClientChainPEM: cc, ClientKeyPEM: ck}, ClientTLSOptions{NoClientCertificate: true}); err != nil || len(cfg.Certificates) != 0 {
		t.Errorf("NoClientCertificate: %v %d", err, len(cfg.Certificates))
	}
	truncated := ca[:len(ca)/2]
	dir := t.TempDir()
	badFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(badFile, []byte("not pem"), 0o600)
	for name, tc := range map[string]struct {
		c    Certificates
		o    ClientTLSOptions
		want string
	}{
		"no CA":                  {Certificates{}, ClientTLSOptions{}, "no CA"},
		"CA bundle not PEM":      {Certificates{CABundlePEM: []byte("garbage")}, ClientTLSOptions{}, "policy's CA bundle"},
		"CA bundle truncated":    {Certificates{CABundlePEM: append(append([]byte{}, ca...), truncated...)}, ClientTLSOptions{}, "truncated"},
		"CA file not PEM":        {Certificates{CABundlePEM: ca}, ClientTLSOptions{CAFile: badFile}, badFile},
		"CA file missing":        {Certificates{CABundlePEM: ca}, ClientTLSOptions{CAFile: filepath.Join(dir, "nope")}, "nope"},
		"client chain, no key":   {Certificates{CABundlePEM: ca, ClientChainPEM: cc}, ClientTLSOptions{}, "without its private key"},
		"client key, no chain":   {Certificates{CABundlePEM: ca, ClientKeyPEM: ck}, ClientTLSOptions{}, "without its certificate"},
		"client key mismatch":    {Certificates{CABundlePEM: ca, ClientChainPEM: cc, ClientKeyPEM: otherKey}, ClientTLSOptions{}, "client certificate"},
		"client key not PEM":     {Certificates{CABundlePEM: ca, ClientChainPEM: cc, ClientKeyPEM: []byte("x")}, ClientTLSOptions{}, "client certificate"},
		"no CA, system disallow": {Certificates{ClientChainPEM: cc, ClientKeyPEM: ck}, ClientTLSOptions{}, "no CA"},
	} {
		cfg, err := ClientTLS(tc.c, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v (%+v), want an error naming %q", name, err, cfg, tc.want)
		}
		if strings.Contains(fmtErr(err), "PRIVATE KEY") {
			t.Errorf("%s: key material in the error", name)
		}
	}
	if _, err := ClientTLS(Certificates{}, ClientTLSOptions{}); !errors.Is(err, ErrNoCA) {
		t.Errorf("no CA: %v, want ErrNoCA", err)
	}
	if cfg, err := ClientTLS(Certificates{}, ClientTLSOptions{SystemRoots: true}); err != nil || cfg.RootCAs == nil {
		t.Errorf("system roots: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDecodePrelude(t *testing.T) {
	type conn struct {
		Host string `json:"host"`
	}
	type spec struct {
		On bool `json:"on"`
	}
	var d Diagnostics
	c, s, ok := Decode[conn, spec](NewTarget("t", []byte(`{"host":"db"}`), []byte(`{"on":true}`), nil), &d)
	if !ok || c.Host != "db" || !s.On || d.HasError() {
		t.Fatalf("good blocks: %v %+v %+v %v", ok, c, s, d)
	}
	d = nil
	_, _, ok = Decode[conn, spec](NewTarget("t", []byte(`{"hots":"db"}`), []byte(`{"on":1}`), nil), &d)
	if ok || len(d) != 2 || d[0].Attribute.String() != "connection" || d[1].Attribute.String() != "spec" {
		t.Fatalf("bad blocks: %v %v", ok, d)
	}
}
