package sdk

import (
	"os"
	"os/signal"
	"syscall"
)

// parentDeathSignal: the plugin catches it to kill its whole group
// (watchParent); until the SDK has set up the handler, its default action
// ends the plugin as SIGKILL would.
const parentDeathSignal = syscall.SIGUSR2

func notifyParentDeath(ch chan<- os.Signal) { signal.Notify(ch, parentDeathSignal) }

// endProcessGroup kills the plugin's process group — the plugin and every
// child that stayed in it — when the plugin leads it (the host starts it
// so); a plugin started some other way must not kill its starter's group.
func endProcessGroup() {
	if syscall.Getpgrp() == os.Getpid() {
		_ = syscall.Kill(0, syscall.SIGKILL)
	}
	os.Exit(3)
}
