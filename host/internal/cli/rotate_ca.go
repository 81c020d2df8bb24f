package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// `harden rotate --ca` moves every target and client identity from the
// current CA to the next one the certificate source prepares, in three
// phases, each verified on every target before the next starts and
// persisted after every target (rotate.CAState), so a killed run resumes
// where it stopped:
//
//   - trust: every target's trust bundle gets the next root beside the
//     current one; proven live where clients need a certificate: a client
//     certificate from the next CA is let in;
//   - reissue: the next intermediate signs; every leaf (servers, harden's
//     client certificates, client identities) is re-issued behind the
//     verify gate, and restarts a listener needs are done;
//   - retire: the bundles drop the current root; proven live: a client
//     certificate from the old CA is refused. Then the source makes the
//     next CA the current one.
//
// --abort goes back one phase per run.

type caReport struct {
	PhaseBefore string `json:"phase_before"`
	PhaseAfter  string `json:"phase_after"`
	Message     string `json:"message"`
}

func runCARotation(c *cli.Context, s *session, o rotateOptions, abort bool, stopAfter string) error {
	ctx := c.Context
	pol := s.pol
	if pol.Certificates.Source != "vault-pki" {
		return exitf(ExitConfig, "harden rotate --ca: the CA rotation needs certificates.source vault-pki (with files, put the new CA's files in place and run harden apply)")
	}
	var targets []policy.Target
	for _, t := range pol.Targets {
		if t.Name == pol.Certificates.VaultTarget {
			continue
		}
		if t.CertFile != "" {
			return exitf(ExitConfig, "harden rotate --ca: target %s takes its certificate from files (%s): a CA rotation moves only what the certificate source issues", t.Name, t.CertFile)
		}
		targets = append(targets, t)
	}
	vt, _ := pol.Target(pol.Certificates.VaultTarget)
	vp := s.eng.Plugins[vt.Plugin]
	if !slices.Contains(vp.Meta.Capabilities, sdk.CapCARotation) {
		return exitf(ExitTarget, "harden rotate --ca: plugin %s of target %s does not take part in CA rotations", vt.Plugin, vt.Name)
	}
	storeDir := pol.Certificates.VaultStoreDir
	unlock, err := applykit.Lock(storeDir + ".ca-rotation.lock")
	if err != nil {
		return exitf(ExitTarget, "harden rotate --ca: %v (another rotation runs)", err)
	}
	defer unlock()
	st, err := rotate.LoadCAState(storeDir)
	if err != nil {
		return exitf(ExitConfig, "%v", err)
	}
	caOp := func(op string) (sdk.RotateCAResponse, error) {
		tctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		rc, err := s.eng.Request(tctx, pol, vt, s.io.Getenv)
		if err != nil {
			return sdk.RotateCAResponse{}, err
		}
		r, err := vp.Client.RotateCA(tctx, sdk.RotateCARequest{RequestContext: rc, Operation: op})
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		if err != nil {
			return r, fmt.Errorf("certificate source %s: %s: %w", vt.Name, op, err)
		}
		return r, nil
	}
	rep := rotateReport{FormatVersion: 1, Policy: pol.File, CA: &caReport{}}
	finish := func(code int, msg string) error {
		rep.CA.Message = msg
		if st != nil {
			rep.CA.PhaseAfter = st.Phase
		} else {
			rep.CA.PhaseAfter = "none"
		}
		if c.String("format") == "json" {
			if err := writeJSON(s.io.Stdout, rep); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(s.io.Stdout, "CA rotation: %s\n", msg)
		}
		if code != 0 {
			return &ExitError{Code: code}
		}
		return nil
	}
	save := func() error { return st.Save(storeDir, clock(s.eng)) }
	if st == nil {
		rep.CA.PhaseBefore = "none"
		if abort {
			r, err := caOp(sdk.CAStatus)
			if err != nil {
				return finish(ExitTarget, err.Error())
			}
			if len(r.NextRootPEM) > 0 && r.Signing != "next" {
				if !o.yes {
					return exitf(ExitConfig, "no CA rotation state, but %s holds a prepared next CA (a run killed right after preparing it): pass --yes to set it aside", vt.Name)
				}
				if _, err := caOp(sdk.CADiscard); err != nil {
					return finish(ExitTarget, err.Error())
				}
				return finish(ExitOK, "no CA rotation state; the next CA the certificate source had prepared was set aside")
			}
			return finish(ExitOK, "no CA rotation in progress: nothing to abort")
		}
		if o.dryRun {
			return finish(ExitOK, fmt.Sprintf("would prepare the next CA in %s, then move %d target(s) and %d client(s) through the phases trust, reissue, retire", vt.Name, len(targets), len(pol.Clients)))
		}
		if !o.yes {
			return exitf(ExitConfig, "harden rotate --ca changes every target: pass --yes")
		}
		r, err := caOp(sdk.CAPrepare)
		if err != nil {
			return finish(ExitTarget, err.Error()+"; nothing was changed")
		}
		if len(r.NextRootPEM) == 0 || len(r.CurrentRootPEM) == 0 || bytes.Equal(r.NextRootPEM, r.CurrentRootPEM) {
			return finish(ExitTarget, "the certificate source did not prepare a distinct next CA; nothing was changed")
		}
		st = &rotate.CAState{Phase: rotate.PhaseTrust, Started: clock(s.eng).UTC(), CurrentRootPEM: string(r.CurrentRootPEM), NextRootPEM: string(r.NextRootPEM),
			Done: map[string][]string{}}
		if err := save(); err != nil {
			return finish(ExitTarget, err.Error())
		}
	} else {
		rep.CA.PhaseBefore = st.Phase
	}
	if o.dryRun {
		return finish(ExitOK, fmt.Sprintf("in phase %s (%s); done there: %s", st.Phase, map[bool]string{true: "aborting", false: "forward"}[st.Aborting], strings.Join(st.Done[st.Phase], ", ")))
	}
	if !o.yes {
		return exitf(ExitConfig, "harden rotate --ca changes every target: pass --yes")
	}
	items := caItems(targets, pol.Clients)
	step := func(phase string, item string, run func() rotateTargetReport) bool {
		if c.Context.Err() != nil {
			return false
		}
		start := time.Now()
		r := run()
		r.Name, r.Duration = item, float64(time.Since(start).Microseconds())/1000
		r.Message = "phase " + phase + ": " + r.Message
		rep.Targets = append(rep.Targets, r)
		if c.String("format") == "text" {
			printRotateTarget(s.io, r)
		}
		if r.Status == "error" || r.Status == "refused" || r.Status == "rolled_back" {
			return false
		}
		if st.Aborting {
			st.Done[phase] = slices.DeleteFunc(st.Done[phase], func(d string) bool { return d == item })
		} else {
			st.MarkDone(phase, item)
		}
		if err := save(); err != nil {
			last := &rep.Targets[len(rep.Targets)-1]
			last.Status, last.Message = "error", last.Message+"; but the rotation state could not be saved: "+err.Error()
			return false
		}
		applykit.Crash("host", "ca-"+phase)
		return true
	}
	run := func(phase string, item string) rotateTargetReport {
		kind, name, _ := strings.Cut(item, "/")
		if kind == "client" {
			cl, _ := pol.Client(name)
			return caClientStep(ctx, s, st, phase, cl, o)
		}
		t, _ := pol.Target(name)
		return caTargetStep(ctx, s, st, phase, t, o)
	}
	failed := func() error {
		if c.Context.Err() != nil || s.io.interrupts.signalled() {
			_ = finish(ExitInterrupted, fmt.Sprintf("interrupted in phase %s; the state is saved: run harden rotate --ca again to resume, or --abort to go back", st.Phase))
			return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted: the CA rotation stopped; its state is saved")}
		}
		return finish(ExitTarget, fmt.Sprintf("stopped in phase %s: the failing step is above (it says whether its change was put back); fix it and run harden rotate --ca again to resume, or --abort to go back", st.Phase))
	}
	if abort && st.Phase == rotate.PhaseSync {
		return finish(ExitConfig, "the new CA is already the current one (the source finished); nothing to abort: run harden rotate --ca to finish handing out its revocation lists")
	}
	if abort {
		if !st.Aborting {
			st.Aborting = true
			if err := save(); err != nil {
				return finish(ExitTarget, err.Error())
			}
		}
		if st.Phase == rotate.PhaseReissue {
			if _, err := caOp(sdk.CADeactivate); err != nil {
				return finish(ExitTarget, err.Error())
			}
		}
		phase := st.Phase
		// Every item, not only those recorded as done: a run killed after
		// a target's change and before its record left it changed too, and
		// each step is idempotent (nothing pending: nothing pushed; a leaf
		// already from the CA wanted: not re-issued).
		for _, it := range slices.Backward(items) {
			if !step(phase, it, func() rotateTargetReport { return run(phase, it) }) {
				return failed()
			}
		}
		switch phase {
		case rotate.PhaseTrust:
			if _, err := caOp(sdk.CADiscard); err != nil {
				return finish(ExitTarget, err.Error())
			}
			if err := rotate.RemoveCAState(storeDir); err != nil {
				return finish(ExitTarget, err.Error())
			}
			st = nil
			if !caSync(ctx, s, targets, o, &rep) {
				return finish(ExitTarget, "aborted, but the CA's new revocation lists did not reach every target (above): run harden apply")
			}
			return finish(ExitOK, "aborted: every target trusts the current CA alone again; the prepared next CA was set aside")
		case rotate.PhaseReissue:
			st.Phase = rotate.PhaseTrust
		case rotate.PhaseRetire:
			st.Phase = rotate.PhaseReissue
		}
		st.Aborting = false
		if err := save(); err != nil {
			return finish(ExitTarget, err.Error())
		}
		return finish(ExitOK, fmt.Sprintf("went back from %s to phase %s; run --abort again to go further back, or without it to go forward", phase, st.Phase))
	}
	if st.Aborting {
		return finish(ExitTarget, fmt.Sprintf("an --abort of phase %s was interrupted: run harden rotate --ca --abort again to finish it", st.Phase))
	}
	for {
		phase := st.Phase
		if phase == rotate.PhaseReissue {
			if _, err := caOp(sdk.CAActivate); err != nil {
				return finish(ExitTarget, err.Error())
			}
		}
		for _, it := range items {
			if phase == rotate.PhaseSync {
				break
			}
			if !st.IsDone(phase, it) && !step(phase, it, func() rotateTargetReport { return run(phase, it) }) {
				return failed()
			}
		}
		switch phase {
		case rotate.PhaseTrust:
			st.Phase = rotate.PhaseReissue
		case rotate.PhaseReissue:
			st.Phase = rotate.PhaseRetire
		case rotate.PhaseRetire:
			if _, err := caOp(sdk.CAFinish); err != nil {
				return finish(ExitTarget, err.Error()+" (every target already trusts only the next CA: run harden rotate --ca again)")
			}
			st.Phase = rotate.PhaseSync
			if err := save(); err != nil {
				return finish(ExitTarget, err.Error())
			}
			applykit.Crash("host", "ca-finished")
			fallthrough
		case rotate.PhaseSync:
			// The source rebuilt its revocation lists when it switched CAs:
			// every target gets them before the rotation ends.
			if !caSync(ctx, s, targets, o, &rep) {
				return finish(ExitTarget, "the new CA is the current one, but its revocation lists did not reach every target (above): run harden rotate --ca again")
			}
			if err := rotate.RemoveCAState(storeDir); err != nil {
				return finish(ExitTarget, err.Error())
			}
			st = nil
			return finish(ExitOK, fmt.Sprintf("done: %d target(s) and %d client(s) moved to the new CA, verified in every phase; the old CA is retired", len(targets), len(pol.Clients)))
		}
		if err := save(); err != nil {
			return finish(ExitTarget, err.Error())
		}
		applykit.Crash("host", "ca-after-"+phase)
		if phase == stopAfter {
			return finish(ExitOK, fmt.Sprintf("phase %s done on every target and client (--stop-after); run harden rotate --ca again for phase %s", phase, st.Phase))
		}
	}
}

