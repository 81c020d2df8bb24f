package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
)

// --timeout during an apply step is a request to finish or roll back, like
// the first Ctrl-C: harden says so, waits for the plugin's 1.5 s rollback
// and prints the plugin's own account (before, the call was cut off at the
// deadline: "deadline exceeded", the plugin killed mid-rollback, nothing of
// what it did printed), and exits 3 (a target error).
func TestApplyTimeoutLetsThePluginRollBack(t *testing.T) {
	f := newFixture(t, "rollback")
	f.lockPlugins()
	start := time.Now()
	cmd, out := f.startHost("apply", "-f", f.policy, "--yes", "--timeout", "2s")
	code := exitCode(t, cmd.Wait())
	took := time.Since(start)
	if code != cli.ExitTarget {
		t.Errorf("exit %d, want %d\n%s", code, cli.ExitTarget, out)
	}
	for _, want := range []string{
		"harden: echo-a did not finish within --timeout 2s: asking it to finish or roll back its current step",
		"apply interrupted: rolled back the current step: stopped by the host; the state file is as it was",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if took < 3500*time.Millisecond || took > 3500*time.Millisecond+closeGrace+2*time.Second {
		t.Errorf("harden exited after %v; the timeout is 2 s and the rollback 1.5 s", took)
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Errorf("the rolled-back apply wrote the target's state")
	}
}

// A plugin that ignores the request to stop is killed when the grace runs
// out: harden still ends, within --timeout + cli.ApplyGrace + the close.
func TestApplyTimeoutGraceRunsOut(t *testing.T) {
	old := cli.ApplyGrace
	cli.ApplyGrace = time.Second
	t.Cleanup(func() { cli.ApplyGrace = old })
	f := newFixture(t, "stuck")
	f.lockPlugins()
	var stdout, stderr syncBuffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, IsTerminal: func() bool { return false },
		Getenv: func(k string) (string, bool) { return secretToken, k == "ECHO_TOKEN" }}
	start := time.Now()
	code := cli.Run(context.Background(), []string{"harden", "apply", "-f", f.policy, "--yes", "--timeout", "1s", "--plugin-dir", f.pluginDir, "--lock-file", f.lock}, io)
	took := time.Since(start)
	if code != cli.ExitTarget || !strings.Contains(stderr.String(), "harden: echo-a did not finish or roll back its current step within 1s; killing its plugin now") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if took > 2*time.Second+closeGrace+2*time.Second {
		t.Errorf("harden took %v (timeout 1 s, grace 1 s)", took)
	}
	waitNoPlugin(t, f.plugin, 5*time.Second)
}
