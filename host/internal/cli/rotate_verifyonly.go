package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// runClientOnly rotates a verify-only target (engine.Plugin.VerifyOnly: the
// service plugin) in the mTLS scope. Its server certificate is the
// application's own — harden neither issues nor deploys it — so the one
// certificate harden renews there is its own client certificate, which
// verify presents to prove that a trusted client gets in. Nothing is
// pushed: the gate is live all the same — in consecutive fresh handshakes
// on every listener the server must ask for a client certificate and let
// harden in with the renewed one. A gate that fails puts the previous
// certificate back in the store (the server never saw a change). The
// renewed pair is marked pending until its gate passes, so a run killed in
// between is gated again by the next one.
func (r *rotation) runClientOnly(ctx context.Context) rotateTargetReport {
	store := r.iss.Store
	if !r.iss.Client {
		return rotateTargetReport{Status: "skipped", Message: verifyOnlyNothing}
	}
	unlock, err := store.Lock()
	if err != nil {
		return rotateTargetReport{Status: "refused", Message: err.Error()}
	}
	defer unlock()
	now := r.now()
	cur, err := store.Current("client")
	prev, perr := store.Previous("client")
	if err := errors.Join(err, perr); err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	if len(cur.Chain)+len(cur.Key) == 0 && !prev.Valid() {
		return rotateTargetReport{Status: "refused", Message: "verify only, in the mTLS scope: no client certificate issued for harden yet: run harden apply first"}
	}
	n := renewalReport{Kind: "client", OldSerial: serialOf(cur)}
	next := certstore.Pair{}
	n.Reason = rotate.Due(cur, r.want("client"), store.RenewBefore, now)
	switch {
	case n.Reason == "" && store.Pending("client") && cur.Valid():
		// A run stopped after the store took the renewed pair and before
		// its gate passed: gate it now.
		n.Reason, next, n.OldSerial = "resuming an interrupted rotation", cur, serialOf(prev)
	case n.Reason == "" && r.o.force:
		n.Reason = "--force-renew"
	}
	if n.Reason == "" {
		rep := rotateTargetReport{Status: "not_due"}
		if l := rotate.Leaf(cur); l != nil {
			rep.Message = fmt.Sprintf("verify only: harden's client certificate serial %s valid until %s, renew at %s (the server certificate is the service's own)",
				rotate.Serial(l), l.NotAfter.UTC().Format(time.RFC3339), l.NotAfter.Add(-store.RenewBefore).UTC().Format(time.RFC3339))
		}
		return rep
	}
	if r.o.dryRun {
		return rotateTargetReport{Status: "would_renew", Renewed: []renewalReport{n}}
	}
	if !r.o.yes {
		if ok, why := r.confirm(ctx, n); !ok {
			return rotateTargetReport{Status: "refused", Message: why}
		}
	}
	// What a failed gate puts back: the pair before this rotation — after
	// an interrupted one, the previous pair, not the unproven current one.
	replaced := cur
	if store.Pending("client") || !cur.Valid() {
		replaced = prev
	}
	if next.Chain == nil {
		done := r.step("issue")
		next, err = r.issue("client")
		done()
		if err != nil {
			return rotateTargetReport{Status: "error", Message: "renewing harden's client certificate: " + err.Error() + "; nothing was changed"}
		}
		if err := store.Stage("client", next, replaced); err != nil {
			return rotateTargetReport{Status: "error", Message: err.Error()}
		}
	}
	if err := store.MarkPending("client", serialOf(next)); err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	applykit.Crash("host", "rotate-staged")
	r.fill(&n, next)
	rep := rotateTargetReport{Renewed: []renewalReport{n}}
	done := r.step("gate: harden logs in with the renewed client certificate (inventory)")
	got, gerr := r.clientOutcome(ctx, r.material(certstore.Pair{}, next), "harden's renewed client certificate", sdk.OutcomeAccepted, r.o.handshakes)
	done()
	if gerr == nil {
		if err := store.ClearPending("client"); err != nil {
			rep.Status, rep.Message = "error", err.Error()
			return rep
		}
		rep.Status = "renewed"
		rep.Message = "verify only: harden's own client certificate renewed (the server certificate is the service's own)"
		rep.Gate = fmt.Sprintf("harden's renewed client certificate was accepted in %d handshake(s)", got)
		return rep
	}
	failure := "verify gate failed: " + gerr.Error()
	rep.Gate = gerr.Error()
	if !replaced.Valid() {
		rep.Status, rep.Message = "error", failure+"; there was no usable previous client certificate, so the renewed one stays in the store (serial "+serialOf(next)+")"
		return rep
	}
	if err := store.Restore("client"); err != nil {
		rep.Status, rep.Message = "error", failure+"; putting the previous client certificate back failed: "+err.Error()
		return rep
	}
	if err := store.ClearPending("client"); err != nil {
		rep.Status, rep.Message = "error", failure+"; "+err.Error()
		return rep
	}
	// Nothing was pushed, so the service is as it was: the previous
	// certificate is checked to still let harden in, as a rollback is.
	back := r.step("gate: harden logs in with the previous client certificate (inventory)")
	_, berr := r.clientOutcome(ctx, r.material(certstore.Pair{}, replaced), "the previous client certificate", sdk.OutcomeAccepted, r.o.handshakes)
	back()
	if berr != nil {
		rep.Status, rep.Message = "error", failure+"; the previous client certificate (serial "+serialOf(replaced)+") is current again, but it does not get in either: "+berr.Error()
		return rep
	}
	rep.Status, rep.Message = "rolled_back", failure+"; the previous client certificate (serial "+serialOf(replaced)+") is current again and still gets in (nothing was pushed: the service never saw a change)"
	return rep
}

// caClientOnly is a verify-only target's step of a staged CA rotation.
// harden hands such a target no trust bundle, no server certificate and no
// revocation list — the service's trust is its own — so the trust and
// retire phases have nothing to do there. In the mTLS scope the reissue
// phase re-issues harden's own client certificate for it from the CA that
// signs now (the current one again when aborting), behind runClientOnly's
// live gate: a service that does not trust the next CA yet refuses it,
// the previous certificate is put back and the phase stops there, before
// the retire phase could cut harden off.
func (r *rotation) caClientOnly(ctx context.Context, st *rotate.CAState, phase string) rotateTargetReport {
	const outside = "verify only: the service's own trust is outside harden's reach"
	switch {
	case !r.iss.Client:
		return rotateTargetReport{Status: "skipped", Message: verifyOnlyNothing}
	case phase == rotate.PhaseReissue:
		r.dueCA = st.NextRoot()
		if st.Aborting {
			r.dueCA = []byte(st.CurrentRootPEM)
		}
		r.bundle = st.PhaseBundle(rotate.PhaseReissue)
		rep := r.runClientOnly(ctx)
		if rep.Status == "rolled_back" && !st.Aborting {
			rep.Message += "; the service must trust the next CA for client certificates (its own setting) before harden's client certificate can move to it: then run harden rotate --ca again, or --abort"
		}
		return rep
	case phase == rotate.PhaseTrust && !st.Aborting:
		return rotateTargetReport{Status: "skipped", Message: outside + ": before phase reissue it must trust the next CA for client certificates, or harden's client certificate re-issued from it is refused (and put back)"}
	case phase == rotate.PhaseRetire && !st.Aborting:
		return rotateTargetReport{Status: "skipped", Message: outside + ": once the rotation is done it may stop trusting the old CA"}
	}
	return rotateTargetReport{Status: "skipped", Message: outside + ": nothing to put back in this phase"}
}
