//go:build !linux

package applykit

import "syscall"

// dieWithParent: no parent-death signal on this system.
func dieWithParent(*syscall.SysProcAttr) bool { return false }
