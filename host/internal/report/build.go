package report

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// New starts a Run over the given targets of pol, each "ok" until a result
// says otherwise, with the target's position in the policy file.
func New(pol *policy.Policy, targets []policy.Target) *Run {
	r := &Run{FormatVersion: FormatVersion, Policy: pol.File, Profile: pol.Profile.Name, ProfileDetail: ProfileOf(pol.Profile)}
	if abs, err := filepath.Abs(pol.File); err == nil {
		r.PolicyPath = abs
	}
	for _, t := range targets {
		pos := pol.TargetPosition(t.Index)
		r.Targets = append(r.Targets, Target{Name: t.Name, Plugin: t.Plugin, Status: "ok", Line: pos.Line, Column: pos.Column})
	}
	return r
}

// ProfileOf describes what a TLS profile allows.
func ProfileOf(p tlsprofile.Profile) *Profile {
	out := &Profile{Name: p.Name, Versions: []string{}, Suites: []string{}, Groups: append([]string{}, p.Groups...)}
	for _, v := range p.Versions {
		out.Versions = append(out.Versions, tlsprofile.VersionName(v))
	}
	for _, ids := range [][]uint16{p.TLS12Suites, p.TLS13Suites} {
		for _, id := range ids {
			name := tlsprofile.HexID(id)
			if s, ok := tlsprofile.SuiteByID(id); ok {
				name = s.IANA
			}
			out.Suites = append(out.Suites, name)
		}
	}
	return out
}

// SetResult records a transport error and the response's diagnostics.
func (t *Target) SetResult(err error, diags sdk.Diagnostics, pol *policy.Policy) {
	idx := -1
	if pt, ok := pol.Target(t.Name); ok {
		idx = pt.Index
	}
	for _, d := range diags {
		dr := Diagnostic{Severity: d.Severity.String(), Source: d.Source.String(), Code: d.Code, Summary: d.Summary,
			Detail: d.Detail, Attribute: d.Attribute.String()}
		if d.Source == sdk.SourceConfig && len(d.Attribute) > 0 && idx >= 0 {
			pe := pol.DiagnosticError(idx, d)
			dr.Location = fmt.Sprintf("%s:%d:%d", pe.File, pe.Pos.Line, pe.Pos.Column)
		}
		t.Diagnostics = append(t.Diagnostics, dr)
	}
	if err != nil {
		t.Status, t.Error = "error", err.Error()
		var en *engine.Error
		t.ConfigError = errors.As(err, &en) && en.Kind == engine.KindConfig
		return
	}
	if diags.HasError() {
		t.Status = "error"
		t.ConfigError = true
		for _, d := range diags {
			if d.Severity == sdk.Error && d.Source != sdk.SourceConfig {
				t.ConfigError = false
			}
		}
		var msgs []string
		for _, d := range diags {
			if d.Severity == sdk.Error {
				prefix := map[sdk.Source]string{sdk.SourceTarget: "target: ", sdk.SourceConfig: "config: ", sdk.SourcePlugin: "plugin: "}[d.Source]
				msgs = append(msgs, prefix+d.Error())
			}
		}
		t.Error = strings.Join(msgs, "; ")
	}
}

// Pending counts the target's changes that are not no-ops.
func (t *Target) Pending() int {
	n := 0
	for _, c := range t.Changes {
		if c.Action != string(sdk.NoOp) {
			n++
		}
	}
	return n
}

// PendingChanges counts every target's pending changes.
func (r *Run) PendingChanges() int {
	n := 0
	for _, t := range r.Targets {
		n += t.Pending()
	}
	return n
}

// Failed: some target ended in error.
func (r *Run) Failed() bool { return r.TargetErrors() > 0 }

// FailingAtOrAbove counts failing checks of at least severity sev.
func (r *Run) FailingAtOrAbove(sev checks.Severity) int {
	n := 0
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			s, _ := checks.ParseSeverity(c.Severity)
			if c.Status == checks.Fail.String() && s >= sev {
				n++
			}
		}
	}
	return n
}

// TargetErrors counts targets that failed as a whole (status error).
func (r *Run) TargetErrors() int {
	n := 0
	for _, t := range r.Targets {
		if t.Status == "error" {
			n++
		}
	}
	return n
}

// Checks converts a plugin's checks.
func Checks(in []sdk.Check) []Check {
	out := make([]Check, 0, len(in))
	for _, c := range in {
		refs := c.References
		if refs == nil {
			refs = []string{}
		}
		out = append(out, Check{ID: c.ID, Status: c.Status.String(), Severity: c.Severity.String(), Title: c.Title,
			Subject: c.Subject, Evidence: c.Evidence, Remediation: c.Remediation, References: refs,
			Inconclusive: c.Inconclusive, ConfigurationOnly: c.ConfigurationOnly})
	}
	return out
}

// Changes converts a plan's changes; sensitive values are dropped.
func Changes(in []sdk.Change) []Change {
	out := make([]Change, 0, len(in))
	for _, c := range in {
		cr := Change{Resource: c.Resource, Action: string(c.Action), Sensitive: c.Sensitive,
			RequiresRestart: c.RequiresRestart, Description: c.Description}
		if !c.Sensitive {
			cr.Before, cr.After = c.Before, c.After
		}
		out = append(out, cr)
	}
	return out
}

// Artifacts converts rendered artifacts; sensitive and binary content is
// dropped.
func Artifacts(in []sdk.Artifact) []Artifact {
	out := make([]Artifact, 0, len(in))
	for _, a := range in {
		ar := Artifact{Path: a.Path, Mode: fmt.Sprintf("%04o", a.Mode), Size: len(a.Content),
			Sensitive: Sensitive(a), Description: a.Description, Binary: !IsText(a.Content)}
		if !ar.Sensitive && !ar.Binary {
			ar.Content = string(a.Content)
		}
		out = append(out, ar)
	}
	return out
}

