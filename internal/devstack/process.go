package devstack

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process started in its own process group. A terminal's Ctrl-C goes to the
// foreground process group only, so it reaches the supervisor and not its children: the
// supervisor then stops them one by one, in the order that keeps in-flight work safe.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the result of cmd.Wait, set before done is closed
}

// StartProcess starts cmd as a Process named name (the name appears in errors). It replaces
// cmd.SysProcAttr with its own.
func StartProcess(name string, cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name returns the name given to StartProcess.
func (p *Process) Name() string { return p.name }

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and its output has been copied.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until the process exits and returns its exit error (nil for status 0). It can be
// called any number of times, from any goroutine.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM to the process group and waits up to grace for the process to exit, then
// sends SIGKILL to the group. It returns nil if the process exited cleanly or because of the
// SIGTERM itself, the process's exit error if its shutdown failed, and an error if it had to be
// killed. Stopping an exited process only returns how it exited.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.stopResult()
	default:
	}
	// The negative pid addresses the whole group, so helpers the child spawned stop with it.
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.stopResult()
	case <-timer.C:
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM and was killed", p.name, grace)
	}
}

func (p *Process) stopResult() error {
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			// A program without a SIGTERM handler dies of the signal we sent: that is a clean stop.
			return nil
		}
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}
