package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// The listener's plan and apply: the step, its refusals before any change,
// the restart, the unseal, the live verification and the rollback.

// listenerPlan is the listener's part of a plan: the step's data and,
// once apply has begun, the journal the file goes through.
type listenerPlan struct {
	q        sdk.RequestContext
	st       *settings
	spec     listenerSpec
	path     string
	rendered []byte // nil: only a restart is due
	mode     os.FileMode
	owner    os.FileInfo
	mtls     bool
	timeout  time.Duration
	journal  *applykit.Journal
	// d is the apply's diagnostics (verifyLive's warnings).
	d *sdk.Diagnostics
}

// listenerStepPhase is the journal phase of the listener step.
const listenerStepPhase = "listener"

// listenerRenderHook lets tests break the rendered file after it was
// validated (a Vault that refuses it must lead to a rollback).
var listenerRenderHook func([]byte) []byte

func (st *settings) listenerTimeout() time.Duration {
	if st.spec.Listener != nil {
		if d, err := time.ParseDuration(st.spec.Listener.RestartTimeout); err == nil && d > 0 {
			return d
		}
	}
	return 2 * time.Minute
}

// listenerSteps reads the listener file and Vault's seal and lists the
// listener step: the file rewritten and Vault restarted when a managed
// setting differs, a restart alone when the file holds the settings but
// the live listener does not serve them (a restart still due). Every
// refusal (a file harden cannot own, no unseal key for a Shamir-sealed
// Vault, harden's client certificate not accepted under mTLS) is an error
// on d before anything changed; ok false then.
func listenerSteps(ctx context.Context, q sdk.RequestContext, st *settings, cl *vault.Client, d *sdk.Diagnostics) ([]step, bool) {
	ls := st.spec.Listener
	if ls == nil {
		return nil, true
	}
	fail := func(summary string, err error) ([]step, bool) {
		d.AddTargetError("vaultpki.listener", summary+"; nothing was changed", err)
		return nil, false
	}
	path := filepath.Clean(ls.ConfigFile)
	if !filepath.IsAbs(path) {
		return fail("spec.listener.config_file refused", fmt.Errorf("target %s: spec.listener.config_file %s is not an absolute path", q.Target.Name, ls.ConfigFile))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail("cannot read Vault's listener file", fmt.Errorf("target %s: spec.listener.config_file: %w", q.Target.Name, err))
	}
	src, err := sdk.ReadFile(path)
	if err != nil {
		return fail("cannot read Vault's listener file", fmt.Errorf("target %s: spec.listener.config_file %s: %w", q.Target.Name, path, err))
	}
	lf, err := parseListener(path, src)
	if err != nil {
		return fail("Vault's listener file cannot be managed", err)
	}
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	if mtls {
		if err := checkClientCA(q, ls); err != nil {
			return fail("client certificate verification refused (harden would lock itself out)", err)
		}
	}
	want, managed, warnings, err := listenerWant(st.profile, mtls, ls.ClientCAFile)
	if err != nil {
		return fail("Vault's listener cannot meet the profile", fmt.Errorf("target %s: %w", q.Target.Name, err))
	}
	for _, w := range warnings {
		d.AddWarning("Vault's listener: "+w, "a limit of Vault's TLS settings, reported by verify's tls.* checks")
	}
	if err := checkListenerAddress(q.Target.Name, st.conn.Address, lf.values["address"]); err != nil {
		d.AddWarning("Vault's listener file may not be the listener harden probes", err.Error())
	}
	lp := &listenerPlan{q: q, st: st, spec: *ls, path: path, mode: fi.Mode().Perm(), owner: fi, mtls: mtls, timeout: st.listenerTimeout(), d: d}
	change := sdk.Change{Resource: "vault listener " + path}
	if lf.matches(want, managed) {
		// The file is right; is Vault serving it? A listener still on the
		// old settings needs the restart an earlier run did not make.
		due, why := restartDue(ctx, q, st)
		if len(due) == 0 {
			if why != "" {
				d.AddWarning("could not tell whether Vault serves its listener file's settings", why)
			}
			return nil, true
		}
		// Before names the failing checks only: the plan token must not
		// change with the probe's wording between plan and apply.
		change.Action, change.Before, change.After = sdk.Update, "Vault serves other TLS settings than "+path+" holds ("+strings.Join(ids(due), ", ")+" fail live)", "Vault restarted and unsealed"
		change.Description = "restart Vault (restart_command) so it loads the listener file, unseal it, verify the listener live; " + why
	} else {
		rendered, err := lf.render(listenerHeader(q.Target.Name, st.profile.Name), want, managed)
		if err != nil {
			return fail("cannot render Vault's listener file", fmt.Errorf("%s: %w", path, err))
		}
		// Parsed back: the written file is one harden can own again and
		// holds exactly what was wanted.
		back, err := parseListener(path, rendered)
		if err != nil || !back.matches(want, managed) || back.values["address"] != lf.values["address"] || back.values["tls_cert_file"] != lf.values["tls_cert_file"] {
			return fail("the rendered listener file does not parse back", fmt.Errorf("%s: %v", path, err))
		}
		if err := checkCertificatePair(back); err != nil {
			return fail("Vault's listener certificate cannot be loaded", fmt.Errorf("%s: %w", path, err))
		}
		lp.rendered = rendered
		if listenerRenderHook != nil {
			lp.rendered = listenerRenderHook(rendered)
		}
		sum := sha256.Sum256(src)
		change.Action = sdk.Update
		change.Before = lf.summary(managed) + " (sha256 " + hex.EncodeToString(sum[:6]) + ")"
		change.After = summarySettings(want)
		change.Description = "write the listener file (backup in the journal), restart Vault (restart_command: SIGHUP reloads only the certificate), unseal it, verify the listener live; Vault's certificate stays the operator's"
	}
	if err := lp.checkUnsealable(ctx, cl); err != nil {
		return fail("Vault would stay sealed after the restart", err)
	}
	st.listener = lp
	return []step{{change: change, needs: map[string]string{}, phase: listenerStepPhase, apply: lp.apply, undo: lp.undo}}, true
}

