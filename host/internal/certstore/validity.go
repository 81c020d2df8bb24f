package certstore

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

// CertificateField is the policy path of one of t's certificate fields.
func CertificateField(t policy.Target, field string) []string {
	return []string{"targets", strconv.Itoa(t.Index), "certificate", field}
}

// CheckValidity: every certificate handed to t's plugin — its chain, harden's
// client chain and (at least one CA of) the CA bundle — must be valid now
// (not before <= now < not after): a plugin would put it live and fail. The
// error names where the certificate came from (the policy line of its file,
// or the issuer) and its dates.
func CheckValidity(pol *policy.Policy, t policy.Target, c sdk.Certificates, now time.Time) error {
	issued := pol.Certificates.Source == "vault-pki" && t.CertFile == ""
	issuer := "issued by certificate source vault-pki (target " + pol.Certificates.VaultTarget + ")"
	for _, m := range []struct {
		pem   []byte
		field []string
		file  string
		what  string
	}{
		{c.CABundlePEM, []string{"certificates", "files", "ca_file"}, pol.Certificates.CAFile, "CA bundle"},
		{c.ChainPEM, CertificateField(t, "cert_file"), t.CertFile, "certificate"},
		{c.ClientChainPEM, CertificateField(t, "client_cert_file"), t.ClientCertFile, "client certificate"},
	} {
		if len(m.pem) == 0 {
			continue
		}
		certs, err := sdk.ParseCertificatesPEM(m.pem)
		if err != nil {
			continue // the loader already refused unreadable material
		}
		if m.what == "CA bundle" && slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return ValidityProblem(c, now) == "" }) {
			// An organisation's bundle may still hold an expired legacy
			// root beside the one that matters: only a bundle with no CA
			// valid now is refused (the chain's own certificates are
			// judged one by one below, and the plugin's handshake
			// confirms the chain verifies).
			continue
		}
		for _, cert := range certs {
			why := ValidityProblem(cert, now)
			if why == "" {
				continue
			}
			if issued || (m.what == "CA bundle" && pol.Certificates.CAFile == "") {
				return fmt.Errorf("target %s: %s %s %s %s", t.Name, m.what, issuer, describeCert(cert), why)
			}
			return pol.ErrorAt(m.field, "%s %s %s %s", m.what, m.file, describeCert(cert), why)
		}
	}
	return nil
}

// ValidityProblem says why cert is not valid at now ("" when it is).
func ValidityProblem(cert *x509.Certificate, now time.Time) string {
	const day = "2006-01-02 15:04:05 MST"
	switch {
	case now.Before(cert.NotBefore):
		return fmt.Sprintf("is not valid yet: valid from %s to %s (now %s)", cert.NotBefore.UTC().Format(day), cert.NotAfter.UTC().Format(day), now.UTC().Format(day))
	case !now.Before(cert.NotAfter):
		return fmt.Sprintf("has expired: valid from %s to %s (now %s)", cert.NotBefore.UTC().Format(day), cert.NotAfter.UTC().Format(day), now.UTC().Format(day))
	}
	return ""
}

func describeCert(cert *x509.Certificate) string {
	if s := cert.Subject.String(); s != "" {
		return "(subject " + s + ")"
	}
	return "(serial " + cert.SerialNumber.String() + ")"
}