// Sensitive: what the plugin marked so, and whatever holds a private key
// although the plugin forgot to mark it (keys are never printed).
func Sensitive(a sdk.Artifact) bool {
	return a.Sensitive || privateKeyPEM.Match(a.Content)
}

var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

// IsText: valid UTF-8 without control characters other than tab, newline
// and carriage return — what is safe to print to a terminal. PKCS#12 and
// JKS stores are not, nor is text carrying terminal escape sequences.
func IsText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Limits on what a plugin's endpoint scans may hold. The scans only
// describe (checks judge), but they become dashboard rows and metric
// labels: a plugin is another process, and its data is not taken on trust.
const (
	maxEndpoints = 256
	maxVersions  = 16
	maxSuites    = 512
	maxGroups    = 128
	maxChain     = 16
	maxText      = 2048
)

// outcomes a scan may report; anything else is read as inconclusive.
var outcomes = map[string]bool{"accepted": true, "refused": true, "inconclusive": true}

// Endpoints converts a plugin's endpoint scans and says what was wrong with
// them: an unknown outcome becomes "inconclusive" (never a refusal or an
// acceptance nobody observed), a negative count 0, and lists beyond the
// limits are cut.
func Endpoints(in []sdk.EndpointScan) ([]Endpoint, []string) {
	var problems []string
	if len(in) > maxEndpoints {
		problems = append(problems, fmt.Sprintf("%d endpoint scans, only the first %d kept", len(in), maxEndpoints))
		in = in[:maxEndpoints]
	}
	outcome := func(what, v string, empty bool) string {
		if (empty && v == "") || outcomes[v] {
			return v
		}
		problems = append(problems, fmt.Sprintf("%s: unknown outcome %q, read as inconclusive", what, clipText(v)))
		return "inconclusive"
	}
	out := make([]Endpoint, 0, len(in))
	for _, e := range in {
		where := clipText(e.Address)
		if where == "" {
			where = clipText(e.Name)
		}
		ep := Endpoint{Name: clipText(e.Name), Address: clipText(e.Address), Dialect: clipText(e.Dialect), Error: clipText(e.Error), Versions: []Version{}, Suites: []Suite{},
			Groups: []string{}, GroupsIncomplete: clipText(e.GroupsIncomplete), Chain: []ChainCert{},
			TrustChecked: e.TrustChecked, TrustError: clipText(e.TrustError), ClientCertRequested: e.ClientCertRequested,
			NoClientCert: outcome(where+" session without a client certificate", e.NoClientCert, true),
			Plaintext:    outcome(where+" plaintext session", e.Plaintext, true), Inconclusive: e.Inconclusive}
		if ep.Inconclusive < 0 {
			problems = append(problems, fmt.Sprintf("%s: negative inconclusive count %d", where, e.Inconclusive))
			ep.Inconclusive = 0
		}
		versions, suites, groups, chain := e.Versions, e.Suites, e.Groups, e.ChainDER
		for _, c := range []struct {
			what string
			n    int
			max  int
		}{{"versions", len(versions), maxVersions}, {"suites", len(suites), maxSuites}, {"groups", len(groups), maxGroups}, {"certificates", len(chain), maxChain}} {
			if c.n > c.max {
				problems = append(problems, fmt.Sprintf("%s: %d %s, only the first %d kept", where, c.n, c.what, c.max))
			}
		}
		versions, suites, groups, chain = versions[:min(len(versions), maxVersions)], suites[:min(len(suites), maxSuites)], groups[:min(len(groups), maxGroups)], chain[:min(len(chain), maxChain)]
		for _, v := range versions {
			ep.Versions = append(ep.Versions, Version{Version: clipText(v.Version), Outcome: outcome(where+" "+clipText(v.Version), v.Outcome, false),
				Evidence: clipText(v.Evidence), SuitesIncomplete: clipText(v.SuitesIncomplete)})
		}
		for _, s := range suites {
			ep.Suites = append(ep.Suites, Suite{Version: clipText(s.Version), ID: tlsprofile.HexID(s.ID), Name: clipText(s.Name)})
		}
		for _, g := range groups {
			ep.Groups = append(ep.Groups, clipText(g))
		}
		for _, der := range chain {
			ep.Chain = append(ep.Chain, ChainCertOf(der))
		}
		out = append(out, ep)
	}
	return out, problems
}

// clipText cuts plugin-sent text to maxText bytes (on a rune boundary).
func clipText(s string) string {
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ChainCertOf describes one DER certificate.
func ChainCertOf(der []byte) ChainCert {
	sum := sha256.Sum256(der)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return ChainCert{SHA256: hex.EncodeToString(sum[:]), Unparsable: err.Error()}
	}
	return ChainCertFrom(cert)
}

// ChainCertFrom describes a parsed certificate.
func ChainCertFrom(cert *x509.Certificate) ChainCert {
	sum := sha256.Sum256(cert.Raw)
	c := ChainCert{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), Serial: fmt.Sprintf("%x", cert.SerialNumber),
		SHA256: hex.EncodeToString(sum[:]), NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(),
		DNSNames: cert.DNSNames, Key: probe.KeyDescription(cert.PublicKey), SignatureAlgorithm: cert.SignatureAlgorithm.String()}
	for _, ip := range cert.IPAddresses {
		c.IPAddresses = append(c.IPAddresses, ip.String())
	}
	return c
}
