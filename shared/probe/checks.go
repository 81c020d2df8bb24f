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

// Checks turns observations into checks by the reduction rules of
// shared/checks: a check passes only when every observation it needs is
// conclusive and good; an inconclusive one makes it an error; nothing is
// inferred from configuration.
func (r *Result) Checks(e Expectations) []checks.Check {
	if e.Now.IsZero() {
		e.Now = time.Now()
	}
	subj := r.Address
	if r.ConnectErr != nil {
		return []checks.Check{checks.Errored("tls.enabled", subj, fmt.Errorf("endpoint unreachable: %s", failureKind(r.ConnectErr)))}
	}
	var out []checks.Check
	switch p := r.Plaintext; p.Outcome {
	case NotAttempted:
		out = append(out, checks.NotApplicable("tls.plaintext.refused", subj, "the "+r.Dialect+" dialect has no plaintext session to attempt"))
	default:
		out = append(out, checks.Reduce("tls.plaintext.refused", subj, Observation{p.Outcome, p.Evidence}.Judge(Refused, "plaintext session")))
	}
	accepted := r.AcceptedVersions()
	if len(accepted) == 0 {
		enabled := r.enabledCheck()
		return append(append(out, enabled), r.dependentChecks(enabled, e.RequireClientAuth)...)
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

// enabledCheck judges an endpoint that accepted no TLS version: conclusive
// when the server declined TLS in its own words, refused every version, or
// answered a plaintext session on the same port; otherwise inconclusive.
func (r *Result) enabledCheck() checks.Check {
	var unknown []string
	for _, p := range r.Protocols {
		if p.Outcome != Refused {
			unknown = append(unknown, p.Evidence)
		}
	}
	switch {
	case r.TLSRefused:
		return checks.Failed("tls.enabled", r.Address, r.TLSEvidence)
	case len(unknown) == 0:
		return checks.Failed("tls.enabled", r.Address, "no TLS version accepted: "+protocolEvidence(r.Protocols))
	case r.Plaintext.Outcome == Accepted && r.singleProtocolPort:
		return checks.Failed("tls.enabled", r.Address, "the port speaks plaintext ("+r.Plaintext.Evidence+") and accepted no ClientHello ("+strings.Join(unknown, "; ")+")")
	}
	c := checks.Reduce("tls.enabled", r.Address, checks.Unknown("TLS handshake", "no TLS version accepted and "+strings.Join(unknown, "; ")))
	return c
}

// dependentChecks stand in for the checks that need an accepted TLS
// version when none was observed: nothing when TLS is conclusively off
// (tls.enabled fails and says why), an error each when it could not be
// told — a failure seen directly must not vanish because a fault hid every
// handshake.
func (r *Result) dependentChecks(enabled checks.Check, clientAuth bool) []checks.Check {
	if enabled.Status == checks.Fail {
		return nil
	}
	ids := []string{"tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups", "tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime"}
	if clientAuth {
		ids = append(ids, "tls.client_auth.required")
	}
	var out []checks.Check
	for _, id := range ids {
		out = append(out, checks.Reduce(id, r.Address, checks.Unknown("TLS handshake", "no TLS version could be observed")))
	}
	return out
}

func protocolEvidence(ps []Protocol) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, p.Evidence)
	}
	return strings.Join(parts, "; ")
}

func versionList(vs []uint16) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = tlsprofile.VersionName(v)
	}
	return strings.Join(names, ", ")
}

func (r *Result) versionCheck(p tlsprofile.Profile) checks.Check {
	var obs []checks.Observation
	var missing []uint16
	for _, pr := range r.Protocols {
		name := tlsprofile.VersionName(pr.Version)
		switch {
		case pr.Outcome == Inconclusive:
			obs = append(obs, checks.Unknown(name, strings.TrimPrefix(pr.Evidence, name+" not tested: ")))
		case pr.Accepted && !p.AllowsVersion(pr.Version):
			obs = append(obs, checks.Bad(fmt.Sprintf("%s handshake accepted, not allowed by the %s profile", name, p.Name)))
		case pr.Accepted:
			obs = append(obs, checks.Good(name+" accepted"))
		default:
			if p.AllowsVersion(pr.Version) {
				missing = append(missing, pr.Version)
			}
			obs = append(obs, checks.Good(pr.Evidence))
		}
	}
	c := checks.Reduce("tls.protocol.versions", r.Address, obs...)
	if c.Status == checks.Pass && len(missing) > 0 {
		c.Status = checks.Warn
		c.Evidence = fmt.Sprintf("%s refused although the %s profile allows it; %s", versionList(missing), p.Name, c.Evidence)
	}
	return c
}

