package applykit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempPrefix names every temporary file applykit writes, so that SweepTemps
// can find what a killed run left.
const tempPrefix = ".harden-tmp-"

// WriteFile replaces path atomically: a temporary file in the same
// directory gets mode, the owner of owner (when running as root or as that
// owner; owner may be nil), the data, an fsync, then a rename over path and
// an fsync of the directory. The temporary file is removed on every failure
// path, so a failed write leaves path as it was and nothing beside it.
//
// Run as root with an owner that is not root, the whole write is done with
// owner's filesystem identity (AsOwner): it cannot land anywhere owner
// could not write itself, whatever symlinks owner planted on the way.
func WriteFile(path string, data []byte, mode os.FileMode, owner os.FileInfo) error {
	uid, gid := ownerIDs(owner)
	return writeFile(path, data, mode, uid, gid)
}

// writeFile is WriteFile with a numeric owner (-1: leave as created), done
// as that owner (asIdentity) unless its directory is root-controlled.
func writeFile(path string, data []byte, mode os.FileMode, uid, gid int) error {
	u, g := identityIn(filepath.Dir(path), uid, gid)
	return asIdentity(u, g, func() error { return writeFileHere(path, data, mode, uid, gid) })
}

func writeFileHere(path string, data []byte, mode os.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = tmp.Chmod(mode.Perm()); err != nil {
		return err
	}
	// Only root may give a file away; a non-root user keeps it (chown to
	// itself with its own group is a no-op that cannot fail). Working as
	// another user (asIdentity), what is created is that user's.
	if fs := currentFSUID(); uid >= 0 && (fs == 0 || uid == fs) {
		if err = tmp.Chown(uid, gid); err != nil {
			return err
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename, create or remove in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// SweepTemps removes the temporary files a killed run left in dir: applykit's
// ".harden-tmp-*", the ".harden-<digits>" naming plugins/postgres used
// before and the "<file>.harden-tmp" of plugins/kafka's earlier versions. Call it only while holding the Lock (a live run's temp file would
// go too). It returns the paths it removed.
func SweepTemps(dir string) ([]string, error) { return SweepTempsAs(dir, nil) }

// SweepTempsAs is SweepTemps done as owner (AsOwner): for a directory owned
// by a service's user, who could swap it for a symlink meanwhile.
func SweepTempsAs(dir string, owner os.FileInfo) (removed []string, err error) {
	uid, gid := ownerIDs(owner)
	uid, gid = identityIn(dir, uid, gid)
	err = asIdentity(uid, gid, func() error {
		removed, err = sweepTemps(dir)
		return err
	})
	return removed, err
}

func sweepTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTempName(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

func isTempName(name string) bool {
	if strings.HasPrefix(name, tempPrefix) || (strings.HasSuffix(name, ".harden-tmp") && name != ".harden-tmp") {
		return true
	}
	// os.CreateTemp(dir, ".harden-*") put only digits after the prefix.
	rest, ok := strings.CutPrefix(name, ".harden-")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
