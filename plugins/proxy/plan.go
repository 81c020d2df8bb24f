package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// plan is what differs between the files on disk and the policy, and the
// steps that change them: every file harden owns (backed up in the
// journal, then replaced atomically), the proxy's own test of the new
// files, the reload, and the gate — fresh handshakes on the front that
// serve the new certificate.
type plan struct {
	t     *target
	q     sdk.RequestContext
	files []file
	steps []applykit.Step
	// digests are each file's path and sha256 before and as wanted: the
	// plan token covers what the files hold.
	digests []string
	journal *applykit.Journal
	// reloaded: the reload step ran (or started), so a rollback reloads
	// the restored files.
	reloaded bool
}

// readPlan reads the files harden owns and lists the steps.
func readPlan(q sdk.RequestContext, t *target) (*plan, error) {
	files, err := t.files(q)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(t.spec.CertDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("cert_dir %s: %w (create it where the proxy can read: harden writes the front's certificate, key and CA files there)", t.spec.CertDir, err)
	}
	p := &plan{t: t, q: q, files: files}
	for _, f := range files {
		old, err := sdk.ReadFile(f.path)
		var ch sdk.Change
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ch = fileChange(f, sdk.Create, nil)
			p.digests = append(p.digests, f.path, "absent", digest(f.data))
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", f.path, err)
		case !bytes.Equal(old, f.data):
			ch = fileChange(f, sdk.Update, old)
			p.digests = append(p.digests, f.path, digest(old), digest(f.data))
		default:
			p.digests = append(p.digests, f.path, digest(old), digest(f.data))
			continue
		}
		p.steps = append(p.steps, applykit.Step{Change: ch, Phase: "file-" + strings.TrimPrefix(f.artifact, "certs/"),
			Apply: func(context.Context) error { return p.journal.Replace(f.path, f.data, os.FileMode(f.mode), nil) },
			Undo:  func(context.Context) error { return p.journal.RestoreFile(f.path) }})
	}
	if len(p.steps) == 0 {
		return p, nil
	}
	kind := t.flavor.kind()
	// A renewal changes only certificate material: so does its reload
	// (harden rotate pushes such plans and refuses any other).
	certsOnly := true
	for _, st := range p.steps {
		certsOnly = certsOnly && st.Change.CertificateMaterial
	}
	p.steps = append(p.steps,
		applykit.Step{Phase: "test", Apply: func(ctx context.Context) error { return t.flavor.test(ctx, t) }},
		applykit.Step{Phase: "reload", Change: sdk.Change{Resource: kind + " reload", Action: sdk.Update, After: "running with the new files", Description: reloadDescription(t),
			CertificateMaterial: certsOnly},
			Apply: func(ctx context.Context) error { p.reloaded = true; return t.flavor.reload(ctx, t) }},
		applykit.Step{Phase: "served", Apply: p.served})
	return p, nil
}

func reloadDescription(t *target) string {
	switch {
	case len(t.conn.ReloadCommand) > 0:
		return "reload_command, after " + t.flavor.kind() + "'s own test of the new files; then fresh handshakes on the front must serve the new certificate (else everything is restored and reloaded)"
	case t.conn.Kind == "nginx":
		return "SIGHUP to the master (pid_file), as nginx -s reload, after nginx -t of the new files; then new workers and fresh handshakes on the front serving the new certificate (else everything is restored and reloaded)"
	}
	return "reload after " + t.flavor.kind() + "'s own test of the new files; then fresh handshakes on the front must serve the new certificate (else everything is restored and reloaded)"
}

// Gate of the served step: this many fresh handshakes in a row must show
// the new leaf, within servedWait.
var (
	servedInARow = 3
	servedWait   = 15 * time.Second
)

