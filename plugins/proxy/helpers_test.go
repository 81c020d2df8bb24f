package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// nginxRequest is the request harden sends for testenv's ingest-proxy
// target (its generated policy block), with edit applied to the
// connection and spec blocks first.
func nginxRequest(t testing.TB, n *testenv.Nginx, mtls bool, edit func(conn, spec map[string]any)) sdk.RequestContext {
	t.Helper()
	tg := n.Target()
	conn, spec := tg["connection"].(map[string]any), tg["spec"].(map[string]any)
	if edit != nil {
		edit(conn, spec)
	}
	cj, _ := json.Marshal(conn)
	sj, _ := json.Marshal(spec)
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certs := sdk.Certificates{ChainPEM: read(n.CertFile), KeyPEM: read(n.KeyFile), CABundlePEM: read(n.CAFile)}
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files",
		Rotation: sdk.Rotation{RenewBefore: 7 * 24 * time.Hour},
		Targets:  []sdk.TargetRef{{Name: "ingest-proxy", Plugin: "proxy", MTLS: mtls}}}
	if mtls {
		policy.MTLSScope = []string{"ingest-proxy"}
		cf, kf, err := n.CA.Issue("harden-client", true)
		if err != nil {
			t.Fatal(err)
		}
		certs.ClientChainPEM, certs.ClientKeyPEM = read(cf), read(kf)
	}
	return sdk.RequestContext{Policy: policy, Target: sdk.NewTarget("ingest-proxy", cj, sj, nil), Certificates: certs}
}

// offlinePKI is a CA, a server certificate for 127.0.0.1/localhost and a
// client certificate, in memory (tests that need no server).
var offlinePKI = sync.OnceValue(func() (p struct{ ca, cert, key, clientCert, clientKey []byte }) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "offline CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	p.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	issue := func(n int64, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "offline"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		kd, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	}
	p.cert, p.key = issue(2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue(3, x509.ExtKeyUsageClientAuth)
	return p
})

// offlineBlocks are a plausible nginx target's blocks (no server behind).
func offlineBlocks() (conn, spec map[string]any) {
	return map[string]any{"kind": "nginx", "front": "127.0.0.1:8443", "server_name": "localhost", "config_file": "/etc/nginx/nginx.conf", "pid_file": "/run/nginx.pid"},
		map[string]any{"include_file": "/etc/nginx/harden/ingest.conf", "cert_dir": "/etc/nginx/harden/certs",
			"backend": map[string]any{"address": "127.0.0.1:9443", "server_name": "localhost"},
			"canary":  map[string]any{"listen": "127.0.0.1:7443", "decoy": "127.0.0.1:7444"}}
}

// blocksRequest is the request for conn and spec with the offline PKI.
func blocksRequest(conn, spec map[string]any, mtls bool) sdk.RequestContext {
	cj, _ := json.Marshal(conn)
	sj, _ := json.Marshal(spec)
	p := offlinePKI()
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files",
		Targets: []sdk.TargetRef{{Name: "ingest-proxy", Plugin: "proxy", MTLS: mtls}}}
	certs := sdk.Certificates{ChainPEM: p.cert, KeyPEM: p.key, CABundlePEM: p.ca}
	if mtls {
		policy.MTLSScope = []string{"ingest-proxy"}
		certs.ClientChainPEM, certs.ClientKeyPEM = p.clientCert, p.clientKey
	}
	return sdk.RequestContext{Policy: policy, Target: sdk.NewTarget("ingest-proxy", cj, sj, nil), Certificates: certs}
}

// testTarget is the offline target, edited, as load makes it.
func testTarget(tb testing.TB, edit func(conn, spec map[string]any)) *target {
	tb.Helper()
	conn, spec := offlineBlocks()
	if edit != nil {
		edit(conn, spec)
	}
	var d sdk.Diagnostics
	tg, ok := load(blocksRequest(conn, spec, false), &d)
	if !ok {
		tb.Fatalf("load: %v", d)
	}
	return tg
}

// testRequest is the request for tg (its blocks as decoded).
func testRequest(tb testing.TB, tg *target, mtls bool) sdk.RequestContext {
	tb.Helper()
	var conn, spec map[string]any
	cj, _ := json.Marshal(tg.conn)
	sj, _ := json.Marshal(tg.spec)
	json.Unmarshal(cj, &conn)
	json.Unmarshal(sj, &spec)
	for _, m := range []map[string]any{conn, spec, spec["backend"].(map[string]any)} {
		for k, v := range m {
			if v == nil || v == "" {
				delete(m, k)
			}
		}
	}
	return blocksRequest(conn, spec, mtls)
}
