package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// closeGrace is the documented bound on top of --timeout (README "Plugins
// and trust"): the Stop call (1 s), the plugin's graceful exit and the wait
// after its process group is killed.
const closeGrace = time.Second + hostclient.GracefulExit + hostclient.KillWait

// pluginPids is what the echo plugin's child modes record: its pid, its
// process group and the pid of the `sleep 300` child holding its stdout.
type pluginPids struct{ plugin, pgid, child int }

// kill cleans up after a failed test: the plugin's group only when it is
// the plugin's own (never the test's), and the child.
func (p pluginPids) kill() {
	if p.pgid == p.plugin && p.pgid > 1 {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
	if p.child > 1 {
		_ = syscall.Kill(p.child, syscall.SIGKILL)
	}
	if p.plugin > 1 {
		_ = syscall.Kill(p.plugin, syscall.SIGKILL)
	}
}

func waitPids(t *testing.T, f *fixture) pluginPids {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, err := os.ReadFile(f.state + ".pids")
		if fields := strings.Fields(string(data)); err == nil && len(fields) == 3 {
			var p pluginPids
			p.plugin, _ = strconv.Atoi(fields[0])
			p.pgid, _ = strconv.Atoi(fields[1])
			p.child, _ = strconv.Atoi(fields[2])
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin never started its child")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// runUntil waits for the harden process at most limit; past it the host is
// hung: it is killed (with what it left behind) and the test fails.
func runUntil(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer, limit time.Duration, p *pluginPids) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return code, time.Since(start)
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		if p != nil {
			p.kill()
		}
		<-done
		t.Fatalf("harden still running %v later: hung on the plugin's child\n%s", limit, out)
		return 0, 0
	}
}

func assertGroupGone(t *testing.T, p pluginPids) {
	t.Helper()
	if p.pgid != p.plugin {
		t.Errorf("plugin %d runs in process group %d, not its own", p.plugin, p.pgid)
		p.kill()
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(groupMembers(p.pgid)) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("processes %v of the plugin's group %d survived harden (child %d)", groupMembers(p.pgid), p.pgid, p.child)
			p.kill()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A plugin whose child keeps its stdout/stderr open: harden neither hangs
// when the plugin works normally nor ignores --timeout, SIGTERM or SIGINT
// when it hangs, and kills the whole group.
func TestNoHangOnPluginChild(t *testing.T) {
	cases := map[string]struct {
		mode   string
		args   []string
		signal os.Signal
		code   int
		limit  time.Duration
		stderr string
	}{
		"plugin works normally": {mode: "child", code: 0, limit: closeGrace},
		"timeout": {mode: "child-hang", args: []string{"--timeout", "1s"}, code: cli.ExitTarget, limit: time.Second + closeGrace,
			stderr: "plugin echo did not finish verify in time"},
		"SIGTERM": {mode: "child-hang", signal: syscall.SIGTERM, code: cli.ExitInterrupted, limit: closeGrace, stderr: "interrupted"},
		"SIGINT":  {mode: "child-hang", signal: os.Interrupt, code: cli.ExitInterrupted, limit: closeGrace, stderr: "interrupted"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.mode)
			f.lockPlugins()
			cmd, out := f.hostProcess(append([]string{"verify", "-f", f.policy}, tc.args...)...)
			p := waitPids(t, f)
			start := time.Now()
			if tc.signal != nil {
				time.Sleep(100 * time.Millisecond)
				start = time.Now()
				_ = cmd.Process.Signal(tc.signal)
			}
			// A loaded machine gets 2 s on top of the documented bound.
			code, _ := runUntil(t, cmd, out, tc.limit+2*time.Second+15*time.Second, &p)
			took := time.Since(start)
			if took > tc.limit+2*time.Second {
				t.Errorf("harden took %v, more than the documented %v", took, tc.limit)
			}
			t.Logf("%s: exit %d after %v (bound %v)", name, code, took.Round(time.Millisecond), tc.limit)
			if code != tc.code || !strings.Contains(out.String(), tc.stderr) {
				t.Errorf("exit %d (want %d)\n%s", code, tc.code, out)
			}
			assertGroupGone(t, p)
		})
	}
}

// A SIGKILLed host cannot clean up: the plugin takes its whole process
// group, children included, with it.
func TestNoPluginChildSurvivesSIGKILLedHost(t *testing.T) {
	f := newFixture(t, "child-hang")
	f.lockPlugins()
	cmd, out := f.hostProcess("verify", "-f", f.policy)
	p := waitPids(t, f)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	runUntil(t, cmd, out, 10*time.Second, &p)
	assertGroupGone(t, p)
}
