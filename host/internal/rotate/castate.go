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

// LoadCAState reads the state; nil, nil when no rotation runs.
func LoadCAState(storeDir string) (*CAState, error) {
	data, err := os.ReadFile(CAStatePath(storeDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CA rotation state: %w", err)
	}
	var st CAState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("CA rotation state %s: %w", CAStatePath(storeDir), err)
	}
	if st.FormatVersion != 1 {
		return nil, fmt.Errorf("CA rotation state %s: format_version %d, this harden reads 1", CAStatePath(storeDir), st.FormatVersion)
	}
	if !slices.Contains([]string{PhaseTrust, PhaseReissue, PhaseRetire}, st.Phase) {
		return nil, fmt.Errorf("CA rotation state %s: unknown phase %q", CAStatePath(storeDir), st.Phase)
	}
	for _, p := range []string{st.CurrentRootPEM, st.NextRootPEM} {
		if certs, err := sdk.ParseCertificatesPEM([]byte(p)); err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("CA rotation state %s: a root is not a certificate", CAStatePath(storeDir))
		}
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