func (r *Result) cipherCheck(p tlsprofile.Profile) checks.Check {
	var obs []checks.Observation
	for _, c := range r.Ciphers {
		entry := fmt.Sprintf("%s %s (%s)", tlsprofile.VersionName(c.Version), c.Name, tlsprofile.HexID(c.ID))
		if p.AllowsSuite(c.ID) {
			obs = append(obs, checks.Good("accepted "+entry))
		} else {
			obs = append(obs, checks.Bad(fmt.Sprintf("accepted outside the %s profile: %s", p.Name, entry)))
		}
	}
	for _, pr := range r.Protocols {
		switch {
		case pr.Accepted && pr.SuitesIncomplete != "":
			obs = append(obs, checks.Unknown(tlsprofile.VersionName(pr.Version)+" suite enumeration", "incomplete, the list is partial: "+pr.SuitesIncomplete))
		case pr.Outcome == Inconclusive:
			obs = append(obs, checks.Unknown(tlsprofile.VersionName(pr.Version)+" suites", "not enumerated: the version itself could not be tested"))
		}
	}
	c := checks.Reduce("tls.cipher_suites", r.Address, obs...)
	c.Evidence += "; tested: " + r.CipherCoverage
	return c
}

func (r *Result) groupCheck(p tlsprofile.Profile) checks.Check {
	if !r.GroupsTested {
		// Not applicable only when that is known: TLS 1.3 refused and every
		// TLS <= 1.2 suite list complete without an ECDHE suite.
		for _, pr := range r.Protocols {
			if pr.Outcome == Inconclusive || pr.SuitesIncomplete != "" || (pr.Version == tlsprofile.VersionTLS13 && pr.Outcome != Refused) {
				return checks.Reduce("tls.key_exchange.groups", r.Address, checks.Unknown("group enumeration", "not run: "+tlsprofile.VersionName(pr.Version)+" could not be fully observed"))
			}
		}
		return checks.NotApplicable("tls.key_exchange.groups", r.Address, "no key exchange with groups accepted (no ECDHE suite and TLS 1.3 refused)")
	}
	var obs []checks.Observation
	for _, g := range r.Groups {
		name := GroupName(g)
		switch ok, why := p.GroupVerdict(name); {
		case ok && why == "":
			obs = append(obs, checks.Good("accepted "+name))
		case ok:
			obs = append(obs, checks.Good("accepted "+name+" ("+why+")"))
		default:
			obs = append(obs, checks.Bad(fmt.Sprintf("accepted %s: %s", name, why)))
		}
	}
	if r.GroupsIncomplete != "" {
		obs = append(obs, checks.Unknown("group enumeration", "incomplete, the list is partial: "+r.GroupsIncomplete))
	}
	// Groups were enumerated over TLS 1.2 when TLS 1.3 was not seen
	// accepted; if TLS 1.3 could not be tested at all, the groups only it
	// negotiates (FFDHE, the hybrids) were never offered: a fault there
	// must not leave a TLS 1.2 list passing alone.
	for _, pr := range r.Protocols {
		if pr.Version == tlsprofile.VersionTLS13 && pr.Outcome == Inconclusive {
			obs = append(obs, checks.Unknown("TLS 1.3 groups", "not enumerated: TLS 1.3 itself could not be tested ("+pr.Evidence+"), and its groups (FFDHE, hybrids) may differ from TLS 1.2's"))
		}
	}
	return checks.Reduce("tls.key_exchange.groups", r.Address, obs...)
}

func (r *Result) certificateChecks(e Expectations) []checks.Check {
	c := r.Certificate
	if c == nil || len(c.Chain) == 0 {
		why := checks.Unknown("read the server's certificate", "no handshake got as far as the certificate: "+r.ClientAuth.NoCert.Evidence)
		return []checks.Check{checks.Reduce("tls.certificate.trusted", r.Address, why), checks.Reduce("tls.certificate.lint", r.Address, why),
			checks.Reduce("tls.certificate.lifetime", r.Address, why)}
	}
	leaf := c.Chain[0]
	var out []checks.Check
	desc := fmt.Sprintf("subject %q issued by %q, %s", leaf.Subject.CommonName, leaf.Issuer.CommonName, KeyDescription(leaf.PublicKey))
	switch {
	case !c.TrustChecked:
		out = append(out, checks.NotApplicable("tls.certificate.trusted", r.Address, "no CA given to verify against; "+desc))
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

// clientAuthCheck: a session without a certificate and one with an
// unrelated CA's certificate must both be refused in the server's own words.
// harden's trusted certificate being refused is a warning (the requirement
// holds, but a trusted client is locked out).
func (r *Result) clientAuthCheck() checks.Check {
	ca := r.ClientAuth
	obs := []checks.Observation{ca.NoCert.Judge(Refused, "session without a client certificate")}
	if ca.NoCert.Outcome == Refused {
		obs = append(obs, ca.WrongCA.Judge(Refused, "session with a certificate from an unrelated CA"))
	}
	c := checks.Reduce("tls.client_auth.required", r.Address, obs...)
	if c.Status == checks.Fail && ca.NoCert.Outcome == Accepted && !ca.Requested {
		c.Evidence += " (the server did not ask for one)"
	}
	if ca.Trusted.Outcome != NotAttempted {
		if c.Status == checks.Pass && ca.Trusted.Outcome != Accepted {
			c.Status = checks.Warn
			c.Evidence += "; but " + ca.Trusted.asEvidence().String()
		} else {
			c.Evidence += "; " + ca.Trusted.asEvidence().String()
		}
	}
	return c
}

// asEvidence is the attempt as a neutral check observation (for evidence).
func (o Observation) asEvidence() checks.Observation {
	if o.Outcome == Inconclusive {
		return checks.Unknown("", o.Evidence)
	}
	return checks.Good(o.Evidence)
}
