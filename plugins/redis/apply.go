package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Apply brings redis to the policy in steps that never lock the operator
// out: the certificate files (atomically, as cert_dir's owner, each backed
// up in the journal first), the tls-* settings in one CONFIG SET, the TLS
// port, then a NEW TLS login verified with the policy's CA — only then the
// plaintext port closed (port 0) and CONFIG REWRITE. A failing step, or
// Ctrl-C (the host's Stop cancels ctx) at a step boundary, undoes this
// run's steps newest first: CONFIG SET of the values read before, the
// files restored from the journal. The journal (harden's state directory,
// under a lock) holds the settings' values before the run, so a killed run
// is rolled back by the next apply before it plans anew. A second apply
// finds nothing to change and touches nothing.
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
	if errors.Is(err, applykit.ErrLocked) {
		r.Diagnostics.AddTargetError("redis.apply.locked", "another harden apply is running on this redis; nothing was changed", err)
		return
	}
	if err != nil {
		r.Diagnostics.AddTargetError("redis.apply.journal", "cannot take the apply lock or read the journal; nothing was changed", err)
		return
	}
	notice := ""
	if sess.Interrupted != nil {
		notice = applykit.Describe(*sess.Interrupted)
		// The plan the operator approved was read from the killed run's
		// state, with its notice: check the token against that state, then
		// roll back and plan anew.
		if len(q.PlanToken) > 0 && !tokenMatches(ctx, q, t, notice, sess, r) {
			return
		}
		if err := sess.Journal.Restrict(t.allowed); err != nil {
			sess.Keep()
			r.Diagnostics.AddTargetError("redis.apply.journal", "the apply journal names a file this plugin does not write; nothing was changed", err)
			return
		}
		if err := recoverRun(ctx, q.RequestContext, t, sess.Journal); err != nil {
			sess.Keep()
			r.Diagnostics.AddTargetError("redis.apply.interrupted", notice+"; rolling it back failed (journal kept, the next apply retries)", err)
			return
		}
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "redis.apply.interrupted",
			Summary: notice + "; rolled back to the settings before it, then applied anew"})
	}
	p, err := readPlan(ctx, q.RequestContext, t)
	if err != nil {
		sess.Done()
		r.Diagnostics.AddTargetError("redis.apply", "cannot read redis's state; nothing was changed", err)
		return
	}
	defer p.c.Close()
	if len(q.PlanToken) > 0 && sess.Interrupted == nil && string(q.PlanToken) != string(token(p.steps, notice)) {
		sess.Done()
		staleDiagnostic(&r.Diagnostics)
		return
	}
	if len(p.steps) == 0 {
		if err := sess.Done(); err != nil {
			r.Diagnostics.AddTargetError("redis.apply.journal", "nothing to change, but the journal could not be removed", err)
		}
		return // idempotent: nothing to do, nothing touched
	}
	var intent []string
	for _, s := range p.steps {
		for _, c := range s.changes {
			intent = append(intent, c.Resource)
		}
	}
	data := map[string]string{}
	for _, n := range managed {
		data["config."+n] = p.config[n]
	}
	if err := sess.Begin(applykit.State{Plugin: "redis", Target: t.name, Phase: "begun", Intent: intent, Data: data}); err != nil {
		sess.Done()
		r.Diagnostics.AddTargetError("redis.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	if err := sess.Journal.Restrict(t.allowed); err != nil {
		sess.Keep()
		r.Diagnostics.AddTargetError("redis.apply.journal", "the apply journal names a file this plugin does not write; nothing was changed", err)
		return
	}
	p.journal = sess.Journal
	applied, err := run(ctx, sess, p.steps)
	if err != nil {
		var ue *undoError
		code, what := "redis.apply", "apply failed"
		if ctx.Err() != nil {
			code, what = "redis.apply.interrupted", "apply was interrupted"
		}
		if errors.As(err, &ue) {
			sess.Keep() // the next apply rolls back from the journal
		} else if derr := sess.Done(); derr != nil {
			err = errors.Join(err, derr)
		}
		r.Diagnostics.AddTargetError(code, what, err)
		return
	}
	r.Applied = applied
	transientWarning(t, &r.Diagnostics)
	if err := sess.Done(); err != nil {
		r.Diagnostics.AddTargetError("redis.apply.journal", "applied, but the journal could not be removed", err)
	}
}

