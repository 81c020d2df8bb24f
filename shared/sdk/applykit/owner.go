package applykit

import (
	"errors"
	"fmt"
	"io"
	"os"
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
// owner could not go already (os.MkdirAll follows symlinks).
func MkdirAll(dir string, perm os.FileMode, owner os.FileInfo) error {
	return AsOwner(owner, func() error { return os.MkdirAll(dir, perm) })
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
