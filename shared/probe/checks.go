package probe

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/certlint"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Expectations are what the policy demands of the endpoint beyond the profile.
type Expectations struct {
	Profile tlsprofile.Profile
	// RenewBefore: a certificate expiring sooner fails; AlertAt thresholds warn.
	RenewBefore time.Duration
	AlertAt     []time.Duration
	// RequireClientAuth: the endpoint is in the policy's mTLS scope.
	RequireClientAuth bool
	// Now defaults to time.Now (tests pin it).
	Now time.Time
}

// Checks turns observations into checks. Every check's evidence is what the
// server did; nothing is inferred from configuration.
func (r *Result) Checks(e Expectations) []checks.Check {
	if e.Now.IsZero() {
		e.Now = time.Now()
	}
	subj := r.Address
	if r.ConnectErr != nil {
		return []checks.Check{checks.Errored("tls.enabled", subj, fmt.Errorf("endpoint unreachable: %w", r.ConnectErr))}
	}
	var out []checks.Check
	switch p := r.Plaintext; {
	case p.Err != nil:
		out = append(out, checks.Errored("tls.plaintext.refused", subj, p.Err))
	case !p.Tested:
		out = append(out, checks.New("tls.plaintext.refused", checks.Skip, subj, "the "+r.Dialect+" dialect has no plaintext session to attempt"))
	case p.Accepted:
		out = append(out, checks.Failed("tls.plaintext.refused", subj, p.Evidence))
	default:
		out = append(out, checks.Passed("tls.plaintext.refused", subj, p.Evidence))
	}
	accepted := r.AcceptedVersions()
	if len(accepted) == 0 {
		ev := "no TLS version accepted"
		if r.TLSRefused {
			ev = r.TLSEvidence
		}
		return append(out, checks.Failed("tls.enabled", subj, ev))
	}
	out = append(out, checks.Passed("tls.enabled", subj, "TLS handshake completed ("+versionList(accepted)+")"))
	out = append(out, r.versionCheck(e.Profile))
	out = append(out, r.cipherCheck(e.Profile))
	out = append(out, r.groupCheck(e.Profile))
	out = append(out, r.certificateChecks(e)...)
	if e.RequireClientAuth {
		out = append(out, r.clientAuthCheck())
	}
	return out
}

func versionList(vs []uint16) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = tlsprofile.VersionName(v)
	}
	return strings.Join(names, ", ")
}

func (r *Result) versionCheck(p tlsprofile.Profile) checks.Check {
	var bad, missing, refused []uint16
	for _, pr := range r.Protocols {
		switch {
		case pr.Accepted && !p.AllowsVersion(pr.Version):
			bad = append(bad, pr.Version)
		case !pr.Accepted && p.AllowsVersion(pr.Version):
			missing = append(missing, pr.Version)
		case !pr.Accepted:
			refused = append(refused, pr.Version)
		}
	}
	ev := "accepted: " + versionList(r.AcceptedVersions())
	if len(refused) > 0 {
		ev += "; refused: " + versionList(refused)
	}
	if len(bad) > 0 {
		return checks.Failed("tls.protocol.versions", r.Address, fmt.Sprintf("%s handshake accepted, not allowed by the %s profile (%s)", versionList(bad), p.Name, ev))
	}
	if len(missing) > 0 {
		c := checks.New("tls.protocol.versions", checks.Warn, r.Address, fmt.Sprintf("%s refused although the %s profile allows it (%s)", versionList(missing), p.Name, ev))
		return c
	}
	return checks.Passed("tls.protocol.versions", r.Address, ev)
}

func (r *Result) cipherCheck(p tlsprofile.Profile) checks.Check {
	var bad, good []string
	for _, c := range r.Ciphers {
		name := c.Name
		if s, ok := tlsprofile.SuiteByID(c.ID); ok {
			name = s.IANA
		}
		entry := fmt.Sprintf("%s %s (%s)", tlsprofile.VersionName(c.Version), name, tlsprofile.HexID(c.ID))
		if p.AllowsSuite(c.ID) {
			good = append(good, entry)
		} else {
			bad = append(bad, entry)
		}
	}
	if len(bad) > 0 {
		return checks.Failed("tls.cipher_suites", r.Address, fmt.Sprintf("accepted outside the %s profile: %s; tested: %s", p.Name, strings.Join(bad, ", "), r.CipherCoverage))
	}
	return checks.Passed("tls.cipher_suites", r.Address, fmt.Sprintf("accepted: %s; tested: %s", strings.Join(good, ", "), r.CipherCoverage))
}