func summarySettings(want []setting) string {
	parts := make([]string, len(want))
	for i, s := range want {
		parts[i] = s.key + "=" + s.text()
	}
	return strings.Join(parts, " ")
}

// checkListenerAddress warns when the file's port is not the port of
// connection.address (harden would probe another listener).
func checkListenerAddress(target, address, listen string) error {
	u, err := url.Parse(address)
	if err != nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	if _, lport, err := net.SplitHostPort(listen); err == nil && lport != port {
		return fmt.Errorf("target %s: the listener file listens on port %s, connection.address %s is port %s", target, lport, address, port)
	}
	return nil
}

// checkCertificatePair: the listener's certificate and key load as a
// pair, when this user can read them (Vault's own files may be its
// service user's alone: then the restart shows, and a failure rolls back).
func checkCertificatePair(lf *listenerFile) error {
	cert, key := lf.values["tls_cert_file"], lf.values["tls_key_file"]
	if _, err := os.Stat(cert); err != nil {
		return fmt.Errorf("tls_cert_file: %w", err)
	}
	if _, err := os.Stat(key); err != nil {
		return fmt.Errorf("tls_key_file: %w", err)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil && !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("tls_cert_file %s and tls_key_file %s: %v", cert, key, err)
	}
	return nil
}

// checkClientCA is the lockout guard of mTLS: the client CA file must
// hold certificates, and harden's own client certificate (the target's
// certificate.client_cert_file) must chain to it for client auth — else
// harden could not log in to the Vault it just restarted.
func checkClientCA(q sdk.RequestContext, ls *listenerSpec) error {
	if ls.ClientCAFile == "" {
		return fmt.Errorf("target %s is in the mTLS scope: set spec.listener.client_ca_file (the CA Vault verifies client certificates with)", q.Target.Name)
	}
	data, err := sdk.ReadFile(ls.ClientCAFile)
	if err != nil {
		return fmt.Errorf("spec.listener.client_ca_file %s: %w", ls.ClientCAFile, err)
	}
	cas, err := sdk.ParseCertificatesPEM(data)
	if err != nil {
		return fmt.Errorf("spec.listener.client_ca_file %s: %w", ls.ClientCAFile, err)
	}
	if len(q.Certificates.ClientChainPEM) == 0 || len(q.Certificates.ClientKeyPEM) == 0 {
		return fmt.Errorf("target %s is in the mTLS scope but harden has no client certificate for it (certificate.client_cert_file/client_key_file): Vault would refuse harden itself", q.Target.Name)
	}
	pair, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM)
	if err != nil {
		return fmt.Errorf("harden's client certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("harden's client certificate: %w", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("harden's client certificate %q does not verify against spec.listener.client_ca_file %s for client auth: %v", leaf.Subject.CommonName, ls.ClientCAFile, err)
	}
	return nil
}

