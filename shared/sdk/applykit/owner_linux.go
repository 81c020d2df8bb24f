//go:build linux

package applykit

import (
	"fmt"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// asIdentity runs fn with the filesystem identity uid/gid when harden runs
// as root and uid is not root; otherwise it just runs fn.
//
// Why: a directory owned by a service's OS user (PGDATA, /etc/postgresql/…)
// is that user's to rearrange — a symlink planted between two of root's
// system calls would send root's writes to /etc. Linux checks file access
// against the thread's fsuid/fsgid, and changing the fsuid from 0 drops the
// filesystem capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER…) of that
// thread: as that user, a swapped symlink is simply EACCES, and what is
// created is owned by that user without a chown.
//
// fsuid, fsgid and the supplementary groups are per thread at the system
// call level, so fn runs on a goroutine locked to its own thread. If the
// identity cannot be put back, the goroutine ends still locked and the Go
// runtime discards the thread instead of reusing it.
func asIdentity(uid, gid int, fn func() error) error {
	if uid <= 0 || os.Geteuid() != 0 {
		return fn()
	}
	if gid < 0 {
		return fmt.Errorf("act as uid %d: no group given", uid)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		groups, err := unix.Getgroups()
		if err != nil {
			restored = true
			done <- fmt.Errorf("act as uid %d: %w", uid, err)
			return
		}
		var fnErr error
		func() {
			defer func() {
				if p := recover(); p != nil {
					fnErr = fmt.Errorf("act as uid %d: panic: %v", uid, p)
				}
			}()
			if fnErr = switchIdentity(uid, gid, []int{gid}); fnErr == nil {
				fnErr = fn()
			}
		}()
		if err := switchIdentity(0, 0, groups); err != nil {
			done <- fmt.Errorf("act as uid %d: the thread's identity could not be restored (thread discarded): %w", uid, err)
			return
		}
		restored = true
		done <- fnErr
	}()
	return <-done
}

// switchIdentity sets the calling thread's supplementary groups, fsgid and
// fsuid and checks that they took: setfsuid/setfsgid report no error, only
// the previous value, so each is called twice.
func switchIdentity(uid, gid int, groups []int) error {
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	unix.SetfsgidRetGid(gid)
	if got, _ := unix.SetfsgidRetGid(gid); got != gid {
		return fmt.Errorf("setfsgid(%d): still %d", gid, got)
	}
	unix.SetfsuidRetUid(uid)
	if got, _ := unix.SetfsuidRetUid(uid); got != uid {
		return fmt.Errorf("setfsuid(%d): still %d", uid, got)
	}
	now, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("getgroups: %w", err)
	}
	if !sameGroups(now, groups) {
		return fmt.Errorf("setgroups(%v): groups are %v", groups, now)
	}
	return nil
}

func sameGroups(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// currentFSUID is the calling thread's fsuid (setfsuid with an invalid id
// changes nothing and returns the current one).
func currentFSUID() int {
	fs, _ := unix.SetfsuidRetUid(-1)
	return fs
}
