package main

import (
	"context"
	"errors"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	vault "github.com/hashicorp/vault/api"
)

// Apply runs the steps in order after a capability pre-flight; a failure
// undoes this run's steps, newest first. Nothing destructive: CAs are
// never re-generated, keys never deleted. An intent journal (per Vault and
// mounts, under a lock) is durable before the first step; each of Vault's
// writes is atomic, so a run killed between two steps leaves the earlier
// ones done: the next plan and verify say so, and the next apply completes
// the rest. Ctrl-C (the host's Stop) undoes this run's steps at the next
// boundary.
func (vaultPKI) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// The lock comes first: no other apply may change Vault between the
	// read the plan token is checked against and this run's steps.
	sess, ok := applykit.AcquireAt("vaultpki", "this Vault", st.journalPaths, &r.Diagnostics)
	if !ok {
		return
	}
	unsealAfterKilledRestart(ctx, q.RequestContext, st, sess.Interrupted, &r.Diagnostics)
	cl, steps, ok := planSteps(ctx, q.RequestContext, st, &r.Diagnostics)
	if !ok {
		sess.Release() // a killed run's journal is the record of where it started
		return
	}
	notice := ""
	if sess.Interrupted != nil {
		notice = applykit.Describe(*sess.Interrupted)
	}
	if !applykit.PlanCurrent(&r.Diagnostics, q.PlanToken, token(steps, notice), "Vault") {
		sess.Release()
		return
	}
	if len(steps) == 0 && sess.Interrupted == nil {
		sess.Done()
		return // idempotent: nothing to do, nothing touched
	}
	intent := make([]string, 0, len(steps))
	kit := make([]applykit.Step, 0, len(steps))
	for _, s := range steps {
		intent = append(intent, s.change.Resource)
		kit = append(kit, applykit.Step{Change: s.change, Phase: s.phase, Apply: s.apply, Undo: s.undo})
	}
	if err := sess.Begin(applykit.State{Plugin: "vaultpki", Target: q.Target.Name, Phase: "begun", Intent: intent}); err != nil {
		sess.Release()
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	if err := st.bindListenerJournal(sess.Journal); err != nil {
		sess.Keep()
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "the apply journal names a file this target does not write; nothing was changed", err)
		return
	}
	if sess.Interrupted != nil {
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.interrupted",
			Summary: notice + "; this apply completes it"})
	}
	// The capability pre-flight: a weak token changes nothing.
	preflight := func(ctx context.Context, _ []applykit.Step) error { return checkCapabilities(ctx, cl, steps) }
	applied, err := sess.RunSteps(ctx, kit, applykit.StepOptions{Preflight: preflight, Hook: stepHook})
	var se *applykit.StepError
	switch {
	case errors.Is(err, applykit.ErrPreflight):
		r.Diagnostics.AddTargetError("vaultpki.capabilities", "apply refused", err)
	case errors.As(err, &se):
		se.Report("vaultpki", &r.Diagnostics)
	case err != nil:
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "applied, but the journal could not be removed", err)
	}
	r.Applied = applied
}

// readError reports a failed read of Vault's state; a 403 means the token
// lacks capabilities (nothing was changed).
func readError(d *sdk.Diagnostics, err error) {
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == 403 {
		d.AddTargetError("vaultpki.capabilities", "the Vault token lacks capabilities to read Vault's state; nothing was changed", err)
		return
	}
	d.AddTargetError("vaultpki.read", "cannot read Vault's state", err)
}
