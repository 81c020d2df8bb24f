package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

// spec is the PostgreSQL target's spec block.
type spec struct {
	// HBA are the network rules, in order. Only hostssl lines; harden adds
	// hostnossl reject lines for IPv4 and IPv6.
	HBA []HBARule `json:"hba" jsonschema:"network rules in order; default: hostssl from 127.0.0.1 and ::1 with scram-sha-256"`
	// Local socket rules, kept as the policy says. Absent: apply keeps the
	// live file's local lines; render writes "local all all peer".
	Local []HBARule `json:"local" jsonschema:"local socket rules; default: keep the live file's"`
	// CertDir holds server.crt, server.key and root.crt (relative to the
	// data directory unless absolute). Default "harden".
	CertDir string `json:"cert_dir" jsonschema:"directory for server.crt/server.key/root.crt, relative to the data directory (default harden)"`
	// ServerVersion is the major version render targets (plan and apply
	// read the live server's). Default 15.
	ServerVersion int `json:"server_version" schema:"minimum=12,maximum=18" jsonschema:"major version for render (plan/apply read the live server's)"`
	// IdentMaps map certificate CNs (system user) to roles, for hba rules
	// with options {map: NAME}. Absent: apply leaves pg_ident.conf alone.
	IdentMaps []IdentMap `json:"ident_maps" jsonschema:"pg_ident.conf: certificate names to roles, for hba rules with options {map: NAME}"`
}

// IdentMap is one pg_ident.conf line.
type IdentMap struct {
	Map        string `json:"map" schema:"required,minLength=1"`
	SystemUser string `json:"system_user" schema:"required,minLength=1"`
	PGUser     string `json:"pg_user" schema:"required,minLength=1"`
}

// identText renders pg_ident.conf, every field encoded for its grammar
// (see hbagrammar.go).
func identText(maps []IdentMap) (string, error) {
	var b strings.Builder
	b.WriteString("# pg_ident.conf managed by harden: certificate names to roles.\n# MAPNAME SYSTEM-USERNAME PG-USERNAME\n")
	for i, m := range maps {
		var fields [3]string
		for j, v := range []string{m.Map, m.SystemUser, m.PGUser} {
			enc, err := encodeList(v, identField)
			if err != nil {
				return "", fmt.Errorf("ident_maps[%d].%s %w", i, identFieldNames[j], err)
			}
			fields[j] = enc
		}
		b.WriteString(strings.Join(fields[:], " ") + "\n")
	}
	return b.String(), nil
}

var identFieldNames = [3]string{"map", "system_user", "pg_user"}

// hbaFor renders pg_hba.conf for the policy: its local rules (when it has
// none: keep, the live file's, or the default) and its network rules, every
// policy value encoded for pg_hba's grammar.
func (s spec) hbaFor(mtls bool, keep []HBARule, includes ...string) (string, error) {
	local := keep
	if len(s.Local) > 0 {
		local = make([]HBARule, 0, len(s.Local))
		for _, r := range s.Local {
			r.Type = "local"
			local = append(local, r)
		}
		var err error
		if local, err = encodeRules(local); err != nil {
			return "", fmt.Errorf("spec.local: %w", err)
		}
	}
	if len(local) == 0 {
		local = defaultLocal
	}
	network, err := encodeRules(s.networkRules(mtls))
	if err != nil {
		return "", fmt.Errorf("spec.hba: %w", err)
	}
	return hbaText(local, network, includes...), nil
}

func (s spec) certDir() string {
	if s.CertDir == "" {
		return "harden"
	}
	return s.CertDir
}

// defaultHBA: TLS with SCRAM from loopback, when the policy lists no rules.
var defaultHBA = []HBARule{
	{Type: "hostssl", Database: "all", User: "all", Address: "127.0.0.1/32", Method: "scram-sha-256"},
	{Type: "hostssl", Database: "all", User: "all", Address: "::1/128", Method: "scram-sha-256"},
}

