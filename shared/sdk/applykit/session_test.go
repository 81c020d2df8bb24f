package applykit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// plan and verify only look: TargetPaths and Notice create nothing (a
// read-only auditor's verify made "mkdir … permission denied" a target
// error before).
func TestNoticeCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "journal")
	jp, lp, err := TargetPaths(dir, "objectstore", "https://127.0.0.1:9000", "lake")
	if err != nil {
		t.Fatal(err)
	}
	notice, running, err := Notice(jp, lp)
	if notice != "" || running || err != nil {
		t.Fatalf("Notice without a journal: %q %v %v", notice, running, err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("plan/verify created the journal directory: %v", err)
	}
}

// A session: Acquire locks and creates the directory, Begin makes the
// intent durable, a second Acquire is refused while the first holds the
// lock, a journal left by a "killed" run is found and resumed with its
// Data, and Done removes it.
func TestSessionLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	jp, lp, _ := TargetPaths(dir, "vaultpki", "https://127.0.0.1:8200", "pki")
	s, err := Acquire(jp, lp)
	if err != nil {
		t.Fatal(err)
	}
	if s.Interrupted != nil {
		t.Fatal("a fresh target has an interrupted run")
	}
	if _, err := Acquire(jp, lp); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Acquire: %v, want ErrLocked", err)
	}
	if err := s.Begin(State{Plugin: "vaultpki", Target: "vault", Phase: "begun", Intent: []string{"mount pki"}, Data: map[string]string{"from": "old"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(context.Background(), "step-1"); err != nil {
		t.Fatal(err)
	}
	s.Keep() // as a killed run: the journal stays, the lock goes
	notice, running, err := Notice(jp, lp)
	if err != nil || running || notice == "" {
		t.Fatalf("Notice after a killed run: %q %v %v", notice, running, err)
	}
	again, err := Acquire(jp, lp)
	if err != nil || again.Interrupted == nil || again.Interrupted.Phase != "step-1" || again.Interrupted.Data["from"] != "old" {
		t.Fatalf("Acquire after a killed run: %v %+v", err, again.Interrupted)
	}
	if err := again.Begin(State{Intent: []string{"role web"}}); err != nil {
		t.Fatal(err)
	}
	if got := again.Journal.State; got.Data["from"] != "old" || len(got.Intent) != 2 || got.Phase != "resumed" {
		t.Fatalf("resumed journal: %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := again.Step(ctx, "step-2"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Step on a cancelled request: %v", err)
	}
	if err := again.Done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after Done: %v", err)
	}
	if s, err := Acquire(jp, lp); err != nil {
		t.Fatalf("the lock was not released by Done: %v", err)
	} else {
		s.Done()
	}
}
