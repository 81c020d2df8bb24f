package applykit

import "syscall"

// dieWithParent makes the command get SIGKILL when the process that started
// it dies.
func dieWithParent(a *syscall.SysProcAttr) bool {
	a.Pdeathsig = syscall.SIGKILL
	return true
}
