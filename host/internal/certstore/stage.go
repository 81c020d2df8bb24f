package certstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// A rotation keeps the pair it replaces beside the new one, so that a
// failed verify gate (or a rotation killed half-way) can put the previous
// material back: <kind>.prev.pem and <kind>.prev-key.pem.

// PrevPaths of kind's previous certificate and key files.
func (s Store) PrevPaths(kind string) (cert, key string) {
	return filepath.Join(s.Dir, kind+".prev.pem"), filepath.Join(s.Dir, kind+".prev-key.pem")
}

// Pair is a certificate chain and its key as stored.
type Pair struct {
	Chain, Key []byte
}

// Valid: both halves present and they form a key pair.
func (p Pair) Valid() bool {
	if len(p.Chain) == 0 || len(p.Key) == 0 {
		return false
	}
	_, err := tls.X509KeyPair(p.Chain, p.Key)
	return err == nil
}

func (s Store) read(cert, key string) (Pair, error) {
	chain, cerr := policy.ReadBounded(cert, policy.Public)
	k, kerr := policy.ReadBounded(key, policy.Secret)
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		return Pair{}, nil
	}
	if err := errors.Join(cerr, kerr); err != nil {
		return Pair{}, fmt.Errorf("target %s: certificate store: %w", s.Target, err)
	}
	return Pair{chain, k}, nil
}

// Current is kind's stored pair (empty when there is none).
func (s Store) Current(kind string) (Pair, error) {
	return s.read(s.Paths(kind))
}

// Previous is the pair the last rotation of kind replaced (empty when none).
func (s Store) Previous(kind string) (Pair, error) {
	return s.read(s.PrevPaths(kind))
}

// Stage makes next kind's current pair and keeps replaced — the pair the
// target serves, which the caller observed — as the previous one. An
// invalid replaced pair is not kept: the previous pair stays what it was.
// Keys are written 0600, the key before its chain: a crash in between
// leaves a mismatched current pair, which is never kept as a previous
// pair, never judged live (rotate compares served leaves with valid pairs
// only) and re-issued by the next run.
func (s Store) Stage(kind string, next, replaced Pair) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("target %s: certificate store: %w", s.Target, err)
	}
	if replaced.Valid() {
		pc, pk := s.PrevPaths(kind)
		if err := s.write(pc, pk, replaced); err != nil {
			return err
		}
	}
	c, k := s.Paths(kind)
	return s.write(c, k, next)
}

// Restore puts the previous pair back as kind's current one (a failed
// gate). The previous pair stays, so a second Restore is harmless.
func (s Store) Restore(kind string) error {
	prev, err := s.Previous(kind)
	if err != nil {
		return err
	}
	if !prev.Valid() {
		return fmt.Errorf("target %s: certificate store: no previous %s certificate to restore", s.Target, kind)
	}
	c, k := s.Paths(kind)
	return s.write(c, k, prev)
}

func (s Store) write(cert, key string, p Pair) error {
	if err := writeAtomic(key, p.Key, 0o600); err != nil {
		return fmt.Errorf("target %s: %w", s.Target, err)
	}
	if err := writeAtomic(cert, p.Chain, 0o644); err != nil {
		return fmt.Errorf("target %s: %w", s.Target, err)
	}
	return nil
}

// Lock takes the store's exclusive lock (<dir>.lock beside it): one harden
// run at a time issues, stages or restores this target's certificates. The
// kernel drops it when the holder dies.
func (s Store) Lock() (unlock func(), err error) {
	unlock, err = applykit.Lock(filepath.Clean(s.Dir) + ".lock")
	if errors.Is(err, applykit.ErrLocked) {
		return nil, fmt.Errorf("target %s: another harden run is renewing its certificates (lock %s.lock); try again when it ends", s.Target, filepath.Clean(s.Dir))
	}
	return unlock, err
}

// PendingPath marks a rotation of kind whose gate has not passed yet.
func (s Store) PendingPath(kind string) string { return filepath.Join(s.Dir, kind+".pending") }

// MarkPending records, before a new pair is pushed, that its gate is
// still to pass: a run killed before it did is re-gated by the next one.
func (s Store) MarkPending(kind, serial string) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("target %s: certificate store: %w", s.Target, err)
	}
	if err := writeAtomic(s.PendingPath(kind), []byte(serial+"\n"), 0o600); err != nil {
		return fmt.Errorf("target %s: mark the rotation pending: %w", s.Target, err)
	}
	return nil
}

// Pending reports whether a rotation of kind awaits its gate.
func (s Store) Pending(kind string) bool {
	_, err := os.Stat(s.PendingPath(kind))
	return err == nil
}

// ClearPending: the gate passed, or the previous pair is served again.
func (s Store) ClearPending(kind string) error {
	err := os.Remove(s.PendingPath(kind))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("target %s: clear the pending rotation mark: %w", s.Target, err)
}
