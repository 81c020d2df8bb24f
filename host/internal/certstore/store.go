package certstore

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
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Store is one target's directory of issued certificates: <Dir>/<kind>.pem
// and <Dir>/<kind>-key.pem per kind ("server", "client").
type Store struct {
	// Dir is the target's own directory (certificates.vault.store_dir/<target>).
	Dir string
	// Target names the target in errors.
	Target string
	// RenewBefore: a stored certificate ending sooner is replaced.
	RenewBefore time.Duration
	// NoIssue (verify): never issue; use what is stored, even if due for
	// renewal, or nothing.
	NoIssue bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Want describes the certificate a target needs.
type Want struct {
	// Kind names the files: "server" or "client".
	Kind       string
	CommonName string
	// Names are the SANs (IP addresses or DNS names) it must cover.
	Names []string
	// CAPEM is the issuer's current CA bundle; a stored certificate must
	// chain to it.
	CAPEM []byte
}

// IssueFunc has the issuer sign csrPEM and returns the chain.
type IssueFunc func(csrPEM []byte) (chainPEM []byte, err error)

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Paths of kind's certificate and key files.
func (s Store) Paths(kind string) (cert, key string) {
	return filepath.Join(s.Dir, kind+".pem"), filepath.Join(s.Dir, kind+"-key.pem")
}

// Get returns the stored pair when it is still good, else (unless NoIssue)
// makes a key and a CSR, has issue sign it and stores both. With NoIssue
// and nothing stored it returns nil, nil, nil; a stored file that cannot be
// read is an error naming it.
func (s Store) Get(w Want, issue IssueFunc) (chain, key []byte, err error) {
	certFile, keyFile := s.Paths(w.Kind)
	chain, cerr := policy.ReadBounded(certFile, policy.Public)
	key, kerr := policy.ReadBounded(keyFile, policy.Secret)
	if cerr == nil && kerr == nil && Stale(chain, key, w.CAPEM, w.Names, s.RenewBefore, s.now()) == "" {
		return chain, key, nil
	}
	if s.NoIssue {
		if cerr == nil && kerr == nil {
			return chain, key, nil
		}
		// Nothing stored yet is "nothing"; a stored file that cannot be
		// read (permissions, a directory) is an error naming it, not a
		// verify that silently runs without harden's certificate.
		for _, e := range []error{cerr, kerr} {
			if e != nil && !errors.Is(e, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("stored %s certificate of %s: %w", w.Kind, s.Target, e)
			}
		}
		return nil, nil, nil
	}
	key, csr, err := NewKeyAndCSR(w.CommonName, w.Names)
	if err != nil {
		return nil, nil, fmt.Errorf("target %s: %s key: %w", s.Target, w.Kind, err)
	}
	chain, err = issue(csr)
	if err != nil {
		return nil, nil, err
	}
	// What the source signed must be what this store's bundle trusts: a
	// source that signs with another CA (a CA rotation run from another
	// store) would have targets serve a chain their clients refuse.
	if why := Stale(chain, key, w.CAPEM, w.Names, 0, s.now()); why != "" {
		return nil, nil, fmt.Errorf("target %s: the certificate the source issued %s (a CA rotation run from another certificate store? keep one store per Vault); nothing was stored", s.Target, why)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("target %s: certificate store: %w", s.Target, err)
	}
	// The key first: a chain without its key would be reused by nobody, a
	// key without its chain is re-made next time.
	if err := writeAtomic(keyFile, key, 0o600); err != nil {
		return nil, nil, fmt.Errorf("target %s: %w", s.Target, err)
	}
	if err := writeAtomic(certFile, chain, 0o644); err != nil {
		return nil, nil, fmt.Errorf("target %s: %w", s.Target, err)
	}
	return chain, key, nil
}

// NewKeyAndCSR makes a P-256 key (PEM PKCS#8: Kafka's PEM keystores need
// it) and a CSR for cn with names as SANs.
func NewKeyAndCSR(cn string, names []string) (keyPEM, csrPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, tmpl, priv)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), nil
}

// Stale says why a stored certificate must be replaced ("" when it is
// good): not a pair, not chaining to the current CA, missing a name, or
// within renewBefore of its end.
func Stale(chain, key, caPEM []byte, names []string, renewBefore time.Duration, now time.Time) string {
	if _, err := tls.X509KeyPair(chain, key); err != nil {
		return "certificate and key do not match"
	}
	certs, err := sdk.ParseCertificatesPEM(chain)
	if err != nil || len(certs) == 0 {
		return "unreadable certificate"
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "does not chain to the issuer's current CA"
	}
	for _, n := range names {
		if certs[0].VerifyHostname(n) != nil {
			return "does not cover " + n
		}
	}
	if certs[0].NotAfter.Sub(now) < renewBefore {
		return "within renew_before of its end"
	}
	return ""
}

// writeAtomic replaces path with data at mode through applykit.WriteFile
// (a fresh temporary file, fsync, rename, fsync of the directory: readers
// see the old file or the new one, never a part). The "<file>.tmp" an
// earlier harden's store left after a crash is removed.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.Remove(path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return applykit.WriteFile(path, data, mode, nil)
}

// CheckCerts says whether pemData holds certificates and nothing unreadable.
func CheckCerts(pemData []byte) error {
	_, err := sdk.ParseCertificatesPEM(pemData)
	return err
}
