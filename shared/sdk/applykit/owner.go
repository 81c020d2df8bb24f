package applykit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ownerIDs are the uid and gid of a file's os.FileInfo (-1, -1 when there
// is none).
func ownerIDs(owner os.FileInfo) (uid, gid int) {
	if owner != nil {
		if st, ok := owner.Sys().(*syscall.Stat_t); ok {
			return int(st.Uid), int(st.Gid)
		}
	}
	return -1, -1
}

// identityIn is the identity to work in dir with for a file of uid/gid:
// that owner's — unless dir is root-controlled (rootControlled), where only
// root can rearrange anything, so root's own identity is safe and keeps
// root's right to give a file to its owner (a kafka-owned
// server.properties in a root-owned /etc/kafka is written as root and
// chowned, not refused because kafka cannot create files there).
//
// A file of root's (or none yet, uid < 0) in a directory another user
// controls is worked on as that user (controller): root's ownership there
// protects nothing, since that user can replace the file anyway — but
// root's rights could be steered through a symlink. The result belongs to
// that user.
func identityIn(dir string, uid, gid int) (int, int) {
	if os.Geteuid() != 0 || rootControlled(dir) {
		return -1, -1
	}
	if uid > 0 {
		return uid, gid
	}
	if cu, cg, ok := controller(dir); ok {
		return cu, cg
	}
	return -1, -1
}

// controller is the owner of the deepest directory (or symlink) on dir's
// path that is not root's: the user who can rearrange what lies below.
func controller(dir string) (uid, gid int, ok bool) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if st, err := os.Lstat(d); err == nil {
			if sys, isUnix := st.Sys().(*syscall.Stat_t); isUnix && sys.Uid != 0 {
				return int(sys.Uid), int(sys.Gid), true
			}
		}
		if d == filepath.Dir(d) {
			return 0, 0, false
		}
	}
}

// rootControlled: dir and every directory above it — along the path as
// written and along its real path — is owned by root and writable by
// nobody else (a sticky directory such as /tmp aside: there nobody else
// can rename or remove root's entries). Then no other user can swap
// anything on the way for a symlink.
func rootControlled(dir string) bool {
	if !filepath.IsAbs(dir) {
		return false
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	for _, p := range []string{filepath.Clean(dir), real} {
		for d := p; ; d = filepath.Dir(d) {
			st, err := os.Lstat(d)
			if err != nil {
				return false
			}
			sys, ok := st.Sys().(*syscall.Stat_t)
			if !ok || sys.Uid != 0 {
				return false
			}
			if st.Mode()&os.ModeSymlink == 0 && st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
				return false
			}
			if d == "/" {
				break
			}
		}
	}
	return true
}

// AsOwner runs fn with the filesystem identity (fsuid, fsgid, groups) of
// owner — the os.FileInfo of the file or directory fn works on, e.g. the
// data directory of the service — when harden runs as root and owner is
// not root. Then fn can do nothing that owner could not do itself: a
// symlink owner planted to /etc or /etc/shadow is EACCES, and what fn
// creates belongs to owner. Otherwise (not root, owner nil or root) fn runs
// as it is. Only fn's own goroutine has that identity: fn must not hand file
// work to other goroutines.
func AsOwner(owner os.FileInfo, fn func() error) error {
	uid, gid := ownerIDs(owner)
	return asIdentity(uid, gid, fn)
}

// MkdirAll creates dir and its missing parents with perm, as owner (see
// AsOwner): they belong to owner, and a symlink on the way leads nowhere
// owner could not go already (os.MkdirAll follows symlinks). Under a
// root-controlled directory (rootControlled) root creates them and gives
// them to owner.
func MkdirAll(dir string, perm os.FileMode, owner os.FileInfo) error {
	uid, gid := ownerIDs(owner)
	existing := filepath.Clean(dir)
	var missing []string
	for {
		if _, err := os.Lstat(existing); err == nil || existing == filepath.Dir(existing) {
			break
		}
		missing = append(missing, existing)
		existing = filepath.Dir(existing)
	}
	if len(missing) == 0 {
		return nil
	}
	u, g := identityIn(existing, uid, gid)
	return asIdentity(u, g, func() error {
		if err := os.MkdirAll(dir, perm); err != nil {
			return err
		}
		if u < 0 && uid > 0 && os.Geteuid() == 0 {
			// Root created them in a root-controlled directory.
			for _, d := range missing {
				if err := os.Lchown(d, uid, gid); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// maxFile bounds what applykit reads of a file it backs up or restores:
// configuration files and certificates, never this large.
const maxFile = 16 << 20

// readNoFollow reads a regular file without following a symlink in its last
// component, and returns the status of the very file it read (fstat on the
// same descriptor, so no swap between a stat and the read). A missing file
// is (nil, nil, nil). O_NONBLOCK: opening a FIFO must not wait for a writer.
func readNoFollow(path string) ([]byte, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, errors.New("is a symbolic link: refused")
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFile {
		return nil, nil, fmt.Errorf("larger than %d bytes", maxFile)
	}
	return data, st, nil
}
