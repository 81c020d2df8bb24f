package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// managed are the settings harden reads and may change; their values
// before an apply go into its journal (State.Data), so a killed run can be
// rolled back with one CONFIG SET.
var managed = []string{"tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-auth-clients", "tls-protocols",
	"tls-ciphers", "tls-ciphersuites", "tls-prefer-server-ciphers", "tls-port", "port"}

// step is one change apply makes and how to undo it. A step without
// changes is a gate (the new TLS login) that changes nothing itself.
type step struct {
	phase   string
	changes []sdk.Change
	apply   func(context.Context) error
	undo    func(context.Context) error
}

// plan is the live state read and the steps that bring it to the policy.
type plan struct {
	t      *target
	q      sdk.RequestContext
	c      *conn
	config map[string]string
	// owner is cert_dir's: the files are written as that user.
	owner os.FileInfo
	steps []step
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
	if len(q.Certificates.CABundlePEM) == 0 {
		return fmt.Errorf("the policy gives target %s no CA bundle: harden could not verify the new TLS port before closing the plaintext one", t.name)
	}
	// Files that differ from what the policy wants.
	var writes []file
	var changes []sdk.Change
	for _, f := range t.files(q) {
		old, err := sdk.ReadFile(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			changes = append(changes, fileChange(f, sdk.Create))
		case err != nil:
			return fmt.Errorf("read %s: %w", f.path, err)
		case !bytes.Equal(old, f.data):
			changes = append(changes, fileChange(f, sdk.Update))
		default:
			continue
		}
		writes = append(writes, f)
	}
	tlsOn := p.config["tls-port"] != "0"
	if len(writes) > 0 {
		p.steps = append(p.steps, step{phase: "files", changes: changes,
			apply: func(context.Context) error {
				for _, f := range writes {
					if err := p.journal.Replace(f.path, f.data, os.FileMode(f.mode), p.owner); err != nil {
						return err
					}
				}
				return nil
			},
			undo: func(ctx context.Context) error {
				if errs := p.journal.Restore(); len(errs) > 0 {
					return errors.Join(errs...)
				}
				if !tlsOn {
					return nil
				}
				// The server holds the new certificate in memory: setting the
				// paths again reloads the restored files.
				return configSet(ctx, p.c, p.old("tls-cert-file", "tls-key-file", "tls-ca-cert-file"))
			}})
	}
	// tls-* in one CONFIG SET; again when only the files changed (a
	// running TLS port reloads them).
	want := t.tlsSettings(q)
	if diff := p.differing(want); len(diff) > 0 || (len(writes) > 0 && tlsOn) {
		var cs []sdk.Change
		for _, s := range diff {
			cs = append(cs, sdk.Change{Resource: "config " + s.name, Action: sdk.Update, Before: p.config[s.name], After: s.value})
		}
		if len(diff) == 0 {
			cs = append(cs, sdk.Change{Resource: "config tls-cert-file", Action: sdk.Update, Before: p.config["tls-cert-file"], After: t.certFile(),
				Description: "set again: the running TLS port reloads the new certificate files"})
		}
		p.steps = append(p.steps, p.setStep("tls-settings", cs, want))
	}
	ports := t.portSettings()
	if d := p.differing(ports[:1]); len(d) > 0 {
		p.steps = append(p.steps, p.setStep("tls-port", []sdk.Change{{Resource: "config tls-port", Action: sdk.Update,
			Before: p.config["tls-port"], After: d[0].value, Description: "opens the TLS port"}}, d))
	}
	closing := len(ports) > 1 && len(p.differing(ports[1:])) > 0
	if len(p.steps) > 0 || closing {
		// The gate: never close the plaintext port, nor keep new settings,
		// unless a NEW TLS session verified with the policy's CA logs in.
		p.steps = append(p.steps, step{phase: "tls-login", apply: p.checkLogin})
	}
	if closing {
		p.steps = append(p.steps, p.setStep("plaintext-closed", []sdk.Change{{Resource: "config port", Action: sdk.Update,
			Before: p.config["port"], After: "0", Description: "closes the plaintext port (TLS logins proven first)"}}, ports[1:]))
	}
	if t.spec.ConfigFile != "" && len(p.steps) > 0 {
		p.steps = append(p.steps, step{phase: "rewrite",
			changes: []sdk.Change{{Resource: "file " + t.spec.ConfigFile, Action: sdk.Update, After: "CONFIG REWRITE",
				Description: "persists the settings in redis.conf"}},
			apply: func(ctx context.Context) error { _, err := p.c.do(ctx, "CONFIG", "REWRITE"); return err }})
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
func (p *plan) setStep(phase string, cs []sdk.Change, want []setting) step {
	names := make([]string, len(want))
	for i, s := range want {
		names[i] = s.name
	}
	return step{phase: phase, changes: cs,
		apply: func(ctx context.Context) error { return configSet(ctx, p.c, want) },
		undo:  func(ctx context.Context) error { return configSet(ctx, p.c, p.old(names...)) }}
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

func fileChange(f file, a sdk.Action) sdk.Change {
	c := sdk.Change{Resource: "file " + f.path, Action: a, After: fmt.Sprintf("%s, mode %04o", f.description, f.mode), Sensitive: f.sensitive}
	if f.path != "" && strings.HasSuffix(f.path, "openssl.cnf") {
		c.RequiresRestart = true
	}
	return c
}

// token fingerprints the planned changes and a killed run's notice.
func token(steps []step, notice string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", notice)
	for _, s := range steps {
		for _, c := range s.changes {
			fmt.Fprintf(h, "%s|%s|%s|%s\n", c.Resource, c.Action, c.Before, c.After)
		}
	}
	return h.Sum(nil)
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

// Plan lists the changes apply would make.
func (redisTLS) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	notice := journalNotice(t, &r.Diagnostics)
	p, err := readPlan(ctx, q.RequestContext, t)
	if err != nil {
		r.Diagnostics.AddTargetError("redis.plan", "cannot read redis's state", err)
		return
	}
	defer p.c.Close()
	for _, s := range p.steps {
		r.Changes = append(r.Changes, s.changes...)
	}
	r.PlanToken = token(p.steps, notice)
	transientWarning(t, &r.Diagnostics)
}

// journalNotice warns about a killed or running apply; it is part of the
// plan token (a plan made before the interruption is stale).
func journalNotice(t *target, d *sdk.Diagnostics) string {
	jp, lp, err := t.journalPaths()
	if err != nil {
		return ""
	}
	notice, running, err := applykit.Notice(jp, lp)
	switch {
	case err != nil:
		d.AddWarning("cannot read the apply journal of "+t.name, err.Error())
	case running:
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "redis.apply.locked", Summary: notice})
	case notice != "":
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "redis.apply.interrupted",
			Summary: notice + "; the next apply rolls it back first"})
	}
	return notice
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

// undoTimeout bounds one undo (run on a context the operator's Ctrl-C does
// not cancel: the undo is what Ctrl-C asked for).
const undoTimeout = 30 * time.Second

// transientWarning: without config_file nothing persists the settings.
func transientWarning(t *target, d *sdk.Diagnostics) {
	if t.spec.ConfigFile == "" {
		d.AddWarning("spec.config_file is not set: the applied settings last until redis restarts",
			"name the redis.conf redis-server was started with; apply then persists them with CONFIG REWRITE")
	}
}
