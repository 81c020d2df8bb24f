package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Apply brings redis to the policy in steps that never lock the operator
// out: the certificate files (atomically, as cert_dir's owner, each backed
// up in the journal first), the tls-* settings in one CONFIG SET, the TLS
// port, then a NEW TLS login verified with the policy's CA — only then the
// plaintext port closed (port 0) and CONFIG REWRITE. A failing step, or
// Ctrl-C (the host's Stop cancels ctx) at a step boundary, undoes this
// run's steps newest first (applykit's runner): CONFIG SET of the values
// read before, the files restored from the journal. The journal (harden's
// state directory, under a lock) holds the settings' values before the
// run, so a killed run is rolled back by the next apply before it plans
// anew. A second apply finds nothing to change and touches nothing.
func (redisTLS) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	jp, lp, err := t.journalPaths()
	if err != nil {
		r.Diagnostics.AddTargetError("redis.apply.journal", "no place for the apply journal; nothing was changed", err)
		return
	}
	// The lock first: no other apply may change redis between the read
	// the plan token is checked against and this run's steps.
	sess, err := applykit.Acquire(jp, lp)
	if err != nil {
		applykit.Locked("redis", "redis "+t.conn.Address, err, &r.Diagnostics)
		return
	}
	p, err := readPlan(ctx, q.RequestContext, t)
	if err != nil {
		sess.Release()
		r.Diagnostics.AddTargetError("redis.apply", "cannot read redis's state; nothing was changed", err)
		return
	}
	notice := ""
	if sess.Interrupted != nil {
		notice = applykit.Describe(*sess.Interrupted)
	}
	// The plan the operator approved was read from this state (a killed
	// run's, with its notice, when there is one).
	if !applykit.PlanCurrent(&r.Diagnostics, q.PlanToken, token(p, notice), "redis "+t.conn.Address) {
		p.c.Close()
		sess.Release()
		return
	}
	if sess.Interrupted != nil {
		p.c.Close()
		if p, err = recoverAndReplan(ctx, q.RequestContext, t, sess, notice, r); err != nil {
			sess.Keep()
			r.Diagnostics.AddTargetError("redis.apply.interrupted", notice+"; rolling it back failed (journal kept, the next apply retries)", err)
			return
		}
	}
	defer p.c.Close()
	if len(p.steps) == 0 {
		if err := sess.Done(); err != nil {
			r.Diagnostics.AddTargetError("redis.apply.journal", "nothing to change, but the journal could not be removed", err)
		}
		return // idempotent: nothing to do, nothing touched
	}
	var intent []string
	for _, s := range p.steps {
		if s.Change.Resource != "" {
			intent = append(intent, s.Change.Resource)
		}
	}
	data := map[string]string{}
	for _, n := range managed {
		data["config."+n] = p.config[n]
	}
	if err := sess.Begin(applykit.State{Plugin: "redis", Target: t.name, Phase: "begun", Intent: intent, Data: data}); err != nil {
		sess.Release()
		r.Diagnostics.AddTargetError("redis.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	if err := sess.Journal.Restrict(t.allowed); err != nil {
		sess.Keep()
		r.Diagnostics.AddTargetError("redis.apply.journal", "the apply journal names a file this plugin does not write; nothing was changed", err)
		return
	}
	p.journal = sess.Journal
	applied, err := sess.RunSteps(ctx, p.steps, applykit.StepOptions{Rollback: p.reloadOld, Hook: stepHook})
	var se *applykit.StepError
	switch {
	case errors.As(err, &se):
		se.Report("redis", &r.Diagnostics)
		return
	case err != nil:
		r.Diagnostics.AddTargetError("redis.apply.journal", "applied, but the journal could not be removed", err)
	}
	r.Applied = applied
	transientWarning(t, &r.Diagnostics)
}

// stepHook is called at every step boundary (tests cancel the context
// there, as the host's Stop does).
var stepHook func(phase string)

// recoverAndReplan rolls a killed run back — the files from the journal's
// backups, then every managed setting to its value before that run in one
// CONFIG SET (all or nothing), then CONFIG REWRITE — and reads the plan
// anew from the restored state. The journal stays: Begin resumes it, with
// the same start state.
func recoverAndReplan(ctx context.Context, q sdk.RequestContext, t *target, sess *applykit.Session, notice string, r *sdk.ApplyResponse) (*plan, error) {
	j := sess.Journal
	if err := j.Restrict(t.allowed); err != nil {
		return nil, err
	}
	if errs := j.Restore(); len(errs) > 0 {
		return nil, fmt.Errorf("restore files: %w", errors.Join(errs...))
	}
	c, err := t.manage(ctx, q)
	if err != nil {
		return nil, err
	}
	var old []setting
	for _, n := range managed {
		if v, ok := j.State.Data["config."+n]; ok {
			old = append(old, setting{n, v})
		}
	}
	err = configSet(ctx, c, old)
	if err == nil && t.spec.ConfigFile != "" {
		_, err = c.do(ctx, "CONFIG", "REWRITE")
	}
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("set the settings from before the killed run: %w", err)
	}
	r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "redis.apply.interrupted",
		Summary: notice + "; rolled back to the settings before it, then applied anew"})
	return readPlan(ctx, q, t)
}
