//go:build !linux

package hostclient

import (
	"os"
	"os/exec"
)

// setProcessAttributes: elsewhere the plugin's own parent watch ends it.
func setProcessAttributes(*exec.Cmd) {}

// killProcessGroup: without process groups here, only the plugin is killed.
func killProcessGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}

// processExited cannot tell a zombie here; the graceful wait runs its course.
func processExited(int) bool { return false }
