package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Apply writes the files harden owns and switches the proxy over, never
// half-way:
//
//  1. refused before anything changes when the proxy has no reload path
//     or its own test (nginx -t, haproxy -c) fails on the files as they
//     are — the operator's configuration is broken, and harden would not
//     know what its reload did;
//  2. each file backed up in the journal, then replaced atomically (the
//     certificate material first, the include last);
//  3. the proxy's own test of the new files;
//  4. the reload (nginx: its new workers must start);
//  5. the gate: fresh handshakes on the front serve the new certificate.
//
// A failure at 2-5, or Ctrl-C at a step boundary, restores every file
// from the journal and, when the proxy had been reloaded, reloads it
// again: the proxy serves what it served before. A killed run is rolled
// back by the next apply first. A second apply finds every file as
// rendered and touches nothing (no reload either).
func (proxyTLS) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if err := t.reloadPath(); err != nil {
		r.Diagnostics.AddTargetError("proxy.apply.reload_path", "apply refused; nothing was changed", err)
		return
	}
	what := t.conn.Kind + " " + t.spec.IncludeFile
	sess, ok := applykit.AcquireAt("proxy", what, t.journalPaths, &r.Diagnostics)
	if !ok {
		return
	}
	p, err := readPlan(q.RequestContext, t)
	if err != nil {
		sess.Release()
		r.Diagnostics.AddTargetError("proxy.apply", "cannot read the files harden owns; nothing was changed", err)
		return
	}
	notice := ""
	if sess.Interrupted != nil {
		notice = applykit.Describe(*sess.Interrupted)
	}
	if !applykit.PlanCurrent(&r.Diagnostics, q.PlanToken, token(p, notice), what) {
		sess.Release()
		return
	}
	if sess.Interrupted != nil {
		if p, err = recoverAndReplan(ctx, q.RequestContext, t, sess, notice, r); err != nil {
			sess.Keep()
			r.Diagnostics.AddTargetError("proxy.apply.interrupted", notice+"; rolling it back failed (journal kept, the next apply retries)", err)
			return
		}
	}
	if len(p.steps) == 0 {
		if err := sess.Done(); err != nil {
			r.Diagnostics.AddTargetError("proxy.apply.journal", "nothing to change, but the journal could not be removed", err)
		}
		return // idempotent: nothing to do, nothing touched
	}
	var intent []string
	for _, s := range p.steps {
		if s.Change.Resource != "" {
			intent = append(intent, s.Change.Resource)
		}
	}
	if err := sess.Begin(applykit.State{Plugin: "proxy", Target: t.name, Phase: "begun", Intent: intent}); err != nil {
		sess.Release()
		r.Diagnostics.AddTargetError("proxy.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	if err := sess.Journal.Restrict(t.allowed); err != nil {
		sess.Keep()
		r.Diagnostics.AddTargetError("proxy.apply.journal", "the apply journal names a file this plugin does not write; nothing was changed", err)
		return
	}
	p.journal = sess.Journal
	applied, err := sess.RunSteps(ctx, p.steps, applykit.StepOptions{
		// The operator's configuration must pass the proxy's own test as
		// it is, before harden changes anything.
		Preflight: func(ctx context.Context, _ []applykit.Step) error { return t.flavor.test(ctx, t) },
		Rollback:  p.rollback, Hook: stepHook})
	var se *applykit.StepError
	switch {
	case errors.Is(err, applykit.ErrPreflight):
		r.Diagnostics.AddTargetError("proxy.apply.config_invalid", "the proxy's configuration fails its own test before harden changes anything; nothing was changed", err)
		return
	case errors.As(err, &se):
		se.Report("proxy", &r.Diagnostics)
		return
	case err != nil:
		r.Diagnostics.AddTargetError("proxy.apply.journal", "applied, but the journal could not be removed", err)
	}
	r.Applied = applied
	skippedGroupsWarning(q.Policy.Profile, &r.Diagnostics)
}

// stepHook is called at every step boundary (tests cancel there, as the
// host's Stop does).
var stepHook func(phase string)

// recoverAndReplan rolls a killed run back — the files from the journal's
// backups (those it created removed), then a reload so the proxy serves
// them — and reads the plan anew. The journal stays: Begin resumes it.
func recoverAndReplan(ctx context.Context, q sdk.RequestContext, t *target, sess *applykit.Session, notice string, r *sdk.ApplyResponse) (*plan, error) {
	j := sess.Journal
	if err := j.Restrict(t.allowed); err != nil {
		return nil, err
	}
	if errs := j.Restore(); len(errs) > 0 {
		return nil, fmt.Errorf("restore the files: %w", errors.Join(errs...))
	}
	if err := t.flavor.reload(ctx, t); err != nil {
		return nil, fmt.Errorf("the files are restored; reloading them: %w", err)
	}
	r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "proxy.apply.interrupted",
		Summary: notice + "; its files were restored and the proxy reloaded, then the policy applied anew"})
	return readPlan(q, t)
}