// unsealKeys are the key(s) of connection.unseal_key_file/_env, one per
// line; nil when none is given. A line that is not an unseal key (base64
// or hex of 16 to 33 bytes, as vault operator init prints them) is an
// error that never quotes it.
func unsealKeys(q sdk.RequestContext) ([]string, error) {
	raw, ok := q.Target.Secret("unseal_key")
	if !ok {
		return nil, nil
	}
	var keys []string
	for i, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n := -1
		if b, err := base64.StdEncoding.DecodeString(line); err == nil {
			n = len(b)
		} else if b, err := hex.DecodeString(line); err == nil {
			n = len(b)
		}
		if n < 16 || n > 33 {
			return nil, fmt.Errorf("connection.unseal_key_file: line %d is not an unseal key (base64 or hex, as vault operator init prints them)", i+1)
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, errors.New("connection.unseal_key_file holds no unseal key")
	}
	return keys, nil
}

// checkUnsealable: a Shamir-sealed Vault comes back sealed after the
// restart, so the unseal key(s) must be there (an auto-unseal Vault,
// seal type other than shamir, unseals itself).
func (lp *listenerPlan) checkUnsealable(ctx context.Context, cl *vault.Client) error {
	keys, err := unsealKeys(lp.q)
	if err != nil {
		return err
	}
	s, err := cl.Sys().SealStatusWithContext(ctx)
	if err != nil {
		return fmt.Errorf("read Vault's seal status: %w", err)
	}
	if s.Type == "shamir" && len(keys) == 0 {
		return fmt.Errorf("target %s: changing Vault's listener needs a restart, after which Vault is sealed (Shamir seal, %d of %d key shares needed), and connection.unseal_key_file is not set: set it (a 0600 file, one key per line) or restart and unseal by hand after harden render", lp.q.Target.Name, s.T, s.N)
	}
	if s.Type == "shamir" && len(keys) < s.T {
		return fmt.Errorf("target %s: connection.unseal_key_file holds %d key(s), Vault needs %d to unseal", lp.q.Target.Name, len(keys), s.T)
	}
	return nil
}

// apply writes the file (backup first), restarts and unseals Vault and
// verifies the listener live; on any failure it puts the old file back,
// restarts and unseals again, and says where Vault is.
func (lp *listenerPlan) apply(ctx context.Context) error {
	if lp.rendered != nil {
		if lp.journal == nil {
			return errors.New("no apply journal for the listener file")
		}
		if err := lp.journal.Replace(lp.path, lp.rendered, lp.mode, lp.owner); err != nil {
			return fmt.Errorf("write %s: %w", lp.path, err)
		}
	}
	applykit.Crash("vaultpki", "listener-written")
	err := lp.restartAndUnseal(ctx)
	if err == nil {
		err = lp.verifyLive(ctx)
	}
	if err == nil {
		return nil
	}
	return lp.rollback(ctx, err)
}

// undo: the old file, restart, unseal (a later failure or Ctrl-C).
func (lp *listenerPlan) undo(ctx context.Context) error {
	if lp.rendered == nil {
		return nil // only restarted: nothing to put back
	}
	if err := lp.journal.RestoreFile(lp.path); err != nil {
		return fmt.Errorf("restore %s: %w", lp.path, err)
	}
	if err := lp.restartAndUnseal(ctx); err != nil {
		return fmt.Errorf("%s restored, but Vault did not come back with it: %w", lp.path, err)
	}
	return nil
}

