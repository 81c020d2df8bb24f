package applykit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

const helperEnv = "HARDEN_APPLYKIT_STEPS_HELPER"

// session starts a session of the plugin "kittest" on a target in dir.
func session(t testing.TB, dir string) (*applykit.Session, string, string) {
	t.Helper()
	jp, lp, err := applykit.TargetPaths(filepath.Join(dir, "journal"), "kittest", "target")
	if err != nil {
		t.Fatal(err)
	}
	s, err := applykit.Start(jp, lp, applykit.State{Plugin: "kittest", Target: "t", Phase: "begun", Intent: []string{"three files"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, jp, lp
}

// fileSteps are three file steps in dir: a, b, c (a and b exist with
// "old", c does not).
func fileSteps(t testing.TB, s *applykit.Session, dir string) []applykit.Step {
	t.Helper()
	var steps []applykit.Step
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name)
		if name != "c" {
			if err := os.WriteFile(p, []byte("old "+name), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		steps = append(steps, s.FileStep(sdk.Change{Resource: "file " + name, Action: sdk.Update}, p, []byte("new "+name), 0o600, nil))
	}
	return steps
}

func content(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStepsHelperProcess is the process TestRunStepsKilledBetweenSteps
// kills (HARDEN_CRASH_AT=kittest:step-2); it does nothing in a normal run.
func TestStepsHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return
	}
	s, _, _ := session(t, dir)
	_, err := s.RunSteps(context.Background(), fileSteps(t, s, dir), applykit.StepOptions{})
	fmt.Println("not killed:", err)
}

// A run killed (SIGKILL, a real process) at the boundary before its second
// step leaves the first step done and the rest untouched, the journal at
// that phase under a free lock: plan's notice says interrupted, the next
// session finds it, and restoring it puts the first file back.
func TestRunStepsKilledBetweenSteps(t *testing.T) {
	dir := t.TempDir()
	killed, out := sdktest.RunHelperProcess(t, "TestStepsHelperProcess", helperEnv+"="+dir, applykit.CrashEnv+"=kittest:step-2")
	if !killed {
		t.Fatalf("the helper was not killed at step-2: %s", out)
	}
	if a, b, c := content(t, filepath.Join(dir, "a")), content(t, filepath.Join(dir, "b")), content(t, filepath.Join(dir, "c")); a != "new a" || b != "old b" || c != "<none>" {
		t.Fatalf("after a kill before step 2: a=%q b=%q c=%q, want new a, old b, none", a, b, c)
	}
	jp, lp, _ := applykit.TargetPaths(filepath.Join(dir, "journal"), "kittest", "target")
	var r sdk.PlanResponse
	n := applykit.Notices{Plugin: "kittest", Journal: jp, Lock: lp, PlanNext: "harden apply will complete it"}
	notice, ok := n.Plan(&r)
	if !ok || !strings.Contains(notice, "interrupted at step-2") || len(r.Diagnostics) != 1 || r.Diagnostics[0].Code != "kittest.apply.interrupted" ||
		r.Diagnostics[0].Severity != sdk.Warning || len(r.Changes) != 1 || !strings.HasPrefix(r.Changes[0].Resource, "journal:") {
		t.Fatalf("plan after the kill: %q %v %+v %+v", notice, ok, r.Diagnostics, r.Changes)
	}
	var vd sdk.Diagnostics
	n.Verify(&vd)
	if len(vd) != 1 || vd[0].Code != "kittest.apply.interrupted" {
		t.Fatalf("verify after the kill: %+v", vd)
	}
	s, err := applykit.Acquire(jp, lp)
	if err != nil || s.Interrupted == nil || s.Interrupted.Phase != "step-2" {
		t.Fatalf("the next session: %v %+v", err, s)
	}
	if errs := s.Journal.Restore(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if a := content(t, filepath.Join(dir, "a")); a != "old a" {
		t.Fatalf("restored a = %q", a)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
}

// A failing step undoes the earlier ones newest first; an undo that fails
// keeps the journal (the lock is released), and the error names that step.
func TestRunStepsFailingUndoKeepsJournal(t *testing.T) {
	dir := t.TempDir()
	s, jp, lp := session(t, dir)
	var order []string
	steps := []applykit.Step{
		{Change: sdk.Change{Resource: "mount pki", Action: sdk.Create},
			Apply: func(context.Context) error { order = append(order, "apply 1"); return nil },
			Undo: func(context.Context) error {
				order = append(order, "undo 1")
				return errors.New("403 permission denied")
			}},
		{Change: sdk.Change{Resource: "role web", Action: sdk.Create},
			Apply: func(context.Context) error { order = append(order, "apply 2"); return nil },
			Undo:  func(context.Context) error { order = append(order, "undo 2"); return nil }},
		{Change: sdk.Change{Resource: "audit device", Action: sdk.Create},
			Apply: func(context.Context) error { order = append(order, "apply 3"); return errors.New("500 internal error") },
			Undo:  func(context.Context) error { order = append(order, "undo 3"); return nil }},
	}
	applied, err := s.RunSteps(context.Background(), steps, applykit.StepOptions{})
	var se *applykit.StepError
	if !errors.As(err, &se) || applied != nil {
		t.Fatalf("RunSteps: %v, applied %+v", err, applied)
	}
	if got := strings.Join(order, ", "); got != "apply 1, apply 2, apply 3, undo 2, undo 1" {
		t.Fatalf("order %s", got)
	}
	if se.Step != "audit device" || len(se.UndoFailed) != 1 || !strings.HasPrefix(se.UndoFailed[0], "mount pki: ") ||
		!strings.Contains(err.Error(), "undoing FAILED for: mount pki: 403 permission denied") {
		t.Fatalf("the error does not name the failed step and undo: %v (%+v)", err, se)
	}
	var d sdk.Diagnostics
	se.Report("kittest", &d)
	if len(d) != 1 || d[0].Code != "kittest.apply" {
		t.Fatalf("report: %+v", d)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("the journal was not kept after a failed undo: %v", err)
	}
	again, err := applykit.Acquire(jp, lp)
	if err != nil || again.Interrupted == nil || again.Interrupted.Phase != "rolling-back" {
		t.Fatalf("after a failed undo the lock must be free and the journal found: %v %+v", err, again)
	}
	again.Done()
}

// Ctrl-C (the request cancelled at a boundary) undoes this run's steps on
// an uncancelled context, reports an interruption and removes the journal.
func TestRunStepsCancelledUndoes(t *testing.T) {
	dir := t.TempDir()
	s, jp, _ := session(t, dir)
	steps := fileSteps(t, s, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var undoCtxErr error
	steps[1].Undo = func(ctx context.Context) error {
		undoCtxErr = ctx.Err()
		return s.Journal.RestoreFile(filepath.Join(dir, "b"))
	}
	hook := func(phase string) {
		if phase == "step-3" {
			cancel()
		}
	}
	applied, err := s.RunSteps(ctx, steps, applykit.StepOptions{Hook: hook})
	var se *applykit.StepError
	if !errors.As(err, &se) || !se.Interrupted || !errors.Is(err, context.Canceled) || applied != nil || len(se.UndoFailed) != 0 {
		t.Fatalf("a cancelled run: %v %+v", err, applied)
	}
	if undoCtxErr != nil {
		t.Fatalf("the undo ran on the cancelled context: %v", undoCtxErr)
	}
	var d sdk.Diagnostics
	se.Report("kittest", &d)
	if len(d) != 1 || d[0].Code != "kittest.apply.interrupted" || !strings.Contains(d[0].Detail, "earlier changes were undone") {
		t.Fatalf("report: %+v", d)
	}
	for _, name := range []string{"a", "b"} {
		if got := content(t, filepath.Join(dir, name)); got != "old "+name {
			t.Errorf("%s = %q after the undo", name, got)
		}
	}
	if got := content(t, filepath.Join(dir, "c")); got != "<none>" {
		t.Errorf("c = %q, the step after the cancellation ran", got)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after a clean undo: %v", err)
	}
}

// A file step into a directory apply may not write fails with an error
// naming the file, and nothing is changed: the earlier file step is undone,
// no file and no temporary file appear.
func TestRunStepsReadOnlyTargetDir(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Root acts as the user who controls a directory (the owner
		// rule): a directory of nobody's that nobody may write.
		if err := os.Chown(ro, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, jp, _ := session(t, dir)
	steps := fileSteps(t, s, dir)[:1]
	target := filepath.Join(ro, "server.key")
	steps = append(steps, s.FileStep(sdk.Change{Resource: "file " + target, Action: sdk.Create}, target, []byte("key"), 0o600, nil))
	applied, err := s.RunSteps(context.Background(), steps, applykit.StepOptions{})
	var se *applykit.StepError
	if !errors.As(err, &se) || applied != nil || !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), target) || len(se.UndoFailed) != 0 {
		t.Fatalf("a write into a read-only directory: %v", err)
	}
	if got := content(t, filepath.Join(dir, "a")); got != "old a" {
		t.Errorf("a = %q: the earlier step was not undone", got)
	}
	entries, _ := os.ReadDir(ro)
	if len(entries) != 0 {
		t.Errorf("the read-only directory holds %v", entries)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after a clean undo: %v", err)
	}
}

// A pre-flight that refuses runs no step and removes a fresh journal.
func TestRunStepsPreflightChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, jp, _ := session(t, dir)
	steps := fileSteps(t, s, dir)
	_, err := s.RunSteps(context.Background(), steps, applykit.StepOptions{
		Preflight: func(context.Context, []applykit.Step) error { return errors.New("token lacks update on pki/roles/web") }})
	if !errors.Is(err, applykit.ErrPreflight) || !strings.Contains(err.Error(), "pki/roles/web") {
		t.Fatalf("pre-flight: %v", err)
	}
	if got := content(t, filepath.Join(dir, "a")); got != "old a" {
		t.Errorf("a = %q after a refused pre-flight", got)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after a refused pre-flight: %v", err)
	}
}

// A successful run returns the applied changes in order and removes the
// journal; the backups stay as the operator's undo, 0600 files written.
func TestRunStepsApplies(t *testing.T) {
	dir := t.TempDir()
	s, jp, _ := session(t, dir)
	applied, err := s.RunSteps(context.Background(), fileSteps(t, s, dir), applykit.StepOptions{})
	if err != nil || len(applied) != 3 || applied[0].Resource != "file a" || applied[2].Resource != "file c" {
		t.Fatalf("RunSteps: %v %+v", err, applied)
	}
	for _, name := range []string{"a", "b", "c"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 || content(t, filepath.Join(dir, name)) != "new "+name {
			t.Errorf("%s: %v %v", name, err, st)
		}
	}
	if backups, _ := filepath.Glob(filepath.Join(dir, "a.harden-backup-*")); len(backups) != 1 {
		t.Errorf("backups of a: %v", backups)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after success: %v", err)
	}
}

// The stale-plan check has one code, whichever plugin: a token that no
// longer matches is refused; none (apply without a plan) or the same is not.
func TestPlanCurrentOneCode(t *testing.T) {
	var d sdk.Diagnostics
	tok := applykit.PlanToken("policy v1", "1 change")
	if !applykit.PlanCurrent(&d, nil, tok, "the bucket") || !applykit.PlanCurrent(&d, tok, applykit.PlanToken("policy v1", "1 change"), "the bucket") || len(d) != 0 {
		t.Fatalf("a current or absent token was refused: %+v", d)
	}
	if applykit.PlanCurrent(&d, tok, applykit.PlanToken("policy v2", "1 change"), "the bucket") {
		t.Fatal("a stale token was accepted")
	}
	if len(d) != 1 || d[0].Code != "apply.plan_stale" || d[0].Severity != sdk.Error || !strings.Contains(d[0].Summary, "the bucket changed") {
		t.Fatalf("stale plan diagnostic: %+v", d)
	}
	if bytes.Equal(applykit.PlanToken("ab", "c"), applykit.PlanToken("a", "bc")) {
		t.Fatal("PlanToken does not separate its parts")
	}
}

// An apply running now is reported as locked; Held (apply itself holds
// the lock) reads the same journal as a killed run's.
func TestNoticesLockedAndHeld(t *testing.T) {
	dir := t.TempDir()
	s, jp, lp := session(t, dir)
	defer s.Done()
	var r sdk.PlanResponse
	n := applykit.Notices{Plugin: "kittest", Journal: jp, Lock: lp, Label: "broker 1: "}
	if _, ok := n.Plan(&r); !ok || len(r.Diagnostics) != 1 || r.Diagnostics[0].Code != "kittest.apply.locked" || len(r.Changes) != 0 ||
		!strings.HasPrefix(r.Diagnostics[0].Summary, "broker 1: an apply is running") {
		t.Fatalf("plan while an apply runs: %+v %+v", r.Diagnostics, r.Changes)
	}
	n.Held = true
	r = sdk.PlanResponse{}
	if _, ok := n.Plan(&r); !ok || len(r.Diagnostics) != 1 || r.Diagnostics[0].Code != "kittest.apply.interrupted" || len(r.Changes) != 1 {
		t.Fatalf("plan under the held lock: %+v %+v", r.Diagnostics, r.Changes)
	}
	var d sdk.Diagnostics
	applykit.Locked("kittest", "this broker", fmt.Errorf("x: %w", applykit.ErrLocked), &d)
	applykit.Locked("kittest", "this broker", errors.New("disk full"), &d)
	if len(d) != 2 || d[0].Code != "kittest.apply.locked" || d[1].Code != "kittest.apply.journal" {
		t.Fatalf("Locked: %+v", d)
	}
}

// An undo that fails in the MIDDLE stops the rollback there: the older
// steps stay applied (undoing them under the newer one that stayed could
// leave neither state), Rollback does not run, the journal is kept and the
// error names the failed undo and every step still applied (not the
// check between them: nothing of it stays).
func TestRunStepsMiddleUndoFailureStops(t *testing.T) {
	dir := t.TempDir()
	s, jp, lp := session(t, dir)
	var order []string
	step := func(name string, applyErr, undoErr error) applykit.Step {
		return applykit.Step{Change: sdk.Change{Resource: name, Action: sdk.Update},
			Apply: func(context.Context) error { order = append(order, "apply "+name); return applyErr },
			Undo:  func(context.Context) error { order = append(order, "undo "+name); return undoErr }}
	}
	steps := []applykit.Step{
		step("config tls-port", nil, nil),
		{Phase: "tls-login", Apply: func(context.Context) error { order = append(order, "apply login"); return nil }},
		step("config port", nil, errors.New("address already in use")),
		step("config rewrite", nil, nil),
		step("audit", errors.New("500 internal error"), nil),
	}
	rollbackRan := false
	applied, err := s.RunSteps(context.Background(), steps, applykit.StepOptions{
		Rollback: func(context.Context) error { rollbackRan = true; return nil }})
	var se *applykit.StepError
	if !errors.As(err, &se) || applied != nil {
		t.Fatalf("RunSteps: %v, applied %+v", err, applied)
	}
	if got := strings.Join(order, ", "); got != "apply config tls-port, apply login, apply config port, apply config rewrite, apply audit, undo config rewrite, undo config port" {
		t.Fatalf("order %s", got)
	}
	if rollbackRan {
		t.Fatal("Rollback ran after a step's undo failed")
	}
	if len(se.UndoFailed) != 1 || se.UndoFailed[0] != "config port: address already in use" ||
		strings.Join(se.StillApplied, ", ") != "config port, config tls-port" {
		t.Fatalf("StepError: %+v", se)
	}
	if msg := err.Error(); !strings.Contains(msg, "undoing FAILED for: config port: address already in use") ||
		!strings.Contains(msg, "still applied: config port, config tls-port") || !strings.Contains(msg, "journal is kept") {
		t.Fatalf("the error does not say which undo failed and what stays applied: %s", msg)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("the journal was not kept after a failed undo: %v", err)
	}
	again, err := applykit.Acquire(jp, lp)
	if err != nil || again.Interrupted == nil {
		t.Fatalf("after a failed undo the lock must be free and the journal found: %v %+v", err, again)
	}
	again.Done()
}

// When every undo works, Rollback runs after them.
func TestRunStepsRollbackAfterUndos(t *testing.T) {
	s, jp, _ := session(t, t.TempDir())
	var order []string
	steps := []applykit.Step{
		{Phase: "one", Apply: func(context.Context) error { return nil }, Undo: func(context.Context) error { order = append(order, "undo one"); return nil }},
		{Phase: "two", Apply: func(context.Context) error { return errors.New("refused") }},
	}
	_, err := s.RunSteps(context.Background(), steps, applykit.StepOptions{
		Rollback: func(context.Context) error { order = append(order, "rollback"); return nil }})
	if err == nil || strings.Join(order, ", ") != "undo one, rollback" {
		t.Fatalf("RunSteps: %v, order %v", err, order)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the journal stays after a clean rollback: %v", err)
	}
}

// Release keeps a killed run's journal (the record of where it started)
// and removes a journal nothing interrupted.
func TestSessionRelease(t *testing.T) {
	dir := t.TempDir()
	s, jp, lp := session(t, dir)
	s.Keep() // as a kill would leave it
	found, err := applykit.Acquire(jp, lp)
	if err != nil || found.Interrupted == nil {
		t.Fatalf("Acquire: %v %+v", err, found)
	}
	if err := found.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("Release removed a killed run's journal: %v", err)
	}
	os.Remove(jp)
	fresh, err := applykit.Acquire(jp, lp)
	if err != nil || fresh.Interrupted != nil {
		t.Fatalf("Acquire: %v %+v", err, fresh)
	}
	if err := fresh.Begin(applykit.State{Plugin: "kittest", Target: "t", Phase: "begun"}); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Release kept a journal nothing interrupted: %v", err)
	}
	if again, err := applykit.Acquire(jp, lp); err != nil {
		t.Fatalf("Release did not unlock: %v", err)
	} else {
		again.Done()
	}
}

// AcquireAt: no place for the journal, another apply holding the lock, and
// the way in — each reported with the plugin's code, nothing taken on
// failure.
func TestAcquireAt(t *testing.T) {
	dir := t.TempDir()
	jp, lp := filepath.Join(dir, "kit.journal"), filepath.Join(dir, "kit.lock")
	paths := func() (string, string, error) { return jp, lp, nil }
	var d sdk.Diagnostics
	if s, ok := applykit.AcquireAt("kittest", "this thing", func() (string, string, error) { return "", "", errors.New("no state dir") }, &d); ok || s != nil ||
		len(d) != 1 || d[0].Code != "kittest.apply.journal" || !strings.Contains(d[0].Summary, "nothing was changed") {
		t.Fatalf("no paths: %v %+v", ok, d)
	}
	s, ok := applykit.AcquireAt("kittest", "this thing", paths, &d)
	if !ok || s == nil {
		t.Fatalf("first acquire: %+v", d)
	}
	d = nil
	if s2, ok := applykit.AcquireAt("kittest", "this thing", paths, &d); ok || s2 != nil || len(d) != 1 || d[0].Code != "kittest.apply.locked" || !strings.Contains(d[0].Summary, "this thing") {
		t.Fatalf("second acquire while held: %v %+v", ok, d)
	}
	s.Done()
	d = nil
	s3, ok := applykit.AcquireAt("kittest", "this thing", paths, &d)
	if !ok || len(d) != 0 {
		t.Fatalf("acquire after release: %+v", d)
	}
	s3.Done()
}
