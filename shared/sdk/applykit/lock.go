package applykit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked is returned by Lock when another live process holds the lock.
var ErrLocked = errors.New("another harden apply holds the lock")

// Lock takes an exclusive, non-blocking flock on path (created 0600, never
// through a symlink). The kernel drops it when the process dies, so a
// journal beside a free lock means an earlier run was killed. The lock file
// itself stays: removing it would let a third process lock a new inode
// while a second still holds the old one.
func Lock(path string) (unlock func(), err error) {
	// A first apply finds no state directory yet (the read-only paths of
	// plan and verify never create it).
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of lock %s: %w", path, err)
	}
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the descriptor releases the flock.
	return func() { f.Close() }, nil
}

// privateDir: the journal and the lock beside it must sit where nobody but
// root and this user can change them — dir and every directory above it
// owned by root or the effective user and not writable by group or others
// (a sticky directory such as /tmp excepted, as for the plugin trust rule).
// A journal somebody else could replace would make harden restore what
// they chose (a pre-existing group-writable /var/lib/harden, say).
func privateDir(dir string) error {
	euid := uint32(os.Geteuid())
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if ok && sys.Uid != 0 && sys.Uid != euid {
			return fmt.Errorf("directory %s is owned by uid %d, not by root or this user: harden keeps its journals only where nobody else can change them", d, sys.Uid)
		}
		if st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("directory %s is writable by group or others (mode %04o): harden keeps its journals only where nobody else can change them", d, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
