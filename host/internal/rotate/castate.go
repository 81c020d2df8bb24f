package rotate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// A staged CA rotation moves every target and client from the current CA
// to the next one in three phases, each verified on every target before
// the next starts, and persisted after every target so a killed run
// resumes where it stopped:
//
//   - trust: every trust bundle carries the current and the next root;
//   - reissue: the next intermediate signs; every leaf is re-issued;
//   - retire: the bundles carry the next root only; then the issuer makes
//     the next CA the current one.
//
// The state lives in <store_dir>/ca-rotation.json (0600). While it exists
// every harden command hands targets the phase's bundle (PhaseBundle), so
// an apply in the middle does not undo a phase.

// CA rotation phases.
const (
	PhaseTrust   = "trust"
	PhaseReissue = "reissue"
	PhaseRetire  = "retire"
	// PhaseSync: the source finished (the next CA is the current one);
	// every target still gets the source's rebuilt revocation lists.
	PhaseSync = "sync"
)

// CAState is the persisted state of a staged CA rotation.
type CAState struct {
	FormatVersion int       `json:"format_version"`
	Phase         string    `json:"phase"`
	Started       time.Time `json:"started"`
	Updated       time.Time `json:"updated"`
	// The roots (PEM) the rotation moves between.
	CurrentRootPEM string `json:"current_root_pem"`
	NextRootPEM    string `json:"next_root_pem"`
	// Done: per phase, the targets ("target/<name>") and clients
	// ("client/<name>") whose step of that phase was verified.
	Done map[string][]string `json:"done"`
	// Aborting: the rotation is being undone (--abort), phase by phase.
	Aborting bool `json:"aborting,omitempty"`
}

// CAStatePath is the state file of a store directory.
func CAStatePath(storeDir string) string { return filepath.Join(storeDir, "ca-rotation.json") }

// LoadCAState reads the state; nil, nil when no rotation runs. The file
// redefines what every target trusts while it exists, so it is held to
// the rule of harden's keys: a regular file, 0600, owned by the user
// harden runs as (or root), at most 1 MiB, two distinct CA certificates.
// The engine also compares its roots with what the source reports.
func LoadCAState(storeDir string) (*CAState, error) {
	path := CAStatePath(storeDir)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("CA rotation state %s: %s; if no CA rotation runs (harden rotate --ca) and this file is not harden's, move it away", path, fmt.Sprintf(format, args...))
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CA rotation state: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, bad("mode %04o: others may change what every target trusts (want 0600)", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return nil, bad("owned by uid %d, not by the user harden runs as", st.Uid)
	}
	if fi.Size() > 1<<20 {
		return nil, bad("larger than 1 MiB")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA rotation state: %w", err)
	}
	var st CAState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, bad("%v", err)
	}
	if st.FormatVersion != 1 {
		return nil, bad("format_version %d, this harden reads 1", st.FormatVersion)
	}
	if !slices.Contains([]string{PhaseTrust, PhaseReissue, PhaseRetire, PhaseSync}, st.Phase) {
		return nil, bad("unknown phase %q", st.Phase)
	}
	for _, p := range []string{st.CurrentRootPEM, st.NextRootPEM} {
		certs, err := sdk.ParseCertificatesPEM([]byte(p))
		if err != nil || len(certs) != 1 || !certs[0].IsCA {
			return nil, bad("a root is not one CA certificate")
		}
	}
	if st.CurrentRootPEM == st.NextRootPEM {
		return nil, bad("the current and the next root are the same")
	}
	if st.Done == nil {
		st.Done = map[string][]string{}
	}
	return &st, nil
}

// Save writes the state atomically (0600).
func (st *CAState) Save(storeDir string, now time.Time) error {
	st.FormatVersion, st.Updated = 1, now.UTC()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return err
	}
	return applykit.WriteFile(CAStatePath(storeDir), append(data, '\n'), 0o600, nil)
}

// Remove ends the rotation.
func RemoveCAState(storeDir string) error {
	err := os.Remove(CAStatePath(storeDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// IsDone reports whether item finished phase.
func (st *CAState) IsDone(phase, item string) bool { return slices.Contains(st.Done[phase], item) }

// MarkDone records item as verified in phase.
func (st *CAState) MarkDone(phase, item string) {
	if !st.IsDone(phase, item) {
		st.Done[phase] = append(st.Done[phase], item)
	}
}

// PhaseBundle is the trust bundle targets hold in phase: both roots while
// trusting and re-issuing, the next root alone once retiring.
func (st *CAState) PhaseBundle(phase string) []byte {
	if phase == PhaseRetire {
		return ensureNL(st.NextRootPEM)
	}
	return append(ensureNL(st.CurrentRootPEM), ensureNL(st.NextRootPEM)...)
}

// BundleBefore is the bundle targets held before phase started.
func (st *CAState) BundleBefore(phase string) []byte {
	switch phase {
	case PhaseTrust:
		return ensureNL(st.CurrentRootPEM)
	case PhaseRetire:
		return st.PhaseBundle(PhaseReissue)
	}
	return st.PhaseBundle(PhaseTrust)
}

// Bundle is what every command hands targets now: the phase's bundle, or
// while aborting a phase the bundle of the phase before it (trust undone:
// the current root alone; retire undone: both roots).
func (st *CAState) Bundle() []byte {
	if st.Phase == PhaseSync {
		return nil // the source's own: the next CA is the current one now
	}
	if st.Aborting {
		return st.BundleBefore(st.Phase)
	}
	return st.PhaseBundle(st.Phase)
}

// NextRoot is the next root certificate.
func (st *CAState) NextRoot() []byte { return ensureNL(st.NextRootPEM) }

func ensureNL(s string) []byte {
	b := []byte(s)
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	return b
}

// Anchors are the roots the source may report as its current one while
// the state holds: the current root until the source finished (which may
// have happened already in phase retire, if a run was killed right after),
// then the next.
func (st *CAState) Anchors() [][]byte {
	switch st.Phase {
	case PhaseSync:
		return [][]byte{ensureNL(st.NextRootPEM)}
	case PhaseRetire:
		return [][]byte{ensureNL(st.CurrentRootPEM), ensureNL(st.NextRootPEM)}
	}
	return [][]byte{ensureNL(st.CurrentRootPEM)}
}