// undoError: a step failed and undoing an earlier one failed too.
type undoError struct{ msg string }

func (e *undoError) Error() string { return e.msg }

// stepHook runs before each step (tests cancel the context from it).
var stepHook func(phase string)

// run applies the steps in order. Each boundary is marked in the journal
// (with the crash hook) and honours cancellation; on a failure or a
// cancellation it undoes the failed step and every earlier one, newest
// first, on a context Ctrl-C does not cancel.
func run(ctx context.Context, sess *applykit.Session, steps []step) ([]sdk.Change, error) {
	var applied []sdk.Change
	for i, s := range steps {
		if stepHook != nil {
			stepHook(s.phase)
		}
		err := sess.Step(ctx, s.phase)
		if err == nil {
			err = s.apply(ctx)
		}
		if err == nil {
			applied = append(applied, s.changes...)
			continue
		}
		var failed []string
		for j := i; j >= 0; j-- {
			if steps[j].undo == nil {
				continue
			}
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
			uerr := steps[j].undo(uctx)
			cancel()
			if uerr != nil {
				failed = append(failed, steps[j].phase+": "+uerr.Error())
			}
		}
		if len(failed) > 0 {
			return nil, &undoError{fmt.Sprintf("%s: %v; undoing FAILED for: %s (journal kept: the next apply rolls back)", s.phase, err, strings.Join(failed, "; "))}
		}
		return nil, fmt.Errorf("%s: %w; every change of this run was undone (redis is as before)", s.phase, err)
	}
	return applied, nil
}

// recoverRun rolls a killed run back: the files from the journal's
// backups, then every managed setting to its value before that run in one
// CONFIG SET (all or nothing), then CONFIG REWRITE. The journal stays
// (Begin resumes it with the same start state).
func recoverRun(ctx context.Context, q sdk.RequestContext, t *target, j *applykit.Journal) error {
	if errs := j.Restore(); len(errs) > 0 {
		return fmt.Errorf("restore files: %w", errors.Join(errs...))
	}
	c, err := t.manage(ctx, q)
	if err != nil {
		return err
	}
	defer c.Close()
	var old []setting
	for _, n := range managed {
		if v, ok := j.State.Data["config."+n]; ok {
			old = append(old, setting{n, v})
		}
	}
	if err := configSet(ctx, c, old); err != nil {
		return fmt.Errorf("set the settings before the killed run: %w", err)
	}
	if t.spec.ConfigFile != "" {
		if _, err := c.do(ctx, "CONFIG", "REWRITE"); err != nil {
			return err
		}
	}
	return nil
}

func staleDiagnostic(d *sdk.Diagnostics) {
	d.AddTargetError("redis.plan_stale", "redis changed since the plan was made; nothing was changed", errors.New("run harden plan again"))
}

// tokenMatches reads the live state before a recovery and compares its
// plan with the approved token; on a mismatch (or a failed read) it unlocks
// (the journal stays) and says so on r.
func tokenMatches(ctx context.Context, q sdk.ApplyRequest, t *target, notice string, sess *applykit.Session, r *sdk.ApplyResponse) bool {
	p, err := readPlan(ctx, q.RequestContext, t)
	if err != nil {
		sess.Keep()
		r.Diagnostics.AddTargetError("redis.apply", "cannot read redis's state; nothing was changed", err)
		return false
	}
	p.c.Close()
	if string(q.PlanToken) != string(token(p.steps, notice)) {
		sess.Keep()
		staleDiagnostic(&r.Diagnostics)
		return false
	}
	return true
}