// caSync hands every target what the source serves now that the
// rotation ended (its revocation lists are rebuilt whenever its issuers
// change): certificate material only, pushed and gated like the rest.
func caSync(ctx context.Context, s *session, targets []policy.Target, o rotateOptions, rep *rotateReport) bool {
	ok := true
	for _, t := range targets {
		if p := s.eng.Plugins[t.Plugin]; p != nil && p.VerifyOnly() {
			rep.Targets = append(rep.Targets, rotateTargetReport{Name: "target/" + t.Name, Plugin: t.Plugin, Status: "skipped",
				Message: "after the rotation: verify only: harden hands it no revocation lists (the service's own trust is outside harden's reach)"})
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, s.timeout)
		r, failed := newRotation(tctx, s, t, rotateOptions{yes: true, handshakes: o.handshakes, gateTimeout: o.gateTimeout}, s.io)
		var tr rotateTargetReport
		if failed != nil {
			tr = *failed
		} else {
			bundle := r.iss.CA.CABundlePEM
			tr = r.pushBundle(tctx, bundle, bundle, "", "")
			tr.Steps = r.steps
		}
		cancel()
		tr.Name, tr.Plugin = "target/"+t.Name, t.Plugin
		tr.Message = "after the rotation: " + tr.Message
		rep.Targets = append(rep.Targets, tr)
		if tr.Status != "renewed" && tr.Status != "skipped" {
			ok = false
		}
	}
	return ok
}

