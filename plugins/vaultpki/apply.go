package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	st0, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	jp, lp, err := st0.journalPaths()
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "no place for the apply journal; nothing was changed", err)
		return
	}
	// The lock comes first: no other apply may change Vault between the
	// read the plan token is checked against and this run's steps.
	sess, err := applykit.Acquire(jp, lp)
	if errors.Is(err, applykit.ErrLocked) {
		r.Diagnostics.AddTargetError("vaultpki.apply.locked", "another harden apply is running on this Vault; nothing was changed", err)
		return
	}
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "cannot take the apply lock or read the journal; nothing was changed", err)
		return
	}
	_, cl, steps, ok := planSteps(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		sess.Done()
		return
	}
	notice := ""
	if sess.Interrupted != nil {
		notice = applykit.Describe(*sess.Interrupted)
	}
	if len(q.PlanToken) > 0 && string(q.PlanToken) != string(token(steps, notice)) {
		sess.Done()
		r.Diagnostics.AddTargetError("vaultpki.plan_stale", "Vault changed since the plan was made", errors.New("run harden plan again"))
		return
	}
	if len(steps) == 0 && sess.Interrupted == nil {
		sess.Done()
		return // idempotent: nothing to do, nothing touched
	}
	if err := checkCapabilities(ctx, cl, steps); err != nil {
		sess.Done()
		r.Diagnostics.AddTargetError("vaultpki.capabilities", "apply refused", err)
		return
	}
	intent := make([]string, 0, len(steps))
	for _, s := range steps {
		intent = append(intent, s.change.Resource)
	}
	if err := sess.Begin(applykit.State{Plugin: "vaultpki", Target: q.Target.Name, Phase: "begun", Intent: intent}); err != nil {
		sess.Done()
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	if sess.Interrupted != nil {
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.interrupted",
			Summary: notice + "; this apply completes it"})
	}
	for i, s := range steps {
		err := atStep(ctx, sess, fmt.Sprintf("step-%d", i+1))
		if err == nil {
			err = s.apply(ctx)
		}
		if err != nil {
			var undoErrs []string
			for j := i - 1; j >= 0; j-- {
				if steps[j].undo != nil {
					uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					uerr := steps[j].undo(uctx)
					cancel()
					if uerr != nil {
						undoErrs = append(undoErrs, steps[j].change.Resource+": "+uerr.Error())
					}
				}
			}
			code, what := "vaultpki.apply", "apply failed"
			if ctx.Err() != nil {
				code, what = "vaultpki.apply.interrupted", "apply was interrupted"
			}
			msg := fmt.Errorf("%s: %w; this run's earlier changes were undone", s.change.Resource, err)
			if len(undoErrs) > 0 {
				msg = fmt.Errorf("%s: %w; undoing FAILED for: %s", s.change.Resource, err, strings.Join(undoErrs, "; "))
				sess.Keep() // the next apply sees the journal
			} else if derr := sess.Done(); derr != nil {
				msg = errors.Join(msg, derr)
			}
			r.Diagnostics.AddTargetError(code, what, msg)
			r.Applied = nil
			return
		}
		r.Applied = append(r.Applied, s.change)
	}
	if err := atStep(ctx, sess, "done"); err != nil && ctx.Err() == nil {
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "applied, but the journal could not be written", err)
	}
	if err := sess.Done(); err != nil {
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "applied, but the journal could not be removed", err)
	}
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
