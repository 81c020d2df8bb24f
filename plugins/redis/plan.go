package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// managed are the settings harden reads and may change; their values
// before an apply go into its journal (State.Data), so a killed run can be
// rolled back with one CONFIG SET.
var managed = []string{"tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-auth-clients", "tls-protocols",
	"tls-ciphers", "tls-ciphersuites", "tls-prefer-server-ciphers", "tls-port", "port"}

// plan is the live state read and the steps that bring it to the policy.
type plan struct {
	t      *target
	q      sdk.RequestContext
	c      *conn
	config map[string]string
	// owner is cert_dir's: the files are written as that user.
	owner os.FileInfo
	// tlsWasOn: the TLS port was open before this run.
	tlsWasOn bool
	steps    []applykit.Step
	// digests are each file's path and the sha256 of its content before
	// and as the policy wants it: the plan token covers what the files
	// hold, not only which of them change.
	digests []string
	// journal is set by apply before the first step.
	journal *applykit.Journal
}

// readPlan connects, reads the live settings and files and lists the steps.
// The caller closes p.c.
func readPlan(ctx context.Context, q sdk.RequestContext, t *target) (*plan, error) {
	c, err := t.manage(ctx, q)
	if err != nil {
		return nil, err
	}
	p := &plan{t: t, q: q, c: c}
	if p.config, err = configGet(ctx, c, managed...); err != nil {
		c.Close()
		return nil, err
	}
	if p.owner, err = os.Stat(t.spec.CertDir); err != nil || !p.owner.IsDir() {
		c.Close()
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("cert_dir %s: %w (create it, owned by the user redis runs as)", t.spec.CertDir, err)
	}
	if err := p.checkConfigFile(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := p.build(); err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

func (p *plan) build() error {
	t, q := p.t, p.q
	if len(q.Certificates.ChainPEM) == 0 || len(q.Certificates.KeyPEM) == 0 {
		return fmt.Errorf("the policy gives target %s no certificate and key: nothing to configure TLS with", t.name)
	}
	if q.Policy.InMTLSScope(t.name) && len(q.Certificates.ClientChainPEM) == 0 {
		return fmt.Errorf("target %s is in the policy's mTLS scope but the policy gives harden no client certificate (certificate.client_cert_file): after tls-auth-clients yes harden could not log in to prove TLS works", t.name)
	}
	if len(q.Certificates.CABundlePEM) == 0 {
		return fmt.Errorf("the policy gives target %s no CA bundle: harden could not verify the new TLS port before closing the plaintext one", t.name)
	}
	// Files that differ from what the policy wants, one step each: the
	// backup is recorded in the journal, then the file replaced atomically
	// as cert_dir's owner; undo restores it from the journal.
	certsWritten := false
	for _, f := range t.files(q) {
		old, err := sdk.ReadFile(f.path)
		var ch sdk.Change
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ch = fileChange(f, sdk.Create, nil)
			p.digests = append(p.digests, f.path, "absent", digest(f.data))
		case err != nil:
			return fmt.Errorf("read %s: %w", f.path, err)
		case !bytes.Equal(old, f.data):
			ch = fileChange(f, sdk.Update, old)
			p.digests = append(p.digests, f.path, digest(old), digest(f.data))
		default:
			p.digests = append(p.digests, f.path, digest(old), digest(f.data))
			continue
		}
		// openssl.cnf takes effect at redis's next start: nothing to reload.
		certsWritten = certsWritten || f.path != t.opensslFile()
		p.steps = append(p.steps, applykit.Step{Change: ch, Phase: "file-" + filepath.Base(f.path),
			Apply: func(context.Context) error { return p.journal.Replace(f.path, f.data, os.FileMode(f.mode), p.owner) },
			Undo:  func(context.Context) error { return p.journal.RestoreFile(f.path) }})
	}
	p.tlsWasOn = p.config["tls-port"] != "0"
	// tls-* in one CONFIG SET; again when only the files changed (a
	// running TLS port reloads them).
	want := t.tlsSettings(q)
	configChanged := false
	if diff := p.differing(want); len(diff) > 0 || (certsWritten && p.tlsWasOn) {
		configChanged = true
		ch := sdk.Change{Resource: "config tls-*", Action: sdk.Update, Before: p.listed(p.old(names(diff)...)), After: p.listed(diff),
			Description: "one CONFIG SET (all or nothing)"}
		if len(diff) == 0 {
			ch.Before, ch.After = "", "tls-cert-file, tls-key-file, tls-ca-cert-file set again"
			ch.Description = "the running TLS port reloads the new certificate files"
			ch.CertificateMaterial = true
		}
		p.steps = append(p.steps, p.setStep("tls-settings", ch, want))
	}
	ports := t.portSettings()
	if d := p.differing(ports[:1]); len(d) > 0 {
		configChanged = true
		st := p.setStep("tls-port", sdk.Change{Resource: "config tls-port", Action: sdk.Update,
			Before: p.config["tls-port"], After: d[0].value, Description: "opens the TLS port"}, d)
		if !p.tlsWasOn && p.config["port"] != "0" {
			undo := st.Undo
			st.Undo = func(ctx context.Context) error {
				if err := p.plaintextOpen(ctx); err != nil {
					return err
				}
				return undo(ctx)
			}
		}
		p.steps = append(p.steps, st)
	}
	closing := len(ports) > 1 && len(p.differing(ports[1:])) > 0
	if configChanged || closing {
		// The gate: never close the plaintext port, nor keep new settings,
		// unless a NEW TLS session verified with the policy's CA logs in.
		p.steps = append(p.steps, applykit.Step{Phase: "tls-login", Apply: p.checkLogin})
	}
	if closing {
		p.steps = append(p.steps, p.setStep("plaintext-closed", sdk.Change{Resource: "config port", Action: sdk.Update,
			Before: p.config["port"], After: "0", Description: "closes the plaintext port (TLS logins proven first)"}, ports[1:]))
	}
	if t.spec.ConfigFile != "" && (configChanged || closing) {
		p.steps = append(p.steps, applykit.Step{Phase: "rewrite",
			Change: sdk.Change{Resource: "file " + t.spec.ConfigFile, Action: sdk.Update, After: "CONFIG REWRITE",
				Description: "persists the settings in redis.conf"},
			Apply: func(ctx context.Context) error { _, err := p.c.do(ctx, "CONFIG", "REWRITE"); return err }})
	}
	return nil
}

// checkConfigFile: CONFIG REWRITE writes the file redis was started with,
// so spec.config_file must be that file (INFO server's config_file), or
// the settings would be persisted somewhere else — or nowhere.
func (p *plan) checkConfigFile(ctx context.Context) error {
	want := p.t.spec.ConfigFile
	if want == "" {
		return nil
	}
	v, err := p.c.do(ctx, "INFO", "server")
	if err != nil {
		return err
	}
	if v.kind != '$' || v.null {
		return fmt.Errorf("INFO server over %s: %w: answered %s", p.c.via, errProtocol, v.describe())
	}
	switch got, ok := infoField(v.str, "config_file"); {
	case !ok:
		return fmt.Errorf("INFO server over %s has no readable config_file field", p.c.via)
	case got == "":
		return fmt.Errorf("redis was started without a config file, so CONFIG REWRITE cannot persist the settings in %s: start it with %s", want, want)
	case got != want:
		return fmt.Errorf("redis was started with config file %s, not spec.config_file %s", got, want)
	}
	return nil
}

// infoField is one field of an INFO answer ("name:value" lines, "# Section"
// headers, CRLF or LF); not ok when missing or garbled.
func infoField(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && k == name {
			if strings.Contains(v, "\r") {
				return "", false // a CR inside a line is not what redis writes: garbled
			}
			return v, true
		}
	}
	return "", false
}