// caItems: targets first, then clients, in policy order.
func caItems(targets []policy.Target, clients []policy.Client) []string {
	var out []string
	for _, t := range targets {
		out = append(out, "target/"+t.Name)
	}
	for _, c := range clients {
		out = append(out, "client/"+c.Name)
	}
	return out
}

// caTargetStep runs one target's step of phase (forward or, aborting,
// backward).
func caTargetStep(ctx context.Context, s *session, st *rotate.CAState, phase string, t policy.Target, o rotateOptions) rotateTargetReport {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, failed := newRotation(tctx, s, t, rotateOptions{yes: true, handshakes: o.handshakes, gateTimeout: o.gateTimeout}, s.io)
	if failed != nil {
		return *failed
	}
	var rep rotateTargetReport
	switch {
	case r.p.VerifyOnly():
		rep = r.caClientOnly(tctx, st, phase)
	case phase == rotate.PhaseTrust && !st.Aborting:
		rep = r.pushBundle(tctx, st.BundleBefore(rotate.PhaseTrust), st.PhaseBundle(rotate.PhaseTrust), "next", sdk.OutcomeAccepted)
	case phase == rotate.PhaseTrust:
		rep = r.pushBundle(tctx, st.PhaseBundle(rotate.PhaseTrust), st.BundleBefore(rotate.PhaseTrust), "", "")
	case phase == rotate.PhaseRetire && !st.Aborting:
		rep = r.pushBundle(tctx, st.BundleBefore(rotate.PhaseRetire), st.PhaseBundle(rotate.PhaseRetire), "current", sdk.OutcomeRefused)
	case phase == rotate.PhaseRetire:
		rep = r.pushBundle(tctx, st.PhaseBundle(rotate.PhaseRetire), st.BundleBefore(rotate.PhaseRetire), "", "")
	default:
		// Re-issue from the CA that signs now (the next one, or the
		// current one again when aborting), behind the usual gate.
		r.dueCA = st.NextRoot()
		if st.Aborting {
			r.dueCA = []byte(st.CurrentRootPEM)
		}
		r.bundle = st.PhaseBundle(rotate.PhaseReissue)
		rep = r.run(tctx)
		if rep.Message == "" && rep.Status == "renewed" {
			rep.Message = "re-issued from the CA that signs now"
		}
		if rep.Status == "renewed" || rep.Status == "not_due" {
			// Listeners that take the new leaf only on restart are
			// restarted now: the retire phase would cut them off.
			cur := mustCurrent(r, "server")
			rc := r.material(cur, r.clientPair())
			if err := r.settle(tctx, rc); err != nil {
				rep.Status, rep.Message = "error", err.Error()
			} else if v := r.gate(tctx, rc, rotate.Leaf(cur), nil); !v.OK {
				rep.Status, rep.Message = "error", "after the restarts: verify gate failed: "+v.String()
			} else {
				rep.Gate, rep.Pending = v.String(), nil
			}
		}
	}
	rep.Plugin = t.Plugin
	rep.Steps = r.steps
	return rep
}

