package plugins

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// The trust rule, as OpenSSH applies it to its keys (StrictModes,
// secure_path): harden runs a plugin binary and believes a lock file only
// when nobody but root and the invoking user (euid) can change them. That is
// the binary or lock file itself, and every directory above it up to /,
// because whoever can write a directory can rename the file in it away and
// put their own in its place; the sha256 pin is only as strong as whoever can
// rewrite the lock. Each must be owned by root or the euid and not writable by
// group or others. One exception, above the plugin directory (or the lock's
// directory) only: a directory with the sticky bit (/tmp) may be writable by
// others, because there only an entry's owner can rename or remove it.
// Symlinks are judged by what they resolve to, and the directories holding
// each link are checked like any other directory on the path.

// UntrustedError says which path someone other than root and the invoking
// user could change, and how.
type UntrustedError struct {
	// What is refused (a plugin binary or the lock file).
	What string
	// Path whose owner or mode is wrong: What itself or a directory above it.
	Path string
	UID  int
	Mode fs.FileMode
	// Dir: Path is a directory on the way to What.
	Dir bool
	// Why: "owned by another user", "writable by group", ...
	Why string
}

func (e *UntrustedError) Error() string {
	where := e.Path
	if e.Dir {
		where = "directory " + e.Path
	}
	owners := "root"
	if euid := os.Geteuid(); euid != 0 {
		owners += " or " + ownerName(euid)
	}
	return fmt.Sprintf("untrusted: %s: %s is %s (owner %s, mode %s); it must be owned by %s and not writable by group or others",
		e.What, where, e.Why, ownerName(e.UID), modeString(e.Mode), owners)
}

// ErrUntrusted matches every *UntrustedError (errors.Is).
var ErrUntrusted = errors.New("untrusted")

func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

func modeString(m fs.FileMode) string {
	s := fmt.Sprintf("%04o", m.Perm())
	if m&fs.ModeSticky != 0 {
		s = "1" + s[1:]
	}
	return s
}

func trustedOwner(uid int) bool { return uid == 0 || uid == os.Geteuid() }

// CheckTrusted applies the trust rule to the file at path (what names it in
// errors: "plugin binary", "plugin lock file"). The file itself, its
// directory and (for a symlink) its target's directory must not be writable
// by group or others; directories further up may be sticky.
func CheckTrusted(what, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	label := what + " " + abs
	// The path as given: every directory holding it (or a link on the way).
	if err := checkDirs(label, filepath.Dir(abs)); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	if real != abs {
		if err := checkDirs(label, filepath.Dir(real)); err != nil {
			return err
		}
	}
	info, err := os.Stat(real)
	if err != nil {
		return err
	}
	return checkOne(label, real, info)
}

// checkDirs checks dir strictly and every directory above it, where a
// sticky directory may be writable by others.
func checkDirs(label, dir string) error {
	strict := true
	for {
		info, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		// A link's own owner and mode mean nothing (it cannot be changed,
		// only replaced through its directory, which is checked next); what
		// it points to is checked through the resolved path.
		if info.Mode()&fs.ModeSymlink == 0 {
			if strict || info.Mode()&fs.ModeSticky == 0 {
				if err := checkOne(label, dir, info); err != nil {
					return err
				}
			} else if err := checkOwner(label, dir, info); err != nil {
				return err
			}
		}
		strict = false
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func checkOwner(label, path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // no owners on this system
	}
	if uid := int(st.Uid); !trustedOwner(uid) {
		return &UntrustedError{What: label, Path: path, UID: uid, Mode: info.Mode(), Dir: info.IsDir(), Why: "owned by another user"}
	}
	return nil
}

func checkOne(label, path string, info fs.FileInfo) error {
	if err := checkOwner(label, path, info); err != nil {
		return err
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		why := "writable by group"
		switch {
		case perm&0o022 == 0o022:
			why = "writable by group and others"
		case perm&0o002 != 0:
			why = "writable by others"
		}
		uid := -1
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			uid = int(st.Uid)
		}
		return &UntrustedError{What: label, Path: path, UID: uid, Mode: info.Mode(), Dir: info.IsDir(), Why: why}
	}
	return nil
}

// CheckTrustedDir applies the rule to a directory harden is about to write a
// file into (the lock file's directory before `plugins lock`).
func CheckTrustedDir(what, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := checkDirs(what+" "+abs, abs); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil || real == abs {
		return err
	}
	return checkDirs(what+" "+abs, real)
}
