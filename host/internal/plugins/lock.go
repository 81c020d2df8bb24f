package plugins

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// LockVersion is the lock file format version.
const LockVersion = 1

// Lock pins plugin binaries by sha256.
type Lock struct {
	Version int                  `json:"version"`
	Plugins map[string]LockEntry `json:"plugins"`
}

// LockEntry pins one plugin.
type LockEntry struct {
	SHA256 string `json:"sha256"`
	// Path where it was locked; informational, the checksum is what counts.
	Path string `json:"path"`
}

// DefaultLockPath is the lock file under the user's config dir.
func DefaultLockPath() string {
	if p := os.Getenv("HARDEN_PLUGIN_LOCK"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "harden-plugins.lock"
	}
	return filepath.Join(dir, "harden", "plugins.lock")
}

// ReadLock reads a lock file; a missing file is an empty lock. A lock file
// that someone other than root and the invoking user could have rewritten
// is refused (*UntrustedError): the sha256 pins are only as strong as it.
func ReadLock(path string) (*Lock, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return &Lock{Version: LockVersion, Plugins: map[string]LockEntry{}}, nil
	}
	if err := CheckTrusted("plugin lock file", path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plugin lock %s: %w", path, err)
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("plugin lock %s is corrupt: %w", path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("plugin lock %s has version %d; this harden reads version %d", path, l.Version, LockVersion)
	}
	if l.Plugins == nil {
		l.Plugins = map[string]LockEntry{}
	}
	return &l, nil
}

// Write stores the lock atomically, only where ReadLock will trust it.
func (l *Lock) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := CheckTrustedDir("plugin lock directory", filepath.Dir(path)); err != nil {
		return err
	}
	names := make([]string, 0, len(l.Plugins))
	for n := range l.Plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return applykit.WriteFile(path, append(data, '\n'), 0o644, nil)
}

// Status of a binary against the lock.
type Status string

const (
	Locked   Status = "locked"
	Unlocked Status = "unlocked"
	Mismatch Status = "checksum-mismatch"
	// Reattached: a plugin in debug mode the host attached to
	// (HARDEN_REATTACH_PLUGINS); nothing was exec'd, so no pin applies.
	Reattached Status = "reattached"
)

// Check hashes b and compares it with the lock.
func (l *Lock) Check(b Binary) (Status, string, error) {
	sum, err := b.SHA256()
	if err != nil {
		return "", "", err
	}
	e, ok := l.Plugins[b.Name]
	switch {
	case !ok:
		return Unlocked, sum, nil
	case e.SHA256 != sum:
		return Mismatch, sum, nil
	default:
		return Locked, sum, nil
	}
}