func caClientStep(ctx context.Context, s *session, st *rotate.CAState, phase string, cl policy.Client, o rotateOptions) rotateTargetReport {
	oo := rotateOptions{yes: true}
	var ca clientCA
	switch phase {
	case rotate.PhaseReissue:
		ca.dueCA = st.NextRoot()
		if st.Aborting {
			ca.dueCA = []byte(st.CurrentRootPEM)
		}
	case rotate.PhaseTrust:
		ca.redeliver = "the trust bundle gains the next CA"
		if st.Aborting {
			ca.redeliver = "the trust bundle loses the next CA"
		}
	case rotate.PhaseRetire:
		ca.redeliver = "the trust bundle drops the old CA"
		if st.Aborting {
			ca.redeliver = "the trust bundle takes the old CA back"
		}
	}
	r := rotateClientCA(ctx, s, cl, oo, ca)
	r.Plugin = "client"
	return r
}

func mustCurrent(r *rotation, kind string) certstore.Pair {
	p, _ := r.iss.Store.Current(kind)
	return p
}

func (r *rotation) clientPair() certstore.Pair {
	if !r.iss.Client {
		return certstore.Pair{}
	}
	p, _ := r.iss.Store.Current("client")
	return p
}

// pushBundle moves one target from bundle before to bundle after, keeping
// its certificate: nothing else may be pending, the gate must see its
// certificate served with a chain the new bundle accepts, listeners that
// take the bundle only on restart are restarted, and — for a target that
// requires client certificates — a client certificate issued by proofCA
// must get the outcome expect (the next CA let in; the old one refused).
// On failure the old bundle is pushed back and gated.
func (r *rotation) pushBundle(ctx context.Context, before, after []byte, proofCA, expect string) rotateTargetReport {
	var rep rotateTargetReport
	unlock, err := r.iss.Store.Lock()
	if err != nil {
		return rotateTargetReport{Status: "refused", Message: err.Error()}
	}
	defer unlock()
	cur := mustCurrent(r, "server")
	client := r.clientPair()
	if !cur.Valid() {
		return rotateTargetReport{Status: "refused", Message: "no certificate issued for this target yet: run harden apply first"}
	}
	r.bundle = after
	afterRC := r.material(cur, client)
	done := r.step("what is live (inventory)")
	inv, err := r.p.Client.Inventory(ctx, afterRC, 1)
	done()
	if err != nil {
		return rotateTargetReport{Status: "error", Message: "inventory: " + err.Error()}
	}
	switch live, why := whatIsLive(inv, cur, certstore.Pair{}); live {
	case "unmanaged":
		return rotateTargetReport{Status: "skipped", Message: why}
	case "current":
	default:
		return rotateTargetReport{Status: "refused", Message: why}
	}
	r.listeners = listenerNames(inv)
	planAfter, err := r.p.Client.Plan(ctx, afterRC)
	if err == nil && planAfter.Diagnostics.HasError() {
		err = planAfter.Diagnostics.Err()
	}
	if err != nil {
		return rotateTargetReport{Status: "error", Message: "plan: " + err.Error()}
	}
	r.bundle = before
	beforeRC := r.material(cur, client)
	if len(planAfter.Changes) > 0 {
		planBefore, err := r.p.Client.Plan(ctx, beforeRC)
		if err == nil && planBefore.Diagnostics.HasError() {
			err = planBefore.Diagnostics.Err()
		}
		if err != nil {
			return rotateTargetReport{Status: "error", Message: "plan: " + err.Error()}
		}
		if other := notMaterial(planBefore.Changes); len(other) > 0 {
			rep = rotateTargetReport{Status: "refused", Message: fmt.Sprintf("%d pending change(s) besides certificate material: run harden plan and harden apply first; nothing was changed", len(other))}
			rep.Changes = report.Changes(other)
			return rep
		}
		changes, err := r.push(ctx, afterRC)
		rep.Changes = report.Changes(changes)
		if err != nil {
			return r.backTo(ctx, beforeRC, cur, rep, "apply of the new trust bundle failed (the plugin rolled its step back): "+err.Error())
		}
	}
	if err := r.settle(ctx, afterRC); err != nil {
		return r.backTo(ctx, beforeRC, cur, rep, err.Error())
	}
	v := r.gate(ctx, afterRC, rotate.Leaf(cur), nil)
	if !v.OK {
		return r.backTo(ctx, beforeRC, cur, rep, "verify gate failed: "+v.String())
	}
	rep.Gate = v.String()
	if proofCA != "" && r.s.pol.Context().InMTLSScope(r.t.Name) {
		proof, err := r.proveClientTrust(ctx, cur, proofCA, expect)
		if err != nil {
			return r.backTo(ctx, beforeRC, cur, rep, err.Error())
		}
		rep.Gate += "; " + proof
	}
	rep.Status, rep.Message = "renewed", "trust bundle pushed"
	return rep
}