// setStep is a CONFIG SET of want; undo sets the values read before.
func (p *plan) setStep(phase string, ch sdk.Change, want []setting) applykit.Step {
	return applykit.Step{Phase: phase, Change: ch,
		Apply: func(ctx context.Context) error { return configSet(ctx, p.c, want) },
		Undo:  func(ctx context.Context) error { return configSet(ctx, p.c, p.old(names(want)...)) }}
}

// plaintextOpen guards the undo that closes the TLS port again when redis
// had a plaintext port before this run: redis must still report one
// (CONFIG GET port not 0), or closing TLS would leave it no TCP listener
// at all — the operator locked out, and without unix_socket harden too.
// That is the case when the undo of port 0 could not run (CONFIG SET port
// 0 took effect but its reply was lost). Refused, the TLS port stays open
// and the journal is kept for the next apply. A redis that had neither
// port before (reached over its Unix socket) is not guarded: closing TLS
// is going back to how it was.
func (p *plan) plaintextOpen(ctx context.Context) error {
	now, err := configGet(ctx, p.c, "port")
	if err != nil {
		return fmt.Errorf("the TLS port stays open: CONFIG GET port before closing it: %w", err)
	}
	if now["port"] == "0" {
		return fmt.Errorf("the TLS port stays open: redis reports port 0, so closing it would leave redis %s no TCP listener", p.t.conn.Address)
	}
	return nil
}

// reloadOld runs after a failed run's undos (StepOptions.Rollback): when
// TLS was on before, redis still holds the certificate it loaded during
// the run; setting the old paths again loads the restored files.
func (p *plan) reloadOld(ctx context.Context) error {
	if !p.tlsWasOn {
		return nil
	}
	return configSet(ctx, p.c, p.old("tls-cert-file", "tls-key-file", "tls-ca-cert-file"))
}

func names(ss []setting) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name
	}
	return out
}

