package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// rotateCommand: `harden rotate` renews the certificates that are due —
// each target's server certificate and harden's own client certificate —
// and pushes them through the target's plugin without downtime, behind a
// verify gate: consecutive fresh handshakes on every listener must serve
// the new certificate with a chain clients holding the current bundle
// accept, and harden must still log in with nothing else pending. A gate
// that fails puts the previous material back and checks that it is served
// again. It changes certificate material only: a target with any other
// pending change is refused (so it is safe in cron).
func rotateCommand(io IO) *cli.Command {
	return &cli.Command{Name: "rotate", Usage: "renew certificates due for renewal, verify-gated, rolled back on failure",
		Flags: policyFlags(
			&cli.BoolFlag{Name: "yes", Usage: "rotate without asking"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what is due and what would be renewed; change nothing, issue nothing"},
			&cli.BoolFlag{Name: "force-renew", Usage: "renew every certificate, due or not"},
			&cli.IntFlag{Name: "gate-handshakes", Value: 8, Usage: "consecutive fresh handshakes every listener must answer with the new certificate"},
			&cli.DurationFlag{Name: "gate-timeout", Value: 30 * time.Second, Usage: "how long the gate waits for every listener to serve the new certificate"},
			&cli.StringSliceFlag{Name: "client", Usage: "only this client identity (repeatable; default: every client, unless --target is given)"},
			&cli.BoolFlag{Name: "ca", Usage: "staged CA rotation: prepare the next CA, then phases trust, reissue, retire — each verified on every target, persisted, resumable"},
			&cli.BoolFlag{Name: "abort", Usage: "with --ca: go back one phase of the CA rotation in progress"},
			&cli.StringFlag{Name: "stop-after", Usage: "with --ca: stop once this phase (trust or reissue) is done on every target, e.g. to update clients outside harden's reach before the next"},
			&cli.BoolFlag{Name: "schedule", Usage: "print when the next rotate run is due (2/3 of the shortest remaining lifetime or renew_before, whichever is earlier, with jitter) and exit"},
		),
		Action: func(c *cli.Context) error { return runRotate(c, io) }}
}

// rotateReport is `harden rotate`'s output (JSON field names are stable).
type rotateReport struct {
	FormatVersion int                  `json:"format_version"`
	Policy        string               `json:"policy"`
	Targets       []rotateTargetReport `json:"targets"`
	// CA: a staged CA rotation (--ca).
	CA *caReport `json:"ca_rotation,omitempty"`
}

type rotateTargetReport struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Status: renewed, not_due, would_renew (dry run), refused (nothing
	// changed: other pending changes, a lock held, no confirmation),
	// rolled_back (the gate failed; the previous material is served
	// again), due (files source: harden cannot renew), skipped, error
	// (what is live is unknown, or a step failed; the message says what
	// changed, if anything).
	Status   string          `json:"status"`
	Message  string          `json:"message,omitempty"`
	Renewed  []renewalReport `json:"renewed,omitempty"`
	Gate     string          `json:"gate,omitempty"`
	Pending  []string        `json:"restart_pending,omitempty"`
	Changes  []report.Change `json:"changes,omitempty"`
	Duration float64         `json:"duration_ms"`
	// Steps: where the time went (inventory, plan, push, gate, ...).
	Steps []stepReport `json:"steps,omitempty"`
}

type stepReport struct {
	Step     string  `json:"step"`
	Duration float64 `json:"duration_ms"`
}

type renewalReport struct {
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason"`
	OldSerial string    `json:"old_serial,omitempty"`
	NewSerial string    `json:"new_serial,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	RenewAt   time.Time `json:"renew_at,omitzero"`
}

type rotateOptions struct {
	dryRun, force, yes bool
	handshakes         int
	gateTimeout        time.Duration
}

func runRotate(c *cli.Context, io IO) error {
	o := rotateOptions{dryRun: c.Bool("dry-run"), force: c.Bool("force-renew"), yes: c.Bool("yes"),
		handshakes: c.Int("gate-handshakes"), gateTimeout: c.Duration("gate-timeout")}
	if o.handshakes < 1 || o.handshakes > 1000 {
		return exitf(ExitConfig, "--gate-handshakes %d: want 1 to 1000", o.handshakes)
	}
	if o.gateTimeout <= 0 {
		return exitf(ExitConfig, "--gate-timeout must be positive")
	}
	if !o.yes && !o.dryRun && !c.Bool("schedule") && !io.IsTerminal() {
		return exitf(ExitConfig, "rotate changes live systems: pass --yes when not running on a terminal (or --dry-run); nothing was changed")
	}
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	if c.Bool("schedule") {
		return runSchedule(c, s)
	}
	if c.Bool("ca") {
		stop := c.String("stop-after")
		if stop != "" && stop != rotate.PhaseTrust && stop != rotate.PhaseReissue {
			return exitf(ExitConfig, "--stop-after %q: want trust or reissue", stop)
		}
		if len(c.StringSlice("target")) > 0 || len(c.StringSlice("client")) > 0 || o.force {
			return exitf(ExitConfig, "--ca moves every target and client of the policy: it takes no --target, --client or --force-renew")
		}
		return runCARotation(c, s, o, c.Bool("abort"), stop)
	}
	if c.Bool("abort") {
		return exitf(ExitConfig, "--abort goes with --ca")
	}
	// Every name is checked before anything changes.
	clients, err := selectedClients(c, s.pol)
	if err != nil {
		return err
	}
	rep := rotateReport{FormatVersion: 1, Policy: s.pol.File}
	// One target at a time, in policy order: each gate is judged on its own
	// and an operator reading the output knows what changed. --client alone
	// rotates only those clients.
	targets := s.targets
	if len(c.StringSlice("client")) > 0 && len(c.StringSlice("target")) == 0 {
		targets = nil
	}
	for _, t := range targets {
		if c.Context.Err() != nil || io.interrupts.signalled() {
			rep.Targets = append(rep.Targets, rotateTargetReport{Name: t.Name, Plugin: t.Plugin, Status: "skipped", Message: "interrupted before this target"})
			continue
		}
		start := time.Now()
		r := rotateTarget(c.Context, s, t, o, io)
		r.Name, r.Plugin, r.Duration = t.Name, t.Plugin, float64(time.Since(start).Microseconds())/1000
		rep.Targets = append(rep.Targets, r)
		if c.String("format") == "text" {
			printRotateTarget(io, r)
		}
	}
	for _, cl := range clients {
		if c.Context.Err() != nil || io.interrupts.signalled() {
			break
		}
		start := time.Now()
		r := rotateClient(c.Context, s, cl, o, io)
		r.Name, r.Plugin, r.Duration = cl.Name, "client", float64(time.Since(start).Microseconds())/1000
		rep.Targets = append(rep.Targets, r)
		if c.String("format") == "text" {
			printRotateTarget(io, r)
		}
	}
	if c.String("format") == "json" {
		if err := writeJSON(io.Stdout, rep); err != nil {
			return err
		}
	}
	if io.interrupts.signalled() || c.Context.Err() != nil {
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted: rotate stopped; each target's status is above")}
	}
	code := ExitOK
	for _, r := range rep.Targets {
		switch r.Status {
		case "error", "rolled_back":
			code = ExitTarget
		case "refused", "due":
			if code == ExitOK {
				code = ExitFindings
			}
		}
	}
	if code != ExitOK {
		return &ExitError{Code: code}
	}
	return nil
}

// selectedClients: --client names, else every client unless --target
// narrowed the run to targets.
func selectedClients(c *cli.Context, pol *policy.Policy) ([]policy.Client, error) {
	names := c.StringSlice("client")
	if len(names) == 0 {
		if len(c.StringSlice("target")) > 0 {
			return nil, nil
		}
		return pol.Clients, nil
	}
	var out []policy.Client
	for _, n := range names {
		cl, ok := pol.Client(n)
		if !ok {
			return nil, exitf(ExitConfig, "--client %q: no such client in %s", n, pol.File)
		}
		out = append(out, cl)
	}
	return out, nil
}

func printRotateTarget(io IO, r rotateTargetReport) {
	fmt.Fprintf(io.Stdout, "%s (%s): %s", r.Name, r.Plugin, strings.ReplaceAll(r.Status, "_", " "))
	if r.Message != "" {
		fmt.Fprintf(io.Stdout, ": %s", r.Message)
	}
	fmt.Fprintln(io.Stdout)
	for _, n := range r.Renewed {
		line := fmt.Sprintf("  %s certificate (%s)", n.Kind, n.Reason)
		if n.OldSerial != "" {
			line += ": serial " + n.OldSerial
		}
		if n.NewSerial != "" {
			line += " -> " + n.NewSerial + ", valid until " + n.NotAfter.UTC().Format(time.RFC3339) + ", renew at " + n.RenewAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintln(io.Stdout, line)
	}
	for _, ch := range r.Changes {
		fmt.Fprintf(io.Stdout, "  ~ %s %s\n", ch.Action, ch.Resource)
	}
	if r.Gate != "" {
		fmt.Fprintf(io.Stdout, "  gate: %s\n", r.Gate)
	}
	for _, p := range r.Pending {
		fmt.Fprintf(io.Stdout, "  restart needed: %s\n", p)
	}
}

// rotation is one target's material: what the store holds now, what it
// held before the last rotation, and the issuer.
type rotation struct {
	s     *session
	t     policy.Target
	p     *engine.Plugin
	iss   *engine.Issuer
	base  sdk.RequestContext
	o     rotateOptions
	io    IO
	steps []stepReport
	// bundle overrides the CA bundle handed to the target (a staged CA
	// rotation pushing a new bundle); nil: the issuer's.
	bundle []byte
	// dueCA: a stored certificate must chain to this (the next root while
	// a CA rotation re-issues); nil: the issuer's bundle.
	dueCA []byte
	// listeners: the names whatIsLive saw; the gate must see them all.
	listeners []string
}

// notMaterial: the changes that are not certificate material (a setting,
// a rule): rotate never applies those.
func notMaterial(cs []sdk.Change) []sdk.Change {
	var out []sdk.Change
	for _, c := range cs {
		if !c.CertificateMaterial {
			out = append(out, c)
		}
	}
	return out
}

func listenerNames(inv sdk.InventoryResponse) []string {
	var out []string
	for _, l := range inv.Listeners {
		out = append(out, l.Name)
	}
	return out
}

// want is what a stored certificate of kind must be.
func (r *rotation) want(kind string) certstore.Want {
	w, _ := r.iss.Want(kind)
	if r.dueCA != nil {
		w.CAPEM = r.dueCA
	}
	return w
}

// step times one step: defer r.step("plan")().
func (r *rotation) step(name string) func() {
	start := time.Now()
	return func() {
		r.steps = append(r.steps, stepReport{Step: name, Duration: float64(time.Since(start).Microseconds()) / 1000})
	}
}

func (r *rotation) material(server, client certstore.Pair) sdk.RequestContext {
	rc := r.base
	bundle := r.iss.CA.CABundlePEM
	if r.bundle != nil {
		bundle = r.bundle
	}
	rc.Certificates = sdk.Certificates{ChainPEM: server.Chain, KeyPEM: server.Key, CABundlePEM: bundle, CRLPEM: r.iss.CA.CRLPEM}
	if r.iss.Client {
		rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = client.Chain, client.Key
	}
	return rc
}

func (r *rotation) now() time.Time { return clock(r.s.eng) }

// clock is the engine's clock (tests set it), else the time now.
func clock(e *engine.Engine) time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func rotateTarget(ctx context.Context, s *session, t policy.Target, o rotateOptions, io IO) rotateTargetReport {
	pol := s.pol
	if t.Name == pol.Certificates.VaultTarget {
		return rotateTargetReport{Status: "skipped", Message: "the certificate source itself: its own listener certificate is not issued by harden"}
	}
	if pol.Certificates.Source != "vault-pki" || t.CertFile != "" {
		return rotateFiles(ctx, s, t)
	}
	verifyOnly := false
	if p, ok := s.eng.Plugins[t.Plugin]; ok && p.VerifyOnly() {
		if !pol.Context().InMTLSScope(t.Name) {
			return rotateTargetReport{Status: "skipped", Message: verifyOnlyNothing}
		}
		verifyOnly = true
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, failed := newRotation(tctx, s, t, o, io)
	if failed != nil {
		return *failed
	}
	var rep rotateTargetReport
	if verifyOnly {
		rep = r.runClientOnly(tctx)
	} else {
		rep = r.run(tctx)
	}
	rep.Steps = r.steps
	return rep
}

// verifyOnlyNothing: what rotate says of a verify-only target outside the
// mTLS scope — harden holds no certificate for it at all.
const verifyOnlyNothing = "verify only: harden deploys no certificate to it (its own certificate shows in harden inventory)"

// newRotation prepares the rotation of one vault-pki target: its plugin
// must plan, apply and report an inventory (the gate rests on it). A
// verify-only plugin needs only the inventory: harden renews just its own
// client certificate there, gated by live handshakes (runClientOnly).
func newRotation(ctx context.Context, s *session, t policy.Target, o rotateOptions, io IO) (*rotation, *rotateTargetReport) {
	p := s.eng.Plugins[t.Plugin]
	needs := []sdk.Capability{sdk.CapPlan, sdk.CapApply, sdk.CapInventory}
	if p.VerifyOnly() {
		needs = []sdk.Capability{sdk.CapInventory}
	}
	for _, need := range needs {
		if !slices.Contains(p.Meta.Capabilities, need) {
			return nil, &rotateTargetReport{Status: "error", Message: fmt.Sprintf("plugin %s does not offer %s: harden cannot rotate it behind a verify gate", t.Plugin, need)}
		}
	}
	iss, err := s.eng.IssuerFor(ctx, s.pol, t)
	if err != nil {
		return nil, &rotateTargetReport{Status: "error", Message: err.Error()}
	}
	base, err := s.eng.BaseRequest(s.pol, t, io.Getenv)
	if err != nil {
		return nil, &rotateTargetReport{Status: "error", Message: err.Error()}
	}
	return &rotation{s: s, t: t, p: p, iss: iss, base: base, o: o, io: io}, nil
}

// rotateFiles: with certificates from files harden cannot renew; it says
// what is due and what to do.
func rotateFiles(ctx context.Context, s *session, t policy.Target) rotateTargetReport {
	// Read as verify does (no validity refusal): an expired file is due,
	// with the way out, not an error.
	rc, err := s.eng.Request(ctx, s.pol, t, s.io.Getenv)
	var source *engine.CertificateSourceError
	if err != nil && !errors.As(err, &source) && !strings.Contains(err.Error(), "valid") {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	if err != nil {
		chain, _ := policy.ReadBounded(t.CertFile, policy.Public)
		rc.Certificates.ChainPEM = chain
		if t.ClientCertFile != "" {
			cchain, _ := policy.ReadBounded(t.ClientCertFile, policy.Public)
			rc.Certificates.ClientChainPEM = cchain
		}
	}
	rb := s.pol.Certificates.Rotation.RenewBefore
	var due []string
	for _, m := range []struct {
		what, file string
		pem        []byte
	}{
		{"certificate", t.CertFile, rc.Certificates.ChainPEM}, {"client certificate", t.ClientCertFile, rc.Certificates.ClientChainPEM}} {
		if len(m.pem) == 0 {
			continue
		}
		certs, err := sdk.ParseCertificatesPEM(m.pem)
		if err != nil || len(certs) == 0 {
			continue
		}
		if left := certs[0].NotAfter.Sub(clock(s.eng)); left < rb {
			due = append(due, fmt.Sprintf("%s %s ends on %s (%s left, renew_before %s)", m.what, m.file, certs[0].NotAfter.UTC().Format(time.RFC3339), left.Round(time.Hour), rb))
		}
	}
	if len(due) == 0 {
		return rotateTargetReport{Status: "not_due", Message: "certificates from files, none within renew_before"}
	}
	return rotateTargetReport{Status: "due", Message: "certificates.source files: harden cannot renew them: " + strings.Join(due, "; ") +
		"; put renewed files at those paths and run harden apply (or use certificates.source vault-pki)"}
}

func (r *rotation) run(ctx context.Context) rotateTargetReport {
	var rep rotateTargetReport
	store := r.iss.Store
	// One run at a time changes this target's certificates (a cron job
	// beside an operator, or an apply issuing).
	unlock, err := store.Lock()
	if err != nil {
		return rotateTargetReport{Status: "refused", Message: err.Error()}
	}
	defer unlock()
	now := r.now()
	cur, err := store.Current("server")
	if err == nil && len(cur.Chain)+len(cur.Key) == 0 {
		return rotateTargetReport{Status: "refused", Message: "no certificate issued for this target yet: run harden apply first"}
	}
	prev, perr := store.Previous("server")
	curClient, cerr := store.Current("client")
	prevClient, pcerr := store.Previous("client")
	if err := errors.Join(err, perr, cerr, pcerr); err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	// Harden's own client certificate: the plugin logs in with it for
	// everything below. One that cannot be used any more (expired, not a
	// pair, another CA) is renewed first — only the issuer is needed for
	// that — so harden can log in at all; one that is merely due is
	// renewed with the rest, after the checks.
	client := curClient
	var clientDue string
	if r.iss.Client {
		if !client.Valid() {
			client = prevClient
		}
		clientDue = rotate.Due(curClient, r.want("client"), store.RenewBefore, now)
		if clientDue == "" && r.o.force {
			clientDue = "--force-renew"
		}
		if clientDue != "" && !r.o.dryRun && rotate.Due(client, r.want("client"), 0, now) != "" {
			next, n, failed := r.renewClient(ctx, curClient, clientDue)
			if failed != nil {
				return *failed
			}
			client, clientDue = next, ""
			rep.Renewed = append(rep.Renewed, n)
		}
	}
	changed := func(msg string) string {
		if len(rep.Renewed) > 0 {
			return strings.Replace(msg, "nothing was changed", "only harden's own client certificate was renewed", 1)
		}
		return msg
	}
	// What is live: every listener must serve the current certificate
	// (or, after a rotation killed half-way, the previous one).
	done := r.step("what is live (inventory)")
	inv, err := r.p.Client.Inventory(ctx, r.material(cur, client), 1)
	done()
	if err != nil {
		return r.failClient(rep, "inventory: "+err.Error())
	}
	live, why := whatIsLive(inv, cur, prev)
	if live == "" {
		return r.failClient(rep, changed(why))
	}
	if live == "unmanaged" {
		rep.Status, rep.Message = "skipped", why
		return rep
	}
	livePair := cur
	if live == "previous" {
		livePair = prev
	}
	r.listeners = listenerNames(inv)
	// Nothing else may be pending: rotate changes certificate material
	// only. The plan also proves that harden can log in with its client.
	done = r.step("nothing else pending (plan)")
	plan, err := r.p.Client.Plan(ctx, r.material(livePair, client))
	done()
	if err == nil && plan.Diagnostics.HasError() {
		err = plan.Diagnostics.Err()
	}
	if err != nil {
		return r.failClient(rep, "plan with the certificate that is live: "+err.Error())
	}
	if other := notMaterial(plan.Changes); len(other) > 0 {
		rep = r.failClient(rep, changed(fmt.Sprintf("%d pending change(s) besides certificate material: run harden plan and harden apply first; nothing was changed", len(other))))
		rep.Status = "refused"
		rep.Changes = report.Changes(other)
		return rep
	}
	// The server certificate.
	var next certstore.Pair
	n := renewalReport{Kind: "server", OldSerial: serialOf(livePair)}
	curDue := rotate.Due(cur, r.want("server"), store.RenewBefore, now)
	switch {
	case store.Pending("server") && cur.Valid() && curDue == "":
		// A rotation was stopped after the store took the new pair and
		// before its gate passed (pushed or not): push it (a no-op when
		// it is served) and gate it now.
		n.Reason, next = "resuming an interrupted rotation", cur
	case live == "previous" && cur.Valid() && curDue == "":
		n.Reason, next = "resuming an interrupted rotation", cur
	default:
		n.Reason = curDue
		if n.Reason == "" && r.o.force {
			n.Reason = "--force-renew"
		}
	}
	if n.Reason == "" && clientDue == "" {
		rep.Status = "not_due"
		if len(rep.Renewed) > 0 {
			rep.Status = "renewed"
		}
		if l := rotate.Leaf(cur); l != nil {
			rep.Message = fmt.Sprintf("server certificate serial %s valid until %s, renew at %s", rotate.Serial(l), l.NotAfter.UTC().Format(time.RFC3339),
				l.NotAfter.Add(-store.RenewBefore).UTC().Format(time.RFC3339))
		}
		return rep
	}
	if r.o.dryRun {
		if clientDue != "" {
			rep.Renewed = append(rep.Renewed, renewalReport{Kind: "client", Reason: clientDue, OldSerial: serialOf(curClient)})
		}
		if n.Reason != "" {
			rep.Renewed = append(rep.Renewed, n)
		}
		rep.Status = "would_renew"
		return rep
	}
	if !r.o.yes {
		what := n
		if n.Reason == "" {
			what = renewalReport{Kind: "client", Reason: clientDue}
		}
		if ok, err := r.confirm(ctx, what); !ok {
			rep = r.failClient(rep, changed(err))
			rep.Status = "refused"
			return rep
		}
	}
	if clientDue != "" {
		nextClient, cn, failed := r.renewClient(ctx, curClient, clientDue)
		if failed != nil {
			failed.Renewed = append(rep.Renewed, failed.Renewed...)
			return *failed
		}
		client = nextClient
		rep.Renewed = append(rep.Renewed, cn)
	}
	if n.Reason == "" {
		// Only harden's client certificate was due: its login was checked.
		rep.Status = "renewed"
		return rep
	}
	if next.Chain == nil {
		done := r.step("issue")
		next, err = r.issue("server")
		done()
		if err != nil {
			return r.failClient(rep, changed("renewing the server certificate: "+err.Error()+"; nothing was changed"))
		}
		// The pair kept as previous is the one served, which after an
		// interrupted rotation is the previous pair, not the current one.
		if err := store.Stage("server", next, livePair); err != nil {
			return r.failClient(rep, err.Error())
		}
	}
	if err := store.MarkPending("server", serialOf(next)); err != nil {
		return r.failClient(rep, err.Error())
	}
	applykit.Crash("host", "rotate-staged")
	r.fill(&n, next)
	rep.Renewed = append(rep.Renewed, n)
	newRC := r.material(next, client)
	changes, applyErr := r.push(ctx, newRC)
	rep.Changes = report.Changes(changes)
	applykit.Crash("host", "rotate-pushed")
	var v rotate.Verdict
	if applyErr == nil {
		v = r.gate(ctx, newRC, rotate.Leaf(next), rotate.Leaf(livePair))
		if v.OK {
			if err := r.converged(ctx, newRC, &v); err != nil {
				v.OK, v.Problems = false, []string{err.Error()}
			}
		}
	}
	if applyErr == nil && v.OK {
		if err := store.ClearPending("server"); err != nil {
			return r.failClient(rep, err.Error())
		}
		rep.Status, rep.Gate, rep.Pending = "renewed", v.String(), v.Pending
		return rep
	}
	// Roll back: the previous material, pushed and gated like the new one
	// — on a context of its own, bounded, that Ctrl-C or --timeout of the
	// forward run does not end (the first signal waits for it, as for an
	// apply step).
	failure := ""
	if applyErr != nil {
		failure = "apply of the renewed certificate failed: " + applyErr.Error()
	} else {
		failure = "verify gate failed: " + v.String()
		rep.Gate = v.String()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.timeout)
	defer cancel()
	stepDone := r.io.interrupts.applying(r.t.Name)
	defer stepDone()
	oldRC := r.material(livePair, client)
	keep := "; the store keeps the new pair as current and the replaced one as previous, so the next harden rotate finds whichever is served and gates it again"
	if _, err := r.push(rctx, oldRC); err != nil {
		rep.Status, rep.Message = "error", failure+"; restoring the previous certificate failed too: "+err.Error()+keep
		return rep
	}
	back := r.gate(rctx, oldRC, rotate.Leaf(livePair), nil)
	if !back.OK {
		rep.Status, rep.Message = "error", failure+"; after restoring the previous certificate the gate still fails: "+back.String()+keep
		return rep
	}
	// The previous pair is confirmed served: only now the store follows.
	msg := failure + "; the previous certificate (serial " + serialOf(livePair) + ") is served again: " + back.String()
	if err := store.Restore("server"); err != nil {
		msg += "; " + err.Error()
	} else if err := store.ClearPending("server"); err != nil {
		msg += "; " + err.Error()
	}
	rep.Status, rep.Message = "rolled_back", msg
	return rep
}

// renewClient issues harden's client certificate for the target, stages
// it and proves harden still logs in with it (a plan), else puts the
// previous one back.
func (r *rotation) renewClient(ctx context.Context, cur certstore.Pair, why string) (certstore.Pair, renewalReport, *rotateTargetReport) {
	store := r.iss.Store
	n := renewalReport{Kind: "client", Reason: why, OldSerial: serialOf(cur)}
	next, err := r.issue("client")
	if err != nil {
		return certstore.Pair{}, n, &rotateTargetReport{Status: "error", Message: "renewing harden's client certificate: " + err.Error() + "; nothing was changed"}
	}
	if err := store.Stage("client", next, cur); err != nil {
		return certstore.Pair{}, n, &rotateTargetReport{Status: "error", Message: err.Error()}
	}
	server, _ := store.Current("server")
	if prev, _ := store.Previous("server"); !server.Valid() {
		server = prev
	}
	plan, err := r.p.Client.Plan(ctx, r.material(server, next))
	if err == nil && plan.Diagnostics.HasError() {
		err = plan.Diagnostics.Err()
	}
	if err != nil {
		msg := "harden cannot log in with its renewed client certificate: " + err.Error()
		if cur.Valid() {
			if rerr := store.Restore("client"); rerr != nil {
				msg += "; " + rerr.Error()
			} else {
				msg += "; the previous client certificate was put back"
			}
		} else {
			msg += "; there was no usable previous one, so the renewed one stays in the store (serial " + serialOf(next) + ")"
		}
		return certstore.Pair{}, n, &rotateTargetReport{Status: "error", Message: msg}
	}
	r.fill(&n, next)
	return next, n, nil
}

// failClient ends the run in error; a client certificate renewed earlier
// in it stays (it is valid, and only harden uses it).
func (r *rotation) failClient(rep rotateTargetReport, msg string) rotateTargetReport {
	rep.Status, rep.Message = "error", msg
	return rep
}

func (r *rotation) confirm(ctx context.Context, n renewalReport) (bool, string) {
	if n.Kind == "client" {
		fmt.Fprintf(r.io.Stdout, "Renew harden's client certificate for %s (%s)? Only 'yes' is accepted: ", r.t.Name, n.Reason)
	} else {
		fmt.Fprintf(r.io.Stdout, "Renew the server certificate of %s (%s) and push it? Only 'yes' is accepted: ", r.t.Name, n.Reason)
	}
	answer := make(chan string, 1)
	go func() { line, _ := bufio.NewReader(r.io.Stdin).ReadString('\n'); answer <- line }()
	select {
	case <-ctx.Done():
		return false, "interrupted at the confirmation; nothing was changed"
	case line := <-answer:
		if strings.TrimSpace(line) != "yes" {
			return false, "cancelled; nothing was changed"
		}
	}
	return true, ""
}

// issue makes a key here and has the issuer sign its CSR; the result must
// chain to the issuer's CA and cover the target's names.
func (r *rotation) issue(kind string) (certstore.Pair, error) {
	w, sign := r.iss.Want(kind)
	key, csr, err := certstore.NewKeyAndCSR(w.CommonName, w.Names)
	if err != nil {
		return certstore.Pair{}, err
	}
	chain, err := sign(csr)
	if err != nil {
		return certstore.Pair{}, err
	}
	p := certstore.Pair{Chain: chain, Key: key}
	if why := rotate.Due(p, w, 0, r.now()); why != "" {
		return certstore.Pair{}, fmt.Errorf("the issued certificate is not usable: %s", why)
	}
	// A leaf the CA's own end cuts short would be due again at once.
	if why := rotate.Due(p, w, r.iss.Store.RenewBefore, r.now()); why != "" {
		return certstore.Pair{}, fmt.Errorf("the issued certificate is due at once (%s): the issuing CA ends too soon; rotate the CA (harden rotate --ca)", why)
	}
	return p, nil
}

func (r *rotation) fill(n *renewalReport, p certstore.Pair) {
	if l := rotate.Leaf(p); l != nil {
		n.NewSerial, n.NotAfter, n.RenewAt = rotate.Serial(l), l.NotAfter, l.NotAfter.Add(-r.iss.Store.RenewBefore)
	}
}

// push plans and applies rc's material (the plugin confirms on its side
// and rolls its own step back on failure).
func (r *rotation) push(ctx context.Context, rc sdk.RequestContext) ([]sdk.Change, error) {
	done := r.step("push: plan")
	plan, err := r.p.Client.Plan(ctx, rc)
	done()
	if err == nil && plan.Diagnostics.HasError() {
		err = plan.Diagnostics.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if len(plan.Changes) == 0 {
		return nil, nil
	}
	stepDone := r.io.interrupts.applying(r.t.Name)
	actx, end := softDeadline(ctx, r.s.timeout, r.t.Name, r.s.eng, r.io.Stderr)
	applied := r.step("push: apply")
	resp, err := r.p.Client.Apply(actx, rc, plan.PlanToken, false)
	applied()
	end()
	stepDone()
	if err == nil && resp.Diagnostics.HasError() {
		err = resp.Diagnostics.Err()
	}
	return plan.Changes, err
}

// gate runs Inventory with the configured handshakes until every listener
// passes or the gate timeout ends; the last verdict is returned.
func (r *rotation) gate(ctx context.Context, rc sdk.RequestContext, leaf, old *x509.Certificate) rotate.Verdict {
	defer r.step("gate")()
	roots := x509.NewCertPool()
	if cas, err := sdk.ParseCertificatesPEM(rc.Certificates.CABundlePEM); err == nil {
		for _, c := range cas {
			roots.AddCert(c)
		}
	}
	deadline := time.Now().Add(r.o.gateTimeout)
	for {
		inv, err := r.p.Client.Inventory(ctx, rc, r.o.handshakes)
		var v rotate.Verdict
		if err != nil {
			v = rotate.Verdict{Problems: []string{"inventory: " + err.Error()}}
		} else {
			v = rotate.Judge(inv, rotate.Expect{Leaf: leaf, Old: old, Roots: roots, Now: r.now(), Handshakes: r.o.handshakes, Listeners: r.listeners})
		}
		if v.OK || time.Now().After(deadline) || ctx.Err() != nil {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-time.After(time.Second):
		}
	}
}

// converged: after the push, harden logs in with the new material and the
// plan has nothing left — except, when the gate saw listeners that take
// new material only on restart, the restarts the plugin plans for them
// (the plan before the push was empty, so whatever it lists now comes
// from the rotation). Those are reported, not failed.
func (r *rotation) converged(ctx context.Context, rc sdk.RequestContext, v *rotate.Verdict) error {
	defer r.step("harden logs in, nothing left (plan)")()
	plan, err := r.p.Client.Plan(ctx, rc)
	if err == nil && plan.Diagnostics.HasError() {
		err = plan.Diagnostics.Err()
	}
	if err != nil {
		return fmt.Errorf("harden cannot log in or plan with the new certificate: %w", err)
	}
	var left []string
	for _, c := range plan.Changes {
		if c.RequiresRestart && len(v.Pending) > 0 {
			continue
		}
		left = append(left, string(c.Action)+" "+c.Resource)
	}
	if len(left) > 0 {
		return fmt.Errorf("after the push the plan still has %d change(s): %s", len(left), strings.Join(left, ", "))
	}
	return nil
}

// whatIsLive: which stored pair every listener serves — "current", or
// "previous" after a rotation stopped half-way ("" and why otherwise). Anything else
// (a certificate harden did not issue, a listener it cannot see) is a
// refusal with the evidence: rotate never guesses what it replaces.
func whatIsLive(inv sdk.InventoryResponse, cur, prev certstore.Pair) (string, string) {
	if inv.Diagnostics.HasError() {
		return "", "inventory: " + inv.Diagnostics.Err().Error()
	}
	if len(inv.Listeners) == 0 {
		return "", "the plugin reported no TLS listener: nothing to rotate behind a gate"
	}
	// Only valid pairs count: a pair half-written by a killed run is
	// never taken for what is live.
	var curLeaf, prevLeaf *x509.Certificate
	if cur.Valid() {
		curLeaf = rotate.Leaf(cur)
	}
	if prev.Valid() {
		prevLeaf = rotate.Leaf(prev)
	}
	unmanaged := true
	for _, l := range inv.Listeners {
		unmanaged = unmanaged && l.ReloadsOn == sdk.ReloadsNever
	}
	if unmanaged {
		return "unmanaged", "the target's listeners serve a certificate harden does not deploy (reloads_on never): nothing to rotate here"
	}
	servesCur, servesPrev := true, true
	for _, l := range inv.Listeners {
		if l.Error != "" {
			return "", fmt.Sprintf("listener %s at %s: %s; nothing was changed", l.Name, l.Address, l.Error)
		}
		if len(l.Handshakes) == 0 {
			return "", fmt.Sprintf("listener %s at %s: no handshake observed; nothing was changed", l.Name, l.Address)
		}
		h := l.Handshakes[0]
		chain, err := sdk.ParseCertificatesPEM(h.ChainPEM)
		if err != nil || len(chain) == 0 {
			return "", fmt.Sprintf("listener %s at %s: cannot tell what it serves (%s: %s); nothing was changed", l.Name, l.Address, h.Outcome, h.Evidence)
		}
		isCur := curLeaf != nil && bytes.Equal(chain[0].Raw, curLeaf.Raw)
		isPrev := prevLeaf != nil && bytes.Equal(chain[0].Raw, prevLeaf.Raw)
		if !isCur && !isPrev {
			return "", fmt.Sprintf("listener %s at %s serves serial %s, which is not the certificate harden holds for this target (serial %s): run harden plan and harden apply first; nothing was changed",
				l.Name, l.Address, rotate.Serial(chain[0]), rotate.Serial(curLeaf))
		}
		// A listener that reloads only on restart may lag behind.
		if l.ReloadsOn == "" {
			servesCur = servesCur && isCur
			servesPrev = servesPrev && isPrev
		}
	}
	switch {
	case servesCur:
		return "current", ""
	case servesPrev:
		return "previous", ""
	}
	return "", "the listeners serve different certificates (a rotation in progress elsewhere?); nothing was changed"
}

func serialOf(p certstore.Pair) string {
	if l := rotate.Leaf(p); l != nil {
		return rotate.Serial(l)
	}
	return ""
}
