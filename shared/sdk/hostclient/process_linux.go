package hostclient

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// setProcessAttributes starts the plugin in a process group of its own, so
// the host can kill it together with everything it started (a child that
// keeps the plugin's stdout/stderr open would otherwise hold go-plugin's
// pipe readers, and with them the host, forever), and makes the kernel
// signal the plugin when the host dies, even by SIGKILL, so no plugin (nor
// its children) outlives its host (go-plugin #114, #291). Being outside the terminal's
// foreground group also means a Ctrl-C reaches the host only: the host
// decides what the plugin is told.
func setProcessAttributes(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: parentDeathSignal}
}

// parentDeathSignal: the plugin catches it (package sdk, watchParent) to kill
// its whole group; until the SDK has set up the handler, its default action
// ends the plugin as SIGKILL would.
const parentDeathSignal = syscall.SIGUSR2

// killProcessGroup SIGKILLs every process in the plugin's group (its pgid is
// its pid). A group that is already gone is not an error.
func killProcessGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// processExited reports whether pid has exited (a zombie nobody reaped yet
// counts: go-plugin reaps it only after its pipes are drained).
func processExited(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}
