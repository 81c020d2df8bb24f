package applykit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childPID reads the pid a test command printed on its first line.
func childPID(t *testing.T, out []byte) int {
	t.Helper()
	line, _, _ := strings.Cut(string(out), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("no child pid in %q", out)
	}
	return pid
}

// alive: the process exists and is no zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func waitDead(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still alive %s after the command was killed", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A restart script that leaves a background child holding stdout (a
// daemonised broker) returns as soon as the script itself exited plus the
// pipe grace, succeeds on the script's own status, and leaves the child
// running (issue 12 item 5: exec's CombinedOutput waited for the child).
func TestRunChildHoldingStdoutReturnsPromptly(t *testing.T) {
	start := time.Now()
	res, err := Run(t.Context(), []string{"sh", "-c", "sleep 300 & echo $!; echo started"}, RunOptions{Timeout: time.Minute, PipeGrace: 300 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v (%q)", err, res.Output)
	}
	pid := childPID(t, res.Output)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if took > 3*time.Second {
		t.Errorf("Run took %s with a child holding stdout", took)
	}
	if res.ExitCode != 0 || !strings.Contains(string(res.Output), "started") {
		t.Errorf("result %+v", res)
	}
	if !alive(pid) {
		t.Errorf("the child the command left behind was killed on success")
	}
}

// A command that hangs is killed with its whole group at the timeout, a
// child that ignores SIGTERM too (SIGKILL after KillGrace).
func TestRunTimeoutKillsTheGroup(t *testing.T) {
	for name, script := range map[string]string{
		"hang":            "sleep 300 & echo $!; wait",
		"ignores SIGTERM": `trap "" TERM; sh -c 'trap "" TERM; sleep 300' & echo $!; wait`,
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			res, err := Run(t.Context(), []string{"sh", "-c", script}, RunOptions{Timeout: 500 * time.Millisecond, KillGrace: 300 * time.Millisecond, PipeGrace: 300 * time.Millisecond})
			took := time.Since(start)
			if !errors.Is(err, ErrTimedOut) {
				t.Fatalf("Run: %v, want ErrTimedOut", err)
			}
			if took > 3*time.Second {
				t.Errorf("Run took %s for a 500ms timeout", took)
			}
			if res.ExitCode != -1 {
				t.Errorf("exit code %d of a killed command", res.ExitCode)
			}
			waitDead(t, childPID(t, res.Output), 3*time.Second)
		})
	}
}

// Cancelling ctx (the host's Stop) kills the group as a timeout does.
func TestRunCancelKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	res, err := Run(ctx, []string{"sh", "-c", "sleep 300 & echo $!; wait"}, RunOptions{KillGrace: 300 * time.Millisecond, PipeGrace: 300 * time.Millisecond})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	waitDead(t, childPID(t, res.Output), 3*time.Second)
}

// The command's own status decides, with its output (bounded) kept.
func TestRunExitStatusAndOutput(t *testing.T) {
	res, err := Run(t.Context(), []string{"sh", "-c", "echo oops >&2; exit 3"}, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || res.ExitCode != 3 || strings.TrimSpace(string(res.Output)) != "oops" {
		t.Errorf("Run: %v %+v", err, res)
	}
	res, err = Run(t.Context(), []string{"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo END"}, RunOptions{})
	if err != nil || len(res.Output) != OutputLimit || !res.Truncated || !strings.HasSuffix(string(res.Output), "xEND\n") {
		t.Errorf("Run: %v, %d bytes kept, truncated %v", err, len(res.Output), res.Truncated)
	}
	if _, err := Run(t.Context(), []string{"/nonexistent/restart"}, RunOptions{}); err == nil {
		t.Errorf("a missing command succeeded")
	}
	if _, err := Run(t.Context(), nil, RunOptions{}); err == nil {
		t.Errorf("an empty command succeeded")
	}
}

// TestRunHelperProcess is the "plugin" of TestRunCommandDiesWithThePlugin:
// it runs a command that writes its pid and hangs. Nothing in a normal run.
func TestRunHelperProcess(t *testing.T) {
	pidFile := os.Getenv("HARDEN_RUN_HELPER_PIDFILE")
	if pidFile == "" {
		return
	}
	Run(context.Background(), []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 300"}, RunOptions{})
}

// A command the plugin runs is in its own process group, out of reach of the
// host's group kill: when the plugin is killed, the command dies with it (a
// hung restart_command outlived harden before; review).
func TestRunCommandDiesWithThePlugin(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestRunHelperProcess$", "-test.count=1")
	helper.Env = append(os.Environ(), "HARDEN_RUN_HELPER_PIDFILE="+pidFile)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			helper.Process.Kill()
			t.Fatal("the command never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	helper.Process.Kill()
	helper.Wait()
	for deadline = time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; {
		if stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); strings.Contains(string(stat), ") Z ") {
			break // a zombie: dead, not yet reaped
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command (pid %d) outlived the killed plugin", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