// rollback after cause: the old file back (when harden wrote one), Vault
// restarted and unsealed with it; the error says which of these held.
func (lp *listenerPlan) rollback(ctx context.Context, cause error) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*lp.timeout)
	defer cancel()
	if lp.rendered == nil {
		if err := lp.restartAndUnseal(uctx); err != nil {
			return fmt.Errorf("%w; restarting once more did not help: %v", cause, err)
		}
		return cause
	}
	if err := lp.journal.RestoreFile(lp.path); err != nil {
		return fmt.Errorf("%w; putting the old %s back FAILED: %v (its backup is in the journal; Vault may be down or on the new file)", cause, lp.path, err)
	}
	if err := lp.restartAndUnseal(uctx); err != nil {
		return fmt.Errorf("%w; the old %s was put back, but Vault did not come back with it: %v", cause, lp.path, err)
	}
	return fmt.Errorf("%w; the old %s was put back and Vault restarted and unsealed with it", cause, lp.path)
}

// restartAndUnseal runs restart_command, waits until Vault answers,
// unseals it when sealed and waits until it is active.
func (lp *listenerPlan) restartAndUnseal(ctx context.Context) error {
	keys, _ := unsealKeys(lp.q) // checked at plan
	res, err := applykit.Run(ctx, lp.spec.RestartCommand, applykit.RunOptions{Timeout: lp.timeout, Env: os.Environ()})
	if err != nil {
		// The output can hold anything the operator's script prints: only
		// into the error, trimmed, never a log line.
		return fmt.Errorf("restart command %s failed: %w%s", lp.spec.RestartCommand[0], err, orEmpty(": ", redactKeys(lastLines(string(res.Output), 5), keys)))
	}
	applykit.Crash("vaultpki", "listener-restarted")
	cl, err := lp.unauthenticated()
	if err != nil {
		return err
	}
	var s *vault.SealStatusResponse
	if err := lp.until(ctx, "answer", func(ctx context.Context) (bool, error) {
		s, err = cl.Sys().SealStatusWithContext(ctx)
		return err == nil, err
	}); err != nil {
		return err
	}
	if s.Sealed {
		if len(keys) == 0 {
			return fmt.Errorf("vault is running and SEALED after the restart, and connection.unseal_key_file is not set: unseal it by hand (vault operator unseal)")
		}
		for _, k := range keys {
			if s, err = cl.Sys().UnsealWithContext(ctx, k); err != nil {
				return fmt.Errorf("vault is running and SEALED after the restart: unseal refused: %s", redactKeys(vaultWords(err), keys))
			}
			if !s.Sealed {
				break
			}
		}
		if s.Sealed {
			return fmt.Errorf("vault is running and SEALED after the restart: still sealed after %d unseal key(s) (progress %d of %d)", len(keys), s.Progress, s.T)
		}
	}
	// Unsealed and serving: active, or a standby of an HA cluster (it
	// forwards to the active node).
	return lp.until(ctx, "serve unsealed", func(ctx context.Context) (bool, error) {
		h, err := cl.Sys().HealthWithContext(ctx)
		return err == nil && h.Initialized && !h.Sealed, err
	})
}

