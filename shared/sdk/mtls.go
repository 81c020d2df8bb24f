package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/harden-dev/harden/shared/sdk/internal/wire"
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

// pluginChannel reads the bundle from the inherited descriptor and returns
// the plugin's server TLS config; nil when the host did not provide one.
func pluginChannel() (*tls.Config, error) {
	v := os.Getenv(wire.EnvTLSFD)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", wire.EnvTLSFD, v, err)
	}
	f := os.NewFile(uintptr(fd), "harden-plugin-tls")
	if f == nil {
		return nil, fmt.Errorf("%s: descriptor %d is not open", wire.EnvTLSFD, fd)
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
