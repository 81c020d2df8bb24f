package applykit

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RunOptions tune Run.
type RunOptions struct {
	// Timeout bounds the command (0: only ctx bounds it).
	Timeout time.Duration
	// PipeGrace is how long Run still reads stdout/stderr after the command
	// itself exited, for a child it left behind holding them (default 2s).
	PipeGrace time.Duration
	// KillGrace is how long the process group gets between SIGTERM and
	// SIGKILL on timeout or cancellation (default 2s).
	KillGrace time.Duration
	// Env replaces the environment (nil: the plugin's own).
	Env []string
	// Dir is the working directory ("" the plugin's).
	Dir string
}

// Result is what a command left.
type Result struct {
	// ExitCode of the command itself (-1 when it was killed by a signal or
	// did not start).
	ExitCode int
	// Output is the tail of stdout and stderr interleaved, at most
	// OutputLimit bytes. It can hold anything the command printed — a
	// restart script may echo a password — so callers put it in an error
	// returned to the host (never a log line), trimmed, and only on
	// failure.
	Output []byte
	// Truncated: earlier output was dropped.
	Truncated bool
	// Duration from start to the command's exit.
	Duration time.Duration
}

// OutputLimit bounds the output Run keeps.
const OutputLimit = 64 << 10

// ErrTimedOut: the command ran past its timeout (or ctx ended) and its
// process group was killed.
var ErrTimedOut = errors.New("timed out: the command and its process group were killed")

// Run runs argv (no shell) in its own process group and waits for the
// command itself to exit; its exit status alone decides success.
//
//   - A child the command leaves running (a daemonising restart script
//     legitimately leaves the broker behind) is NOT killed, and when it
//     keeps stdout/stderr open Run stops reading them PipeGrace after the
//     command exited (cmd.WaitDelay) instead of waiting for the child.
//   - On timeout or ctx cancellation the whole group gets SIGTERM, then
//     SIGKILL after KillGrace, and Run returns ErrTimedOut (or ctx.Err()
//     wrapped) within about KillGrace+PipeGrace.
func Run(ctx context.Context, argv []string, opts RunOptions) (Result, error) {
	res := Result{ExitCode: -1}
	if len(argv) == 0 || argv[0] == "" {
		return res, errors.New("empty command")
	}
	if opts.PipeGrace <= 0 {
		opts.PipeGrace = 2 * time.Second
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = 2 * time.Second
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if opts.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, opts.Timeout)
	}
	defer cancel()

	out := &tailBuffer{limit: OutputLimit}
	var killed atomic.Bool
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = opts.Env, opts.Dir
	cmd.Stdout, cmd.Stderr = out, out // stdin: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The command is outside the plugin's process group, so the host's
	// group kill does not reach it: it dies with the plugin instead (a hung
	// restart must not outlive harden and restart the broker during the
	// next run's recovery). The parent-death signal is tied to the thread
	// that forked, so that thread stays locked until the command exits.
	if dieWithParent(cmd.SysProcAttr) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	// exec calls Cancel only when runCtx ends before the command itself
	// exited: a command that finished keeps its children.
	cmd.Cancel = func() error {
		killed.Store(true)
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.AfterFunc(opts.KillGrace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
	// Once the command exited (or was cancelled), stop waiting for the
	// pipes after PipeGrace: a background child holding them must not block
	// the caller. exec then closes them; the child's later writes to them
	// fail (EPIPE), so a daemon should redirect its output.
	cmd.WaitDelay = opts.PipeGrace
	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	res.Output, res.Truncated = out.bytes()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if killed.Load() {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: cancelled, its process group was killed: %w", argv[0], ctx.Err())
		}
		return res, fmt.Errorf("%s: %w after %s", argv[0], ErrTimedOut, opts.Timeout)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited; a child kept its output open. The exit status
		// decides.
		err = nil
		if res.ExitCode != 0 {
			err = fmt.Errorf("exit status %d", res.ExitCode)
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", argv[0], err)
	}
	return res, nil
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	limit     int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...), t.truncated
}