// until polls ok every 100 ms for at most the restart timeout.
func (lp *listenerPlan) until(ctx context.Context, what string, ok func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, lp.timeout)
	defer cancel()
	var last error
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		done, err := ok(actx)
		acancel()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			why := "no answer"
			if last != nil {
				why = vaultWords(last)
			}
			return fmt.Errorf("vault at %s did not %s within %s of the restart (last: %s)", lp.st.conn.Address, what, lp.timeout, why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unauthenticated is an API client without a token (seal status, unseal,
// health), with harden's TLS settings for this target.
func (lp *listenerPlan) unauthenticated() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = lp.st.conn.Address
	cfg.MaxRetries = 0
	tcfg, err := clientTLSFor(lp.q, lp.st.conn)
	if err != nil {
		return nil, err
	}
	cfg.HttpClient = newHTTPClient(tcfg)
	cl, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	cl.ClearToken()
	return cl, nil
}

// verifyLive: harden logs in again (never locked out) and the probe finds
// the listener serving the profile's versions and suites (and requiring
// client certificates under mTLS); anything but a pass fails the step.
func (lp *listenerPlan) verifyLive(ctx context.Context) error {
	if _, err := client(ctx, lp.q, lp.st.conn); err != nil {
		return fmt.Errorf("after the restart harden cannot log in to Vault: %w", err)
	}
	ls := scanListenerJudged(ctx, lp.q, lp.st)
	var bad []string
	for _, id := range listenerCheckIDs(lp.mtls) {
		c, ok := checkOf(ls.decided, id)
		switch {
		case !ok:
			bad = append(bad, id+" not observed")
		case c.Status != checks.Pass:
			bad = append(bad, fmt.Sprintf("%s %s: %s", c.ID, c.Status, c.Evidence))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the restarted listener does not serve the profile: %s", strings.Join(bad, "; "))
	}
	if ls.tls13Only && lp.d != nil {
		// Accepted, not retried: no file can leave these suites out, so a
		// rollback would only restart Vault twice on every run.
		lp.d.AddWarning("Vault's listener serves the profile's settings except the TLS 1.3 suites Go always offers",
			"Vault (Go) has no setting for TLS 1.3 suites: tls.cipher_suites keeps failing on the ones outside the "+lp.st.profile.Name+" profile; everything the listener file decides was verified live")
	}
	return nil
}

// checkOf is the first check with id in cs.
func checkOf(cs []checks.Check, id string) (checks.Check, bool) {
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return checks.Check{}, false
}

// listenerCheckIDs are the probe's checks the listener file decides.
func listenerCheckIDs(mtls bool) []string {
	ids := []string{"tls.enabled", "tls.protocol.versions", "tls.cipher_suites"}
	if mtls {
		ids = append(ids, "tls.client_auth.required")
	}
	return ids
}

// restartDue probes the listener: a FAIL of a check the file decides
// means Vault still serves older settings. due are those checks, why
// their evidence (or, with none due, why it could not tell). The TLS 1.3
// suites Go offers whatever the file says are left out of the judgement
// (listenerScan.decided), nothing else: every TLS 1.2 suite, version and
// client-auth verdict counts, whatever else the profile asks that Vault
// cannot do.
func restartDue(ctx context.Context, q sdk.RequestContext, st *settings) (due []checks.Check, why string) {
	return judgeRestart(scanListenerJudged(ctx, q, st).decided)
}

func judgeRestart(decided []checks.Check) (due []checks.Check, why string) {
	var fails, unknown []string
	for _, c := range decided {
		switch c.Status {
		case checks.Fail:
			due = append(due, c)
			fails = append(fails, c.ID+": "+c.Evidence)
		case checks.Pass:
		default:
			unknown = append(unknown, c.ID+": "+c.Evidence)
		}
	}
	if len(fails) > 0 {
		return due, strings.Join(fails, "; ")
	}
	return nil, strings.Join(unknown, "; ")
}

// ids are the checks' IDs, each once, in order.
func ids(cs []checks.Check) []string {
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.ID) {
			out = append(out, c.ID)
		}
	}
	return out
}

// listenerConfigCheck is verify's look at the listener file: whether it
// holds the profile's settings and Vault serves them. The file alone never
// passes: it fails when the live listener checks the file decides fail
// (Vault still serves older settings: a restart is due) and is a warning
// when they could not be observed.
func listenerConfigCheck(q sdk.RequestContext, st *settings, live listenerScan) []checks.Check {
	ls := st.spec.Listener
	if ls == nil {
		return nil
	}
	id, subject := "vaultpki.listener.config", "Vault listener file "+ls.ConfigFile
	src, err := sdk.ReadFile(ls.ConfigFile)
	if err != nil {
		return []checks.Check{checks.Reduce(id, subject, checks.Unknown("read "+ls.ConfigFile, err.Error()))}
	}
	lf, err := parseListener(ls.ConfigFile, src)
	if err != nil {
		return []checks.Check{checks.Configured(id, subject, err.Error(), false)}
	}
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	want, managed, _, err := listenerWant(st.profile, mtls, ls.ClientCAFile)
	if err != nil {
		return []checks.Check{checks.Configured(id, subject, err.Error(), false)}
	}
	if !lf.matches(want, managed) {
		return []checks.Check{checks.Configured(id, subject, "holds "+lf.summary(managed)+"; the "+st.profile.Name+" profile wants "+summarySettings(want), false)}
	}
	holds := ls.ConfigFile + " holds " + summarySettings(want)
	var fails, unknown []string
	for _, cid := range listenerCheckIDs(mtls) {
		c, ok := checkOf(live.decided, cid)
		switch {
		case !ok:
			unknown = append(unknown, cid+": not observed")
		case c.Status == checks.Fail:
			fails = append(fails, c.ID+": "+c.Evidence)
		case c.Status != checks.Pass:
			unknown = append(unknown, c.ID+" "+c.Status.String()+": "+c.Evidence)
		}
	}
	switch {
	case len(fails) > 0:
		return []checks.Check{checks.Failed(id, subject, "restart due: "+holds+", but Vault serves other settings (it reads them only at start-up): "+strings.Join(fails, "; "))}
	case len(unknown) > 0:
		return []checks.Check{checks.New(id, checks.Warn, subject, checks.ConfigurationPrefix+holds+"; whether Vault serves them could not be observed: "+strings.Join(unknown, "; "))}
	}
	ev := holds + "; Vault serves them (live: " + strings.Join(listenerCheckIDs(mtls), ", ") + " pass"
	if live.tls13Only {
		ev += "; tls.cipher_suites fails only on the TLS 1.3 suites Go always offers, which no setting leaves out"
	}
	return []checks.Check{checks.Passed(id, subject, ev+")")}
}