// backTo pushes the old bundle back after a failed step and gates it.
func (r *rotation) backTo(ctx context.Context, beforeRC sdk.RequestContext, cur certstore.Pair, rep rotateTargetReport, failure string) rotateTargetReport {
	// On a context of its own, bounded, that Ctrl-C does not end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.timeout)
	defer cancel()
	done := r.io.interrupts.applying(r.t.Name)
	defer done()
	if _, err := r.push(ctx, beforeRC); err != nil {
		rep.Status, rep.Message = "error", failure+"; pushing the previous trust bundle back failed too: "+err.Error()
		return rep
	}
	_ = r.settle(ctx, beforeRC)
	if v := r.gate(ctx, beforeRC, rotate.Leaf(cur), nil); !v.OK {
		rep.Status, rep.Message = "error", failure+"; after pushing the previous trust bundle back the gate still fails: "+v.String()
		return rep
	}
	rep.Status, rep.Message = "rolled_back", failure+"; the previous trust bundle is in place again"
	return rep
}

func allRestarts(cs []sdk.Change) bool {
	for _, c := range cs {
		if !c.RequiresRestart {
			return false
		}
	}
	return len(cs) > 0
}

// settle performs what the plan still lists after a push when all of it
// is restarts (listeners that take new material only then: a CA rotation
// cannot leave them behind), then requires an empty plan.
func (r *rotation) settle(ctx context.Context, rc sdk.RequestContext) error {
	defer r.step("restarts the listeners need (plan, apply)")()
	for range 2 {
		plan, err := r.p.Client.Plan(ctx, rc)
		if err == nil && plan.Diagnostics.HasError() {
			err = plan.Diagnostics.Err()
		}
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		if len(plan.Changes) == 0 {
			return nil
		}
		if !allRestarts(plan.Changes) || len(notMaterial(plan.Changes)) > 0 {
			var left []string
			for _, c := range plan.Changes {
				left = append(left, string(c.Action)+" "+c.Resource)
			}
			return fmt.Errorf("after the push the plan still has %d change(s): %s", len(left), strings.Join(left, ", "))
		}
		if _, err := r.push(ctx, rc); err != nil {
			return fmt.Errorf("the restarts the listeners need: %w", err)
		}
	}
	return errors.New("the plan still lists restarts after they were done")
}

