package applykit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// A Step is one change an apply makes, with how to undo it: the unit of
// RunSteps. Apply must be atomic on the target (one API call, one file
// rename), so a run killed between two steps leaves whole steps done.
type Step struct {
	// Change is what the step does, as plan lists it; RunSteps returns the
	// changes of the steps it applied. A zero Change (an internal step,
	// e.g. a confirmation) is not listed.
	Change sdk.Change
	// Phase is the journal phase recorded (and the fault hook's name:
	// HARDEN_CRASH_AT=<plugin>:<Phase>) at the boundary just before Apply;
	// "" is "step-<n>" (n counting from 1).
	Phase string
	// Apply makes the change.
	Apply func(context.Context) error
	// Undo reverts it (nil: nothing to revert, e.g. a read-only check). It
	// runs on a context the request's cancellation does not reach, bounded
	// by StepOptions.UndoTimeout.
	Undo func(context.Context) error
}

// StepOptions adjust RunSteps.
type StepOptions struct {
	// Preflight runs before the first step and before anything changes
	// (Vault's capability check): an error means nothing was changed and is
	// returned wrapping ErrPreflight; the journal of a killed run the
	// session resumed stays.
	Preflight func(context.Context, []Step) error
	// Final is the phase recorded after the last step (Session.RunSteps:
	// "" is "done"; Journal.RunSteps: "" records none). A cancellation
	// that arrives only then does not undo a finished run.
	Final string
	// Rollback, when set, runs after the steps' undos when the run fails:
	// an undo of the whole run rather than of a step — where a killed run
	// that this one resumed started (objectstore), or every file the
	// journal recorded and a reload (postgres: a failed step may have
	// written some of its files). It does not run after a step's undo
	// failed: it assumes the steps are undone, and run over a state where
	// some are not it could mix old and new (redis: the old certificate
	// paths under the new tls-* settings).
	Rollback func(context.Context) error
	// UndoTimeout bounds the whole rollback (default 30 s): it runs after
	// Ctrl-C, on a context the host's Stop does not cancel, and must end.
	UndoTimeout time.Duration
	// Hook, when set, is called at every boundary with its phase (unit
	// tests: cancel the context there, as the host's Stop does).
	Hook func(phase string)
}

// ErrPreflight wraps a Preflight failure: nothing was changed.
var ErrPreflight = errors.New("pre-flight refused the apply; nothing was changed")

// StepError is how RunSteps fails after the pre-flight: the step that
// failed, whether the request was cancelled, and what the rollback did.
type StepError struct {
	// Step is the failed step's resource ("" for a journal write).
	Step string
	// Phase is the boundary or step that failed.
	Phase string
	Err   error
	// Interrupted: the request was cancelled (Ctrl-C, the host's timeout).
	Interrupted bool
	// UndoFailed names the step whose undo failed, with its error (the
	// undo stops there), or the Rollback's or the journal's failure; then
	// the journal is kept (Session.Keep) for the next apply.
	UndoFailed []string
	// StillApplied are the steps this run applied that were not undone
	// (the one whose undo failed, then the older ones, newest first; not
	// the internal steps without an undo, such as a check): the
	// target is in the state after them, a consistent prefix of the run
	// that the next apply resumes from the journal.
	StillApplied []string
}

func (e *StepError) Error() string {
	what := e.Phase
	if e.Step != "" {
		what = e.Step
	}
	msg := fmt.Sprintf("%s: %v", what, e.Err)
	if len(e.UndoFailed) > 0 {
		msg += "; undoing FAILED for: " + strings.Join(e.UndoFailed, "; ")
		if len(e.StillApplied) > 0 {
			msg += "; undoing stopped there, still applied: " + strings.Join(e.StillApplied, ", ")
		}
		return msg + " (the journal is kept for the next apply)"
	}
	return msg + "; this run's earlier changes were undone"
}

func (e *StepError) Unwrap() error { return e.Err }

// Report adds the failure to d: <plugin>.apply.interrupted when the
// request was cancelled, else <plugin>.apply.
func (e *StepError) Report(plugin string, d *sdk.Diagnostics) {
	code, what := plugin+".apply", "apply failed"
	if e.Interrupted {
		code, what = plugin+".apply.interrupted", "apply was interrupted"
	}
	if len(e.UndoFailed) > 0 {
		what += "; undoing FAILED"
	} else {
		what += "; this run's changes were undone"
	}
	d.AddTargetError(code, what, e)
}

// RunSteps applies steps in order under the session's journal (Begin must
// have been called) and ends the session: the pre-flight first (nothing
// changed on failure), then Journal.RunSteps. When a step or a boundary
// fails — or ctx is cancelled (Ctrl-C) — and every undo worked, the
// journal is removed (Done), else it is kept (Keep) and the *StepError
// names the step whose undo failed and the steps still applied. On success
// it returns the applied changes and removes the journal.
func (s *Session) RunSteps(ctx context.Context, steps []Step, o StepOptions) (applied []sdk.Change, err error) {
	if o.Preflight != nil {
		if err := o.Preflight(ctx, steps); err != nil {
			s.Release() // a killed run's journal stays for the next apply
			return nil, fmt.Errorf("%w: %w", ErrPreflight, err)
		}
	}
	if o.Final == "" {
		o.Final = "done"
	}
	applied, err = s.Journal.RunSteps(ctx, steps, o)
	var se *StepError
	if errors.As(err, &se) {
		if len(se.UndoFailed) > 0 {
			s.Keep()
			return nil, se
		}
		if derr := s.Done(); derr != nil {
			se.UndoFailed = append(se.UndoFailed, derr.Error())
		}
		return nil, se
	}
	if err := s.Done(); err != nil {
		return applied, fmt.Errorf("applied, but: %w", err)
	}
	return applied, nil
}