func (r *Result) groupCheck(p tlsprofile.Profile) checks.Check {
	if len(r.Groups) == 0 {
		return checks.New("tls.key_exchange.groups", checks.Skip, r.Address, "no key-exchange group observed (no ECDHE or TLS 1.3 accepted)")
	}
	var bad, good []string
	for _, g := range r.Groups {
		name := GroupName(g)
		if slices.Contains(p.Groups, name) {
			good = append(good, name)
		} else {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return checks.Failed("tls.key_exchange.groups", r.Address, fmt.Sprintf("accepted outside the %s profile: %s (accepted: %s)", p.Name, strings.Join(bad, ", "), strings.Join(append(good, bad...), ", ")))
	}
	return checks.Passed("tls.key_exchange.groups", r.Address, "accepted: "+strings.Join(good, ", "))
}

func (r *Result) certificateChecks(e Expectations) []checks.Check {
	c := r.Certificate
	if c == nil || len(c.Chain) == 0 {
		return []checks.Check{checks.Errored("tls.certificate.trusted", r.Address, fmt.Errorf("no certificate observed: %s", r.ClientAuth.Evidence))}
	}
	leaf := c.Chain[0]
	var out []checks.Check
	desc := fmt.Sprintf("subject %q issued by %q, %s", leaf.Subject.CommonName, leaf.Issuer.CommonName, KeyDescription(leaf.PublicKey))
	switch {
	case !c.TrustChecked:
		out = append(out, checks.New("tls.certificate.trusted", checks.Skip, r.Address, "no CA given to verify against; "+desc))
	case c.TrustErr != nil:
		out = append(out, checks.Failed("tls.certificate.trusted", r.Address, desc+": "+c.TrustErr.Error()))
	default:
		out = append(out, checks.Passed("tls.certificate.trusted", r.Address, desc+": chains to the policy CA and matches the endpoint name"))
	}
	if t := keyType(leaf.PublicKey); t != "" && len(e.Profile.CertificateTypes) > 0 && !slices.Contains(e.Profile.CertificateTypes, t) {
		out = append(out, checks.Failed("tls.certificate.trusted", r.Address, fmt.Sprintf("%s key not allowed by the %s profile (allowed: %s)", t, e.Profile.Name, strings.Join(e.Profile.CertificateTypes, ", "))))
	}
	out = append(out, lintCheck(r.Address, c.Chain))
	left := leaf.NotAfter.Sub(e.Now)
	lifespan := leaf.NotAfter.Sub(leaf.NotBefore)
	maxSpan := time.Duration(e.Profile.MaxCertificateLifespanDays) * 24 * time.Hour
	life := fmt.Sprintf("valid %s to %s, %d days left, lifespan %d days", leaf.NotBefore.UTC().Format("2006-01-02"), leaf.NotAfter.UTC().Format("2006-01-02"), int(left.Hours()/24), int(lifespan.Hours()/24))
	switch {
	case e.Now.Before(leaf.NotBefore):
		out = append(out, checks.Failed("tls.certificate.lifetime", r.Address, "not yet valid: "+life))
	case left <= 0:
		out = append(out, checks.Failed("tls.certificate.lifetime", r.Address, "expired: "+life))
	case maxSpan > 0 && lifespan > maxSpan+24*time.Hour:
		out = append(out, checks.Failed("tls.certificate.lifetime", r.Address, fmt.Sprintf("lifespan exceeds the %s profile's %d days: %s", e.Profile.Name, e.Profile.MaxCertificateLifespanDays, life)))
	case e.RenewBefore > 0 && left < e.RenewBefore:
		out = append(out, checks.Failed("tls.certificate.lifetime", r.Address, "inside the renewal window: "+life))
	case slices.ContainsFunc(e.AlertAt, func(a time.Duration) bool { return left < a }):
		out = append(out, checks.New("tls.certificate.lifetime", checks.Warn, r.Address, "alert threshold reached: "+life))
	default:
		out = append(out, checks.Passed("tls.certificate.lifetime", r.Address, life))
	}
	return out
}

func lintCheck(subject string, chain []*x509.Certificate) checks.Check {
	fs, err := certlint.Lint(chain)
	if err != nil {
		return checks.Errored("tls.certificate.lint", subject, err)
	}
	var bad, warn []certlint.Finding
	for _, f := range fs {
		switch f.Status {
		case "error", "fatal":
			bad = append(bad, f)
		case "warn":
			warn = append(warn, f)
		}
	}
	switch {
	case len(bad) > 0:
		return checks.Failed("tls.certificate.lint", subject, certlint.Summary(append(bad, warn...)))
	case len(warn) > 0:
		return checks.New("tls.certificate.lint", checks.Warn, subject, certlint.Summary(warn))
	}
	return checks.Passed("tls.certificate.lint", subject, fmt.Sprintf("%d certificate(s): no RFC 5280/5480/5891/8813 lint errors or warnings", len(chain)))
}

func keyType(pub any) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa"
	case *rsa.PublicKey:
		return "rsa"
	}
	return ""
}

// KeyDescription names a public key: "ECDSA P-256", "RSA 2048 bit".
func KeyDescription(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bit", k.N.BitLen())
	}
	return fmt.Sprintf("%T key", pub)
}

func (r *Result) clientAuthCheck() checks.Check {
	ca := r.ClientAuth
	if !ca.Tested {
		return checks.New("tls.client_auth.required", checks.Error, r.Address, "client authentication was not tested: "+ca.Evidence)
	}
	if !ca.Refused {
		return checks.Failed("tls.client_auth.required", r.Address, ca.Evidence)
	}
	if ca.WrongCATested && !ca.WrongCARefused {
		return checks.Failed("tls.client_auth.required", r.Address, ca.Evidence+"; but "+ca.WrongCAEvidence)
	}
	if ca.TrustedClientTested && !ca.TrustedClientAccepted {
		return checks.New("tls.client_auth.required", checks.Warn, r.Address, ca.Evidence+"; but "+ca.TrustedClientEvidence)
	}
	ev := ca.Evidence
	if ca.WrongCATested {
		ev += "; " + ca.WrongCAEvidence
	}
	if ca.TrustedClientTested {
		ev += "; " + ca.TrustedClientEvidence
	}
	return checks.Passed("tls.client_auth.required", r.Address, ev)
}