// proveClientTrust issues a short-lived client certificate from issuer
// ("next" or "current") for harden's client name and requires every
// handshake on every listener to end with expect: accepted (the target
// trusts that CA) or refused in the server's own words (it does not). An
// inconclusive answer proves nothing and fails.
func (r *rotation) proveClientTrust(ctx context.Context, cur certstore.Pair, issuer, expect string) (string, error) {
	defer r.step("client certificate from the " + issuer + " CA (inventory)")()
	name := r.s.pol.Certificates.VaultClientName
	key, csr, err := certstore.NewKeyAndCSR(name, nil)
	if err != nil {
		return "", err
	}
	chain, err := r.iss.SignerFrom(issuer, "client", name, nil)(csr)
	if err != nil {
		return "", fmt.Errorf("a client certificate from the %s CA: %w", issuer, err)
	}
	what := "a client certificate from the " + issuer + " CA"
	n, err := r.clientOutcome(ctx, r.material(cur, certstore.Pair{Chain: chain, Key: key}), what, expect, 2)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s was %s in %d handshake(s)", what, expect, n), nil
}

// clientOutcome requires want conclusive handshakes on every listener, each
// ending with expect for the client certificate rc carries (what names it):
// accepted (and the server asked for a certificate: otherwise acceptance
// proves nothing about it) or refused in the server's own words. A
// conclusive other answer fails at once. An inconclusive handshake (a TLS
// 1.3 server that resets right after its alert) is retried, at most three
// rounds, as the probe retries transient failures — it is never counted as
// the answer. It returns the number of handshakes that answered expect.
func (r *rotation) clientOutcome(ctx context.Context, rc sdk.RequestContext, what, expect string, want int) (int, error) {
	seen := map[string]int{}
	var names []string
	var last string
	for round := 0; round < 3; round++ {
		inv, err := r.p.Client.Inventory(ctx, rc, want)
		if err == nil && inv.Diagnostics.HasError() {
			err = inv.Diagnostics.Err()
		}
		if err != nil {
			return 0, fmt.Errorf("inventory with %s: %w", what, err)
		}
		short := false
		for _, l := range inv.Listeners {
			if l.Error != "" {
				return 0, fmt.Errorf("listener %s at %s: %s", l.Name, l.Address, l.Error)
			}
			if _, ok := seen[l.Name]; !ok {
				names = append(names, l.Name)
				seen[l.Name] = 0
			}
			for i, h := range l.Handshakes {
				switch h.Outcome {
				case expect:
					if expect == sdk.OutcomeAccepted && !h.ClientCertRequested {
						return 0, fmt.Errorf("listener %s at %s, handshake %d: the server never asked for a client certificate, so its acceptance proves nothing about %s", l.Name, l.Address, i+1, what)
					}
					seen[l.Name]++
				case sdk.OutcomeInconclusive:
					last = fmt.Sprintf("listener %s at %s, handshake %d: %s", l.Name, l.Address, i+1, h.Evidence)
				default:
					return 0, fmt.Errorf("listener %s at %s, handshake %d: %s was %s, want %s (%s)", l.Name, l.Address, i+1, what, h.Outcome, expect, h.Evidence)
				}
			}
			if seen[l.Name] < want {
				short = true
			}
		}
		if !short && len(names) > 0 {
			break
		}
	}
	for _, name := range r.listeners {
		if _, ok := seen[name]; !ok {
			return 0, fmt.Errorf("%s: listener %s was live and is not reported", what, name)
		}
	}
	n := 0
	for _, name := range names {
		if seen[name] < want {
			return 0, fmt.Errorf("%s: listener %s answered %s in only %d of the %d conclusive handshakes needed (last inconclusive: %s)", what, name, expect, seen[name], want, last)
		}
		n += seen[name]
	}
	if n == 0 {
		return 0, fmt.Errorf("no handshake observed with %s", what)
	}
	return n, nil
}