// RunSteps applies steps in order under the journal, marking each boundary
// (the phase in the journal, StepOptions.Hook, the fault hook
// HARDEN_CRASH_AT=<plugin>:<phase>, then the request's cancellation). When
// a step or a boundary fails, or ctx is cancelled, the steps this run
// applied are undone newest first, then Rollback runs, all on an
// uncancelled context bounded by UndoTimeout; the error is a *StepError.
// The journal itself is the caller's to remove or keep (Session.RunSteps
// does it); Preflight is Session.RunSteps'.
func (j *Journal) RunSteps(ctx context.Context, steps []Step, o StepOptions) (applied []sdk.Change, err error) {
	boundary := func(phase string) error {
		if err := j.SetPhase(phase); err != nil {
			return err
		}
		if o.Hook != nil {
			o.Hook(phase)
		}
		Crash(j.State.Plugin, phase)
		return context.Cause(ctx)
	}
	var done []Step
	for i, st := range steps {
		phase := st.Phase
		if phase == "" {
			phase = fmt.Sprintf("step-%d", i+1)
		}
		err := boundary(phase)
		if err == nil {
			err = st.Apply(ctx)
		}
		if err != nil {
			return nil, j.rollback(ctx, done, o, &StepError{Step: st.Change.Resource, Phase: phase, Err: err})
		}
		done = append(done, st)
		if st.Change.Resource != "" || st.Change.Action != "" {
			applied = append(applied, st.Change)
		}
	}
	if o.Final != "" {
		if err := boundary(o.Final); err != nil && ctx.Err() == nil {
			// The journal could not be written: the run is not durable.
			return nil, j.rollback(ctx, done, o, &StepError{Phase: o.Final, Err: err})
		}
	}
	return applied, nil
}

// rollback undoes done newest first, then runs Rollback. It stops at the
// first undo that fails: undoing older steps under a newer one that stays
// could leave neither the old state nor the new (redis: the TLS port
// closed after the plaintext port failed to reopen — no TCP listener
// left). What remains is the state after the steps still applied, which
// the kept journal lets the next apply resume or roll back.
func (j *Journal) rollback(ctx context.Context, done []Step, o StepOptions, se *StepError) error {
	se.Interrupted = ctx.Err() != nil
	timeout := o.UndoTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	j.SetPhase("rolling-back") // best effort: the undos go on
	for i := len(done) - 1; i >= 0; i-- {
		if done[i].Undo == nil {
			continue
		}
		if err := done[i].Undo(uctx); err != nil {
			se.UndoFailed = append(se.UndoFailed, stepName(done[i], i)+": "+err.Error())
			for k := i; k >= 0; k-- {
				// (an internal step with nothing to undo, a check, is not
				// a change that stays)
				if k == i || done[k].Undo != nil || done[k].Change != (sdk.Change{}) {
					se.StillApplied = append(se.StillApplied, stepName(done[k], k))
				}
			}
			return se
		}
	}
	if o.Rollback != nil {
		if err := o.Rollback(uctx); err != nil {
			se.UndoFailed = append(se.UndoFailed, err.Error())
		}
	}
	return se
}

// stepName is how a StepError names step i: its resource, else its phase.
func stepName(st Step, i int) string {
	switch {
	case st.Change.Resource != "":
		return st.Change.Resource
	case st.Phase != "":
		return st.Phase
	}
	return fmt.Sprintf("step-%d", i+1)
}

// FileStep is a Step that replaces path through the journal (Replace: the
// backup recorded first, then WriteFile — atomic, fsynced, mode, owner
// kept) and whose undo restores that one file (RestoreFile).
func (s *Session) FileStep(change sdk.Change, path string, data []byte, mode os.FileMode, owner os.FileInfo) Step {
	return Step{
		Change: change,
		Apply:  func(context.Context) error { return s.Journal.Replace(path, data, mode, owner) },
		Undo:   func(context.Context) error { return s.Journal.RestoreFile(path) },
	}
}

// RestoreFile puts one recorded file back as Restore does (its backup, or
// removed when it did not exist; ErrChanged when somebody changed it since
// harden wrote it). A path the journal does not hold is nothing to do.
func (j *Journal) RestoreFile(path string) error {
	path = filepath.Clean(path)
	for _, f := range j.State.Files {
		if f.Path == path {
			if err := j.restoreOne(f, RestoreOptions{}, true); err != nil {
				return err
			}
			return j.restoreOne(f, RestoreOptions{}, false)
		}
	}
	return nil
}

// Crash is the fault hook of the interruption tests for boundaries a
// plugin marks itself (outside RunSteps and Session.Step): a process
// started with HARDEN_CRASH_AT=<plugin>:<phase> SIGKILLs itself here (no
// cleanup, as kill -9 would). Unset, it does nothing.
func Crash(plugin, phase string) {
	if crashAt != "" && crashAt == plugin+":"+phase {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