// clientTLSFor is the TLS of harden's Vault API client for this request:
// clientTLS, and harden's client certificate whenever the policy gives
// the target one (certificate.client_cert_file): a listener that requires
// client certificates — harden's under mTLS, or one left from a scope the
// target has since left — must still let harden in.
func clientTLSFor(q sdk.RequestContext, c connection) (*tls.Config, error) {
	if len(q.Certificates.ClientChainPEM) == 0 {
		return c.clientTLS()
	}
	cfg, err := sdk.ClientTLS(sdk.Certificates{ClientChainPEM: q.Certificates.ClientChainPEM, ClientKeyPEM: q.Certificates.ClientKeyPEM},
		sdk.ClientTLSOptions{CAFile: c.CAFile, SystemRoots: true})
	switch {
	case err != nil && c.CAFile != "":
		return nil, fmt.Errorf("connection.ca_file %s: %w", c.CAFile, err)
	case err != nil:
		return nil, err
	}
	return cfg, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func redactKeys(s string, keys []string) string {
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, "<unseal key>")
	}
	return s
}

// bindListenerJournal gives the listener step the apply journal and
// restricts it to the one file this target writes (a journal naming any
// other file is refused, never restored).
func (st *settings) bindListenerJournal(j *applykit.Journal) error {
	allowed := ""
	if st.spec.Listener != nil {
		allowed = filepath.Clean(st.spec.Listener.ConfigFile)
	}
	if err := j.Restrict(func(p string) bool { return allowed != "" && p == allowed }); err != nil {
		return err
	}
	if st.listener != nil {
		st.listener.journal = j
	}
	return nil
}

// unsealAfterKilledRestart: a run killed in its listener step may have
// left Vault restarted and sealed; with the unseal key(s) the next apply
// unseals it first (and says so), so the plan can read Vault again. A
// Vault sealed for any other reason is left alone.
func unsealAfterKilledRestart(ctx context.Context, q sdk.RequestContext, st *settings, killed *applykit.State, d *sdk.Diagnostics) {
	if killed == nil || st.spec.Listener == nil || (killed.Phase != listenerStepPhase && killed.Phase != "rolling-back") {
		return
	}
	lp := &listenerPlan{q: q, st: st, spec: *st.spec.Listener, timeout: st.listenerTimeout()}
	keys, err := unsealKeys(q)
	if err != nil || len(keys) == 0 {
		return
	}
	cl, err := lp.unauthenticated()
	if err != nil {
		return
	}
	s, err := cl.Sys().SealStatusWithContext(ctx)
	if err != nil || !s.Sealed {
		return
	}
	for _, k := range keys {
		if s, err = cl.Sys().UnsealWithContext(ctx, k); err != nil || !s.Sealed {
			break
		}
	}
	if err == nil && !s.Sealed {
		d.AddWarning("Vault was sealed after an interrupted listener restart: unsealed it with connection.unseal_key_file", applykit.Describe(*killed))
	}
}

// vaultWords is Vault's error text on one line (its status and errors,
// without the request line), or the transport error.
func vaultWords(err error) string {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("Vault answered %d: %s", re.StatusCode, oneLine(strings.Join(re.Errors, "; ")))
	}
	return oneLine(err.Error())
}
