package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
)

// syncBuffer is written by the process's output copier (or harden's signal
// goroutine) while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds or within passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) startHost(args ...string) (*exec.Cmd, *syncBuffer) {
	f.t.Helper()
	cmd := exec.Command(hardenBin, append(args, "--plugin-dir", f.pluginDir, "--lock-file", f.lock)...)
	cmd.Env = append(os.Environ(), "ECHO_TOKEN="+secretToken)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, out
}

func (f *fixture) waitApplying() {
	f.t.Helper()
	waitFor(f.t, "the plugin's apply step began", 15*time.Second, func() bool {
		_, err := os.Stat(f.state + ".applying")
		return err == nil
	})
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return 0
}

const waitingMessage = "interrupted: waiting for echo-a to finish or roll back its current step (press Ctrl-C again to abort now; the next harden run recovers from the journal)"

// The first Ctrl-C (or SIGTERM) during an apply step tells the plugin to stop
// and waits for it to roll back its step: harden prints at once that it is
// waiting, then the plugin's own account of the rollback, and exits 130.
func TestInterruptedApplyWaitsForRollback(t *testing.T) {
	cases := map[string]struct {
		sig os.Signal
		// toPlugin: the plugin gets the signal too, as every process of a
		// service does from systemd's stop.
		toPlugin bool
	}{
		"SIGINT":                           {os.Interrupt, false},
		"SIGTERM":                          {syscall.SIGTERM, false},
		"SIGTERM to harden and its plugin": {syscall.SIGTERM, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "rollback")
			f.lockPlugins()
			cmd, out := f.startHost("apply", "-f", f.policy, "--yes")
			f.waitApplying()
			start := time.Now()
			if tc.toPlugin {
				pids := pluginProcesses(t, f.plugin)
				if len(pids) != 1 {
					t.Fatalf("plugin processes %v", pids)
				}
				_ = syscall.Kill(pids[0], syscall.SIGTERM)
			}
			_ = cmd.Process.Signal(tc.sig)
			waitFor(t, "the waiting message", 5*time.Second, func() bool { return strings.Contains(out.String(), waitingMessage) })
			code := exitCode(t, cmd.Wait())
			took := time.Since(start)
			if code != cli.ExitInterrupted {
				t.Errorf("exit %d, want %d\n%s", code, cli.ExitInterrupted, out)
			}
			// The plugin's rollback takes 1.5 s: harden waited for it and
			// printed what the plugin said; the plugin's context ended
			// through the Stop call, not a cancelled call.
			for _, want := range []string{"echo-a (echo): ERROR",
				"target: apply interrupted: rolled back the current step: stopped by the host; the state file is as it was",
				"harden: interrupted: apply stopped"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if took < 1500*time.Millisecond || took > 1500*time.Millisecond+closeGrace {
				t.Errorf("harden exited %v after the signal; the rollback takes 1.5 s and closing at most %v", took, closeGrace)
			}
			if _, err := os.Stat(f.state); !os.IsNotExist(err) {
				t.Errorf("the rolled-back apply wrote the target's state")
			}
			waitNoPlugin(t, f.plugin, 5*time.Second)
		})
	}
}

// A second Ctrl-C does not wait: the plugin's process group is killed at
// once and harden exits 130.
func TestSecondInterruptKillsPlugin(t *testing.T) {
	f := newFixture(t, "stuck")
	f.lockPlugins()
	cmd, out := f.startHost("apply", "-f", f.policy, "--yes")
	f.waitApplying()
	_ = cmd.Process.Signal(os.Interrupt)
	waitFor(t, "the waiting message", 5*time.Second, func() bool { return strings.Contains(out.String(), waitingMessage) })
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	_ = cmd.Process.Signal(os.Interrupt)
	code := exitCode(t, cmd.Wait())
	took := time.Since(start)
	if code != cli.ExitInterrupted || !strings.Contains(out.String(), "interrupted again: killing the plugins now") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if took > 5*time.Second {
		t.Errorf("harden took %v after the second signal", took)
	}
	t.Logf("second signal to exit: %v", took.Round(time.Millisecond))
	waitNoPlugin(t, f.plugin, 2*time.Second)
}

// A step that neither finishes nor rolls back within cli.ApplyGrace is killed
// as by a second signal.
func TestInterruptedApplyGraceRunsOut(t *testing.T) {
	old := cli.ApplyGrace
	cli.ApplyGrace = time.Second
	t.Cleanup(func() { cli.ApplyGrace = old })
	f := newFixture(t, "stuck")
	f.lockPlugins()
	sigs := make(chan os.Signal, 1)
	var stdout, stderr syncBuffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, IsTerminal: func() bool { return false },
		Getenv: func(k string) (string, bool) { return secretToken, k == "ECHO_TOKEN" }, Signals: sigs}
	codec := make(chan int, 1)
	go func() {
		codec <- cli.Run(context.Background(), []string{"harden", "apply", "-f", f.policy, "--yes", "--plugin-dir", f.pluginDir, "--lock-file", f.lock}, io)
	}()
	f.waitApplying()
	start := time.Now()
	sigs <- os.Interrupt
	var code int
	select {
	case code = <-codec:
	case <-time.After(cli.ApplyGrace + closeGrace + 10*time.Second):
		t.Fatalf("apply still running after the grace\n%s", stderr.String())
	}
	took := time.Since(start)
	if code != cli.ExitInterrupted || !strings.Contains(stderr.String(), "harden: echo-a did not finish or roll back its current step within 1s; killing its plugin now") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if took < cli.ApplyGrace || took > cli.ApplyGrace+closeGrace {
		t.Errorf("took %v; the grace is %v", took, cli.ApplyGrace)
	}
	waitNoPlugin(t, f.plugin, 2*time.Second)
}
