package testenv

import (
	"os/exec"
	"syscall"
	"time"
)

// process is a server process testenv started: its own process group, a
// SIGTERM to the parent's death, an exited channel, and a stop that
// escalates from SIGTERM to SIGKILL of the whole group.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs cmd in a new process group that dies with testenv.
func (p *process) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	return nil
}

// stop sends SIGTERM and, after grace, SIGKILL to the process group.
func (p *process) stop(grace time.Duration) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	p.cmd = nil
}

// pid is the running process's id, 0 when there is none.
func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