// networkRules returns the policy's hostssl rules, with client certificates
// required when the target is in the mTLS scope.
func (s spec) networkRules(mtls bool) []HBARule {
	rules := s.HBA
	if len(rules) == 0 {
		rules = defaultHBA
	}
	out := make([]HBARule, 0, len(rules))
	for _, r := range rules {
		r.Options = cloneMap(r.Options)
		if r.Type == "" {
			r.Type = "hostssl"
		}
		if mtls && r.Method != "cert" && r.Method != "reject" {
			r.Options["clientcert"] = "verify-full"
		}
		out = append(out, r)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// hbaText renders the whole pg_hba.conf; includes (directive lines, kept
// from the live file when their rules are compliant) come after the policy's
// rules, so the policy decides first.
func hbaText(local, network []HBARule, includes ...string) string {
	var b strings.Builder
	b.WriteString("# pg_hba.conf managed by harden: change the policy, not this file.\n")
	b.WriteString("# Local socket connections (kept as the policy says):\n")
	for _, r := range local {
		r.Type = "local"
		b.WriteString(r.Line() + "\n")
	}
	b.WriteString("# Network connections without TLS are refused, IPv4 and IPv6:\n")
	b.WriteString("hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n")
	b.WriteString("# Network connections over TLS:\n")
	for _, r := range network {
		b.WriteString(r.Line() + "\n")
	}
	if len(includes) > 0 {
		b.WriteString("# Kept from the live file (every included rule is TLS-only or a reject):\n")
		for _, inc := range includes {
			b.WriteString(inc + "\n")
		}
	}
	return b.String()
}

var defaultLocal = []HBARule{{Type: "local", Database: "all", User: "all", Method: "peer"}}

// Render is pure: the policy, the spec and the certificate material in,
// postgresql settings, pg_hba.conf and certificate files out.
func (postgres) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	_, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	major := s.ServerVersion
	if major == 0 {
		major = 15
	}
	hba, err := s.hbaFor(q.Policy.InMTLSScope(q.Target.Name), nil)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec"}, "a value cannot be written to pg_hba.conf", err.Error())
		return
	}
	ident, err := identText(s.IdentMaps)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec", "ident_maps"}, "a value cannot be written to pg_ident.conf", err.Error())
		return
	}
	// PostgreSQL expands no variables in ssl_*_file; it resolves relative
	// paths against the data directory. So the included file works as is
	// (a relative cert_dir stays relative, an absolute one absolute).
	paths := newCertPaths("", s.certDir())
	withCA := len(q.Certificates.CABundlePEM) > 0
	r.Artifacts = append(r.Artifacts,
		sdk.Artifact{Path: "postgresql.harden.conf", Content: []byte(confText(desiredSettings(major, q.Policy.Profile, paths, withCA, len(q.Certificates.CRLPEM) > 0))), Mode: 0o644,
			Description: "TLS settings for PostgreSQL " + itoa(major)},
		sdk.Artifact{Path: "pg_hba.conf", Content: []byte(hba), Mode: 0o600, Description: "client authentication: TLS only on the network"},
	)
	if len(s.IdentMaps) > 0 {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "pg_ident.conf", Content: []byte(ident), Mode: 0o600,
			Description: "certificate name to role maps"})
	}
	if len(q.Certificates.ChainPEM) > 0 {
		r.Artifacts = append(r.Artifacts,
			sdk.Artifact{Path: s.certDir() + "/server.crt", Content: q.Certificates.ChainPEM, Mode: 0o644},
			sdk.Artifact{Path: s.certDir() + "/server.key", Content: q.Certificates.KeyPEM, Mode: 0o600, Sensitive: true})
	}
	if withCA {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: s.certDir() + "/root.crt", Content: q.Certificates.CABundlePEM, Mode: 0o644,
			Description: "CA bundle for client certificates (ssl_ca_file)"})
	}
	if len(q.Certificates.CRLPEM) > 0 {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: s.certDir() + "/root.crl", Content: q.Certificates.CRLPEM, Mode: 0o644,
			Description: "revocation list for client certificates (ssl_crl_file)"})
	}
}