// listed shows settings as plan does: name=value, one CONFIG SET.
func (p *plan) listed(ss []setting) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.name + "=" + quoteConf(s.value)
	}
	return strings.Join(parts, " ")
}

// old is the settings' values before the apply.
func (p *plan) old(names ...string) []setting {
	out := make([]setting, len(names))
	for i, n := range names {
		out[i] = setting{n, p.config[n]}
	}
	return out
}

func (p *plan) differing(want []setting) []setting {
	var out []setting
	for _, s := range want {
		if p.config[s.name] != s.value {
			out = append(out, s)
		}
	}
	return out
}

// checkLogin opens a new TLS session to the TLS port, verified with the
// policy's CA (with harden's client certificate under mTLS), logs in and
// PINGs. redis answers a new session with the settings just set.
func (p *plan) checkLogin(ctx context.Context) error {
	c, err := p.t.dialTLS(ctx, p.q)
	if err != nil {
		return fmt.Errorf("a new TLS session to %s verified with the policy's CA failed: %w", p.t.conn.Address, err)
	}
	defer c.Close()
	if _, err := p.t.login(ctx, c); err != nil {
		return fmt.Errorf("a new TLS login to %s failed: %w", p.t.conn.Address, err)
	}
	return nil
}

// fileChange describes writing f over old (nil: the file does not exist).
// The contents' sha256 are shown for the public files only: of a key file
// not even a digest leaves the plugin in a description (the plan token,
// itself a digest, covers it).
func fileChange(f file, a sdk.Action, old []byte) sdk.Change {
	// The files redis is given are its certificate, key and CA bundle, and
	// the OpenSSL configuration of the groups (not certificate material).
	c := sdk.Change{Resource: "file " + f.path, Action: a, After: fmt.Sprintf("%s, mode %04o", f.description, f.mode), Sensitive: f.sensitive,
		CertificateMaterial: !strings.HasSuffix(f.path, ".cnf")}
	switch {
	case f.sensitive && old != nil:
		c.Before = "present (content not shown)"
	case old != nil:
		c.Before = fmt.Sprintf("%d bytes, sha256 %s", len(old), digest(old)[:16])
	}
	if !f.sensitive {
		c.After += ", sha256 " + digest(f.data)[:16]
	}
	if f.path != "" && strings.HasSuffix(f.path, "openssl.cnf") {
		c.RequiresRestart = true
	}
	return c
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// token fingerprints the planned changes, the files' contents before and
// as wanted (a redis.crt replaced between plan and apply makes the plan
// stale, though the same files change) and a killed run's notice.
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

// journalPaths: the journal and lock for this redis (its TLS address and
// socket identify it), in harden's state directory.
func (t *target) journalPaths() (string, string, error) {
	return applykit.TargetPaths("", "redis", t.conn.Address, t.conn.UnixSocket)
}

// allowed: the only files a redis journal may name.
func (t *target) allowed(path string) bool {
	switch path {
	case t.certFile(), t.keyFile(), t.caFile(), t.opensslFile():
		return true
	}
	return false
}

// Plan lists the changes apply would make (and a killed run to roll back).
func (redisTLS) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	notice, ok := t.notices().Plan(r)
	if !ok {
		return
	}
	p, err := readPlan(ctx, q.RequestContext, t)
	if err != nil {
		r.Diagnostics.AddTargetError("redis.plan", "cannot read redis's state", err)
		return
	}
	defer p.c.Close()
	for _, s := range p.steps {
		if s.Change.Resource != "" {
			r.Changes = append(r.Changes, s.Change)
		}
	}
	r.PlanToken = token(p, notice)
	transientWarning(t, &r.Diagnostics)
}

// notices is how plan and verify report this redis's journal.
func (t *target) notices() applykit.Notices {
	jp, lp, _ := t.journalPaths()
	return applykit.Notices{Plugin: "redis", Journal: jp, Lock: lp, Allow: t.allowed,
		PlanNext: "the next apply rolls it back first, then applies anew", VerifyDetail: "run harden apply: it rolls the killed run back, then applies anew"}
}

// plaintextAddress is where the plaintext port is: connection's
// plaintext_address, else the TLS address's host with port (as redis
// reports it; "" or "0": none known).
func (t *target) plaintextAddress(port string) (string, error) {
	if t.conn.PlaintextAddress != "" {
		return t.conn.PlaintextAddress, nil
	}
	if port == "" || port == "0" {
		return "", errors.New("redis: no plaintext address known (set connection.plaintext_address)")
	}
	return net.JoinHostPort(t.host, port), nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// transientWarning: without config_file nothing persists the settings.
func transientWarning(t *target, d *sdk.Diagnostics) {
	if t.spec.ConfigFile == "" {
		d.AddWarning("spec.config_file is not set: the applied settings last until redis restarts",
			"name the redis.conf redis-server was started with; apply then persists them with CONFIG REWRITE")
	}
}
