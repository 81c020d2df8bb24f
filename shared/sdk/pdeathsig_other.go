//go:build !linux

package sdk

import "os/exec"

// setParentDeathSignal: elsewhere the plugin's own parent watch ends it.
func setParentDeathSignal(*exec.Cmd) {}
