package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"time"
)

// Host-plugin mutual TLS with one-time certificates, always on.
//
// This is go-plugin's AutoMTLS protocol with two changes, both for launch
// latency (the 50 ms launch budget): go-plugin hard-codes P-521, whose
// first use in a fresh process plus its signatures cost ~35 ms per launch,
// so both certificates here are P-256 (~0.1 ms); and the host generates both
// one-time key pairs and hands the plugin its server key over an inherited
// pipe (fd 3), never in the environment or on disk. Each launch gets new
// keys; the host trusts only that launch's server certificate and the plugin
// accepts only that launch's client certificate, over TLS 1.3.

// envTLSFD names the inherited file descriptor carrying the plugin's
// one-time TLS material.
const envTLSFD = "HARDEN_PLUGIN_TLS_FD"

const tlsServerName = "localhost"

type oneTimeCert struct {
	pemCert, pemKey []byte
	cert            *x509.Certificate
}

func newOneTimeCert(cn string, usage x509.ExtKeyUsage) (oneTimeCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return oneTimeCert{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return oneTimeCert{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn, Organization: []string{"harden one-time plugin channel"}},
		DNSNames: []string{tlsServerName}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return oneTimeCert{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return oneTimeCert{}, err
	}
	cert, _ := x509.ParseCertificate(der)
	return oneTimeCert{pemCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pemKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), cert: cert}, nil
}

// hostChannel creates both one-time certificates and returns the host's TLS
// config and the bundle for the plugin (server cert, server key, client cert).
func hostChannel() (*tls.Config, []byte, error) {
	client, err := newOneTimeCert("harden host", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	server, err := newOneTimeCert("harden plugin", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, nil, err
	}
	clientPair, err := tls.X509KeyPair(client.pemCert, client.pemKey)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(server.cert)
	cfg := &tls.Config{Certificates: []tls.Certificate{clientPair}, RootCAs: roots, ServerName: tlsServerName, MinVersion: tls.VersionTLS13}
	bundle := append(append(append([]byte{}, server.pemCert...), server.pemKey...), client.pemCert...)
	return cfg, bundle, nil
}

// pluginChannel reads the bundle from the inherited descriptor and returns
// the plugin's server TLS config; nil when the host did not provide one.
func pluginChannel() (*tls.Config, error) {
	v := os.Getenv(envTLSFD)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", envTLSFD, v, err)
	}
	f := os.NewFile(uintptr(fd), "harden-plugin-tls")
	if f == nil {
		return nil, fmt.Errorf("%s: descriptor %d is not open", envTLSFD, fd)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read TLS material: %w", err)
	}
	var certs [][]byte
	var key []byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(b))
		case "PRIVATE KEY":
			key = pem.EncodeToMemory(b)
		}
	}
	if len(certs) != 2 || key == nil {
		return nil, errors.New("TLS material from the host is incomplete")
	}
	pair, err := tls.X509KeyPair(certs[0], key)
	if err != nil {
		return nil, err
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(certs[1])
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}
