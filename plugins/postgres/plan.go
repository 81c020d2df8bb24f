package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// fileSpec is a file apply writes into the server's directory.
type fileSpec struct {
	Path      string
	Content   []byte
	Mode      uint32
	Sensitive bool
}

// desiredState is what the server should look like.
type desiredState struct {
	Settings []setting
	HBA      string
	// Ident is the desired pg_ident.conf; empty: leave the live one alone.
	Ident string
	Files []fileSpec
}

func computeDesired(q sdk.RequestContext, s spec, l *liveState) (desiredState, error) {
	paths := newCertPaths(l.DataDir, s.certDir())
	withCA := len(q.Certificates.CABundlePEM) > 0
	withCRL := len(q.Certificates.CRLPEM) > 0
	d := desiredState{Settings: desiredSettings(l.Major, q.Policy.Profile, paths, withCA, withCRL)}
	_, includes, _ := parseHBA(l.HBAText)
	var err error
	if d.HBA, err = s.hbaFor(q.Policy.InMTLSScope(q.Target.Name), localRules(l.HBAText), includes...); err != nil {
		return d, err
	}
	if len(s.IdentMaps) > 0 {
		if d.Ident, err = identText(s.IdentMaps); err != nil {
			return d, err
		}
	}
	d.Files = []fileSpec{
		{Path: paths.Cert, Content: q.Certificates.ChainPEM, Mode: 0o644},
		{Path: paths.Key, Content: q.Certificates.KeyPEM, Mode: 0o600, Sensitive: true},
	}
	if withCA {
		d.Files = append(d.Files, fileSpec{Path: paths.CA, Content: q.Certificates.CABundlePEM, Mode: 0o644})
	}
	if withCRL {
		d.Files = append(d.Files, fileSpec{Path: paths.CRL, Content: q.Certificates.CRLPEM, Mode: 0o644})
	}
	return d, nil
}

// materialSettings name certificate files: a change to one of them (or to
// a file d.Files holds: certificate, key, CA, CRL) is certificate material.
var materialSettings = []string{"ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file"}

// changes lists what apply would do, in the order it does it.
func changes(l *liveState, d desiredState) []sdk.Change {
	var out []sdk.Change
	for _, f := range d.Files {
		old, exists := l.Files[f.Path]
		switch {
		case !exists:
			out = append(out, sdk.Change{Resource: "file:" + f.Path, Action: sdk.Create, After: fmt.Sprintf("%d bytes, mode %04o", len(f.Content), f.Mode), Sensitive: f.Sensitive, CertificateMaterial: true})
		case !bytes.Equal(old, f.Content):
			out = append(out, sdk.Change{Resource: "file:" + f.Path, Action: sdk.Update, Before: fmt.Sprintf("%d bytes", len(old)), After: fmt.Sprintf("%d bytes", len(f.Content)), Sensitive: f.Sensitive, CertificateMaterial: true})
		}
	}
	if normalizeHBA(l.HBAText) != normalizeHBA(d.HBA) {
		out = append(out, sdk.Change{Resource: "pg_hba.conf:" + l.HBAFile, Action: sdk.Update, Before: summarizeHBA(l.HBAText), After: summarizeHBA(d.HBA),
			Description: "client authentication rules"})
	}
	if d.Ident != "" && normalizeHBA(l.IdentText) != normalizeHBA(d.Ident) {
		out = append(out, sdk.Change{Resource: "pg_ident.conf:" + l.IdentFile, Action: sdk.Update, Description: "certificate name to role maps",
			Before: strings.Join(strings.Split(normalizeHBA(l.IdentText), "\n"), " | "), After: strings.Join(strings.Split(normalizeHBA(d.Ident), "\n"), " | ")})
	}
	for _, s := range d.Settings {
		cur, ok := l.Settings[s.Name]
		if !ok {
			continue // parameter unknown to this server version
		}
		if cur.Value != s.Value {
			out = append(out, sdk.Change{Resource: "setting:" + s.Name, Action: sdk.Update, Before: cur.Value, After: s.Value,
				RequiresRestart: cur.Context == "postmaster", CertificateMaterial: slices.Contains(materialSettings, s.Name)})
		}
	}
	return out
}

// summarizeHBA shows the rule lines, compactly, for plan output.
func summarizeHBA(text string) string {
	rules, _, err := parseHBA(text)
	if err != nil {
		return "unparseable: " + err.Error()
	}
	lines := make([]string, 0, len(rules))
	for _, r := range rules {
		lines = append(lines, r.Line())
	}
	return strings.Join(lines, " | ")
}

// Plan reads the live server and lists the changes apply would make.
func (postgres) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	c, s, db, ok := openManaged(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	defer db.Close(context.Background())
	l, ok := readLiveDiag(ctx, db, c, s, &r.Diagnostics)
	if !ok {
		return
	}
	d, err := computeDesired(q.RequestContext, s, l)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec"}, "a value cannot be written to the server's files", err.Error())
		return
	}
	r.Changes = changes(l, d)
	legacyFiles(l, false, &r.Diagnostics)
	journal, lock, err := clusterJournal(ctx, db, l.DataDir)
	if err != nil {
		// E.g. a role without pg_control_system: the plan stands, but it
		// must not look like "nothing interrupted".
		r.PlanToken = l.fingerprint(nil)
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "postgres.apply.journal",
			Summary: "cannot tell whether an apply of this cluster was interrupted", Detail: err.Error()})
		return
	}
	j, _ := applykit.Open(journal) // an unreadable one: planJournal says so
	r.PlanToken = l.fingerprint(j)
	planJournal(journal, lock, r)
}

// openManaged decodes the target, requires its server certificate and
// opens the management connection (plan and apply).
func openManaged(ctx context.Context, q sdk.RequestContext, d *sdk.Diagnostics) (connection, spec, *pgx.Conn, bool) {
	c, s, ok := decodeAll(q, d)
	if !ok || !haveServerCert(q, d) {
		return c, s, nil, false
	}
	db, err := connect(ctx, c, q)
	if err != nil {
		d.AddTargetError("postgres.connect", "cannot connect to PostgreSQL at "+c.address(), err)
		return c, s, nil, false
	}
	return c, s, db, true
}

// haveServerCert reports (as a config diagnostic) a target without a
// server certificate: plan and apply need one.
func haveServerCert(q sdk.RequestContext, d *sdk.Diagnostics) bool {
	if len(q.Certificates.ChainPEM) == 0 || len(q.Certificates.KeyPEM) == 0 {
		d.AddAttributeError(sdk.Path{"certificate"}, "no server certificate for this target", "set certificate.cert_file/key_file or certificates.source: vault-pki")
		return false
	}
	return true
}

// readLiveDiag reads the live state, reporting failure as a target error.
func readLiveDiag(ctx context.Context, db *pgx.Conn, c connection, s spec, d *sdk.Diagnostics) (*liveState, bool) {
	l, err := readLive(ctx, db, c, func(dd string) certPaths { return newCertPaths(dd, s.certDir()) })
	if err != nil {
		d.AddTargetError("postgres.read", "cannot read the server's state", err)
		return nil, false
	}
	return l, true
}

func decodeAll(q sdk.RequestContext, d *sdk.Diagnostics) (connection, spec, bool) {
	return sdk.Decode[connection, spec](q.Target, d)
}
