package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ClientTLSOptions says what a plugin's TLS client trusts and presents.
type ClientTLSOptions struct {
	// ServerName is verified against the server's certificate; empty lets
	// the caller's library set it from the address it dials.
	ServerName string
	// CAFile, when set (a plugin's connection.ca_file), is read with
	// ReadFile and trusted instead of the request's CA bundle.
	CAFile string
	// SystemRoots trusts the system's roots when neither CAFile nor the
	// request's CA bundle gives a CA. Without it, no CA is an error.
	SystemRoots bool
	// NoClientCertificate: do not present harden's client identity even
	// when the request carries one.
	NoClientCertificate bool
}

// ErrNoCA: there is no CA to verify the server with (and SystemRoots is
// off). A plugin must then not send credentials.
var ErrNoCA = errors.New("no CA to verify the server with")

// ClientTLS is the one way a plugin builds the TLS client configuration for
// its target from the request's certificates: the policy's CA bundle (or
// CAFile) as the only roots, harden's client certificate for mutual TLS,
// TLS 1.2 at least, nothing skipped. Material that does not parse is an
// error, never silently dropped: a CA bundle (or file) with a block that is
// not a certificate or no certificate at all, a client chain without its
// key or the other way round, a key that does not match its certificate.
func ClientTLS(c Certificates, o ClientTLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: o.ServerName, MinVersion: tls.VersionTLS12}
	pool, err := clientRoots(c, o)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	if o.NoClientCertificate {
		return cfg, nil
	}
	switch hasChain, hasKey := len(c.ClientChainPEM) > 0, len(c.ClientKeyPEM) > 0; {
	case hasChain && hasKey:
		pair, err := tls.X509KeyPair(c.ClientChainPEM, c.ClientKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("harden's client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case hasChain:
		return nil, errors.New("harden's client certificate came without its private key")
	case hasKey:
		return nil, errors.New("harden's client private key came without its certificate")
	}
	return cfg, nil
}

func clientRoots(c Certificates, o ClientTLSOptions) (*x509.CertPool, error) {
	bundle, what := c.CABundlePEM, "the policy's CA bundle"
	if o.CAFile != "" {
		data, err := ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: %w", o.CAFile, err)
		}
		bundle, what = data, "CA file "+o.CAFile
	}
	if len(bundle) == 0 {
		if o.SystemRoots {
			pool, err := x509.SystemCertPool()
			if err != nil {
				return nil, fmt.Errorf("no CA given and no system CA pool: %w", err)
			}
			return pool, nil
		}
		return nil, ErrNoCA
	}
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, nil
}
