package probe

import (
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Describe returns what the scan observed as report data (the checks judge
// it, this only describes it); name is the endpoint's name in the target.
// A plugin appends it to VerifyResponse.Endpoints beside res.Checks.
func (r *Result) Describe(name string) sdk.EndpointScan {
	e := sdk.EndpointScan{Name: name, Address: r.Address, Dialect: r.Dialect, Inconclusive: r.Inconclusive()}
	if r.ConnectErr != nil {
		e.Error = "endpoint unreachable: " + failureKind(r.ConnectErr)
		return e
	}
	for _, p := range r.Protocols {
		e.Versions = append(e.Versions, sdk.VersionObservation{Version: tlsprofile.VersionName(p.Version), Outcome: p.Outcome.String(),
			Evidence: p.Evidence, SuitesIncomplete: p.SuitesIncomplete})
	}
	for _, c := range r.Ciphers {
		e.Suites = append(e.Suites, sdk.SuiteObservation{Version: tlsprofile.VersionName(c.Version), ID: c.ID, Name: c.Name})
	}
	for _, g := range r.Groups {
		e.Groups = append(e.Groups, GroupName(g))
	}
	e.GroupsIncomplete = r.GroupsIncomplete
	if c := r.Certificate; c != nil {
		for _, cert := range c.Chain {
			e.ChainDER = append(e.ChainDER, cert.Raw)
		}
		e.TrustChecked = c.TrustChecked
		if c.TrustErr != nil {
			e.TrustError = c.TrustErr.Error()
		}
	}
	e.ClientCertRequested = r.ClientAuth.Requested
	e.NoClientCert = attempted(r.ClientAuth.NoCert.Outcome)
	e.Plaintext = attempted(r.Plaintext.Outcome)
	return e
}

func attempted(o Outcome) string {
	if o == NotAttempted {
		return ""
	}
	return o.String()
}
