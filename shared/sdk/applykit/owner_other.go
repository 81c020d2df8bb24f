//go:build !linux

package applykit

import "os"

// asIdentity runs fn as it is: outside Linux there is no per-thread
// filesystem identity, so file operations keep the process's (as before).
func asIdentity(uid, gid int, fn func() error) error { return fn() }

func currentFSUID() int { return os.Geteuid() }
