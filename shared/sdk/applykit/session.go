package applykit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A Session is one apply of one target under its lock, with its intent
// journal: the shape for plugins that change a system through its API
// (Vault, an object store), where there is no server directory to keep the
// journal in. Every API call is atomic on the server, so a killed run
// leaves some of its steps done: the next plan lists what remains (and says
// a run was interrupted), the next apply completes it — or rolls back to
// the state the killed run started from, which the plugin keeps in
// State.Data — and only then removes the journal.
type Session struct {
	Journal *Journal
	// Interrupted is the state of a killed run found at Start (nil when
	// there was none); its Data is what that run started from.
	Interrupted *State
	path        string
	unlock      func()
}

// CrashEnv names the fault hook of the interruption tests: a plugin process
// started with HARDEN_CRASH_AT=<plugin>:<phase> SIGKILLs itself when its
// session reaches that phase (no cleanup, as kill -9 would). Unset, it does
// nothing.
const CrashEnv = "HARDEN_CRASH_AT"

var crashAt = os.Getenv(CrashEnv)

// StateDirEnv overrides where journals live (the host passes it on to its
// plugins).
const StateDirEnv = "HARDEN_STATE_DIR"

// StateDir is where the journals and locks harden keeps away from the
// systems it changes live (created 0700 by Lock, never by the read-only
// paths of plan and verify): $HARDEN_STATE_DIR/journal when set; for root
// /var/lib/harden/journal (whatever $HOME says: cron, systemd and an
// interactive root shell must share one lock); for any other user
// $HOME/.local/state/harden/journal.
func StateDir() (string, error) {
	if d := os.Getenv(StateDirEnv); d != "" {
		return filepath.Join(d, "journal"), nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/harden/journal", nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no directory for the apply journal (set %s or HOME): %w", StateDirEnv, err)
	}
	return filepath.Join(home, ".local", "state", "harden", "journal"), nil
}

// TargetPaths are the journal and lock paths for one target: dir ("" =
// StateDir) and a name from the plugin and a hash of what identifies the
// live system (an endpoint and a bucket, a Vault address and a mount), so
// two policies naming one system share the lock. Nothing is created.
func TargetPaths(dir, plugin string, identity ...string) (journal, lock string, err error) {
	if dir == "" {
		if dir, err = StateDir(); err != nil {
			return "", "", err
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(identity, "\x00")))
	base := filepath.Join(dir, plugin+"-"+hex.EncodeToString(sum[:8]))
	return base + ".journal", base + ".lock", nil
}

// Acquire takes the target's lock (ErrLocked when another apply holds it;
// the journal's directory is created 0700 first) and reads a killed run's
// journal (Interrupted). Take it before reading the live state a plan token
// is checked against: then no other apply can change the target in between.
func Acquire(journal, lock string) (*Session, error) {
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		return nil, fmt.Errorf("create the journal directory: %w", err)
	}
	unlock, err := Lock(lock)
	if err != nil {
		return nil, err
	}
	old, err := Open(journal)
	if err != nil {
		unlock()
		return nil, err
	}
	s := &Session{path: journal, unlock: unlock}
	if old != nil {
		was := old.State
		s.Journal, s.Interrupted = old, &was
	}
	return s, nil
}

// Begin makes the intent durable before the first change: a new journal
// with st, or the killed run's journal resumed (its Data kept: where that
// run started; st's intent added).
func (s *Session) Begin(st State) error {
	if s.Journal == nil {
		j, err := Begin(s.path, st)
		if err != nil {
			return err
		}
		s.Journal = j
		return nil
	}
	s.Journal.State.PID = os.Getpid()
	s.Journal.State.Intent = append(append([]string(nil), s.Interrupted.Intent...), st.Intent...)
	s.Journal.State.Phase = "resumed"
	return s.Journal.Save()
}

// Start is Acquire followed by Begin.
func Start(journal, lock string, st State) (*Session, error) {
	s, err := Acquire(journal, lock)
	if err != nil {
		return nil, err
	}
	if err := s.Begin(st); err != nil {
		s.unlock()
		return nil, err
	}
	return s, nil
}

// Step marks a step boundary: the phase goes into the journal, the fault
// hook fires, and the request's cancellation (the host's Stop on Ctrl-C,
// its timeout) is returned so the caller finishes or rolls back here.
func (s *Session) Step(ctx context.Context, phase string) error {
	if err := s.Journal.SetPhase(phase); err != nil {
		return err
	}
	Crash(s.Journal.State.Plugin, phase)
	return context.Cause(ctx)
}

// Done removes the journal (the run completed or rolled back) and unlocks.
func (s *Session) Done() error {
	defer s.unlock()
	if s.Journal == nil {
		return nil
	}
	return s.Journal.Done()
}

// Keep unlocks and leaves the journal for the next run (a rollback that
// failed: the next apply must try again).
func (s *Session) Keep() { s.unlock() }

// Release ends a session that changed nothing (a plan error, a stale
// plan, a refused pre-flight): a killed run's journal it found stays — it
// is the only record of the state that run started from, which the next
// apply rolls back to or completes — and otherwise the journal this
// session may have begun is removed. The lock is released either way.
func (s *Session) Release() error {
	if s.Interrupted != nil {
		s.Keep()
		return nil
	}
	return s.Done()
}

// Describe is the one sentence plan, verify and apply use for a killed run.
func Describe(s State) string {
	return fmt.Sprintf("an apply was interrupted at %s (pid %d, %s)", s.Phase, s.PID, s.Started.UTC().Format(time.RFC3339))
}

// Notice is what plan and verify say about a target's journal: "" when
// there is none (or no journal directory); running when an apply holds the
// lock right now. It creates nothing. An error wrapping fs.ErrPermission
// means this user cannot look (a read-only auditor): callers warn.
func Notice(journal, lock string) (notice string, running bool, err error) {
	j, err := Open(journal)
	if err != nil || j == nil {
		return "", false, err
	}
	if _, err := os.Stat(lock); errors.Is(err, os.ErrNotExist) {
		return Describe(j.State), false, nil
	}
	unlock, lerr := Lock(lock)
	if errors.Is(lerr, ErrLocked) {
		return fmt.Sprintf("an apply is running (pid %d, since %s, at %s)", j.State.PID, j.State.Started.UTC().Format(time.RFC3339), j.State.Phase), true, nil
	}
	if lerr == nil {
		unlock()
	}
	return Describe(j.State), false, nil
}