// served is the gate after the reload: fresh, sequential TLS handshakes
// on the front (each its own connection, never resumed) until servedInARow
// in a row present the policy's leaf certificate. A front that keeps
// serving another certificate — the include not loaded by the running
// proxy, a reload that did not take — fails the step, and the run is
// rolled back.
func (p *plan) served(ctx context.Context) error {
	want, err := leafOf(p.q.Certificates.ChainPEM)
	if err != nil {
		return err
	}
	target, _, err := probe.ForRequest(p.q, probe.TLS)
	if err != nil {
		return err
	}
	target.Address, target.ServerName = p.t.conn.Front, p.t.frontName()
	ctx, cancel := context.WithTimeout(ctx, servedWait)
	defer cancel()
	inARow, last := 0, ""
	for {
		l := probe.Served(ctx, target, "front", 1, probe.Options{Timeout: 2 * time.Second})
		switch {
		case l.Error != "":
			last = l.Error
			inARow = 0
		case len(l.Handshakes) == 1:
			h := l.Handshakes[0]
			got, err := leafOf(h.ChainPEM)
			switch {
			case err != nil:
				last, inARow = fmt.Sprintf("%s: %s", h.Outcome, h.Evidence), 0
			case got.Equal(want):
				inARow++
			default:
				last, inARow = fmt.Sprintf("serial %s (%q) instead of the new %s", got.SerialNumber.Text(16), got.Subject.CommonName, want.SerialNumber.Text(16)), 0
			}
		}
		if inARow >= servedInARow {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the front %s did not serve the new certificate (serial %s) on %d fresh handshakes in a row within %s; last seen: %s (does the configuration the running proxy loaded include %s, and did the reload take?)",
				p.t.conn.Front, want.SerialNumber.Text(16), servedInARow, servedWait, last, p.t.spec.IncludeFile)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rollback runs after the steps' undos restored the files: the proxy
// reloads them when this run had reloaded it.
func (p *plan) rollback(ctx context.Context) error {
	if !p.reloaded {
		return nil
	}
	if err := p.t.flavor.reload(ctx, p.t); err != nil {
		return fmt.Errorf("reload the restored files: %w", err)
	}
	return nil
}

// leafOf is the first certificate of a PEM chain.
func leafOf(chain []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(chain)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// fileChange describes writing f over old (nil: a new file). Of the key
// not even a digest is shown.
func fileChange(f file, a sdk.Action, old []byte) sdk.Change {
	c := sdk.Change{Resource: "file " + f.path, Action: a, After: fmt.Sprintf("%s, mode %04o", f.description, f.mode), Sensitive: f.sensitive,
		CertificateMaterial: f.certificate}
	switch {
	case f.sensitive && old != nil:
		c.Before = "present (content not shown)"
	case old != nil:
		c.Before = fmt.Sprintf("%d bytes, sha256 %s", len(old), digest(old)[:16])
	}
	if !f.sensitive {
		c.After += ", sha256 " + digest(f.data)[:16]
	}
	return c
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// token fingerprints the planned changes and the files' contents before
// and as wanted, and a killed run's notice.
func token(p *plan, notice string) []byte {
	parts := []string{notice}
	for _, s := range p.steps {
		c := s.Change
		parts = append(parts, s.Phase, c.Resource, string(c.Action), c.Before, c.After)
	}
	parts = append(parts, "files")
	parts = append(parts, p.digests...)
	return applykit.PlanToken(parts...)
}

// journalPaths: the journal and lock of this proxy's route (its
// configuration and the file harden owns identify it).
func (t *target) journalPaths() (string, string, error) {
	return applykit.TargetPaths("", "proxy", t.conn.Kind, t.conn.ConfigFile, t.spec.IncludeFile)
}

// allowed: the only files a proxy journal may name.
func (t *target) allowed(path string) bool {
	switch path {
	case t.certFile(), t.keyFile(), t.clientCAFile(), t.backendCAFile(), t.spec.IncludeFile, t.frontPEMFile():
		return true
	}
	return false
}

// notices is how plan and verify report this route's journal.
func (t *target) notices() applykit.Notices {
	jp, lp, _ := t.journalPaths()
	return applykit.Notices{Plugin: "proxy", Journal: jp, Lock: lp, Allow: t.allowed,
		PlanNext: "the next apply restores the files it had changed and reloads, then applies anew", VerifyDetail: "run harden apply: it rolls the killed run back, then applies anew"}
}

// Plan lists the files apply would write (and a killed run to roll back).
// The proxy's own test runs on the files as they are: a configuration
// that fails it before harden changes anything is refused here already.
func (proxyTLS) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if err := t.reloadPath(); err != nil {
		r.Diagnostics.AddTargetError("proxy.plan.reload_path", "apply would be refused", err)
		return
	}
	notice, ok := t.notices().Plan(r)
	if !ok {
		return
	}
	p, err := readPlan(q.RequestContext, t)
	if err != nil {
		r.Diagnostics.AddTargetError("proxy.plan", "cannot plan target "+t.name, err)
		return
	}
	if len(p.steps) > 0 && notice == "" {
		if err := t.flavor.test(ctx, t); err != nil {
			r.Diagnostics.AddTargetError("proxy.plan.config_invalid", "the proxy's configuration fails its own test before harden changes anything: apply would be refused", err)
			return
		}
	}
	for _, s := range p.steps {
		if s.Change.Resource != "" {
			r.Changes = append(r.Changes, s.Change)
		}
	}
	r.PlanToken = token(p, notice)
	skippedGroupsWarning(q.Policy.Profile, &r.Diagnostics)
}
