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
	// The lock first: no other apply may change redis between the read
	// the plan token is checked against and this run's steps.
	sess, ok := applykit.AcquireAt("redis", "redis "+t.conn.Address, t.journalPaths, &r.Diagnostics)
	if !ok {
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

// recoverAndReplan rolls a killed run back and reads the plan anew from
// the restored state. The journal stays: Begin resumes it, with the same
// start state. The order keeps what redis serves and what the files hold
// together at every point where it can stop:
//
//  1. port and tls-port as before the run, in one CONFIG SET (all or
//     nothing; changing a port does not reload the certificate files). It
//     fails when redis cannot listen on the old port again — another
//     process took it. Then nothing is put back: redis keeps serving TLS
//     with the files on disk, the journal stays, and every retry stops
//     here until the port is free. Restoring the files first would leave
//     a running TLS port with certificate paths that no longer hold what
//     it loaded (those the run created: removed).
//  2. the files from the journal's backups.
//  3. every managed setting as before the run, in one CONFIG SET: with
//     TLS on before, the tls-*-file settings reload the restored files (a
//     run killed between two file writes leaves a certificate and a key
//     that do not match: loading them before the restore would fail).
//  4. CONFIG REWRITE.
func recoverAndReplan(ctx context.Context, q sdk.RequestContext, t *target, sess *applykit.Session, notice string, r *sdk.ApplyResponse) (*plan, error) {
	j := sess.Journal
	if err := j.Restrict(t.allowed); err != nil {
		return nil, err
	}
	var old, ports []setting
	for _, n := range managed {
		if v, ok := j.State.Data["config."+n]; ok {
			old = append(old, setting{n, v})
			if n == "port" || n == "tls-port" {
				ports = append(ports, setting{n, v})
			}
		}
	}
	c, err := t.manage(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := configSet(ctx, c, ports); err != nil {
		c.Close()
		return nil, portsError(ports, err)
	}
	if errs := j.Restore(); len(errs) > 0 {
		c.Close()
		return nil, fmt.Errorf("restore files (port and tls-port are as before the killed run): %w", errors.Join(errs...))
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

// portsError is step 1's failure: which old port redis could not listen
// on again, from CONFIG SET's "possibly related to argument 'port'" (that
// another process has it is a guess: a port below 1024 without the
// privilege fails the same way), and that the files were left alone.
func portsError(ports []setting, err error) error {
	for _, s := range ports {
		if containsFold(err.Error(), "argument '"+s.name+"'") && containsFold(err.Error(), "unable to listen") {
			// The run moved this port, so it got past the files and the
			// TLS port loaded them.
			return fmt.Errorf("redis cannot listen on its %s %s again, as before the killed run (is it taken by another process?): %w; the certificate files were left as they are (what redis's TLS port loaded): free the port, then run harden apply again", s.name, s.value, err)
		}
	}
	return fmt.Errorf("set %s as before the killed run: %w; the certificate files were not touched", (&plan{}).listed(ports), err)
}
