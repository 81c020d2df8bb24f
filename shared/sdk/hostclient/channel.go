package hostclient

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

// The host half of the one-time mutual TLS channel (package sdk, mtls.go,
// has the plugin half and the rationale).

// hostChannel creates both one-time certificates and returns the host's TLS
// config and the bundle for the plugin (server cert, server key, client cert).
func hostChannel() (*tls.Config, []byte, error) {
	client, err := wire.NewOneTimeCert("harden host", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	server, err := wire.NewOneTimeCert("harden plugin", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, nil, err
	}
	clientPair, err := tls.X509KeyPair(client.PEMCert, client.PEMKey)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(server.Cert)
	cfg := &tls.Config{Certificates: []tls.Certificate{clientPair}, RootCAs: roots, ServerName: wire.TLSServerName, MinVersion: tls.VersionTLS13}
	bundle := append(append(append([]byte{}, server.PEMCert...), server.PEMKey...), client.PEMCert...)
	return cfg, bundle, nil
}
