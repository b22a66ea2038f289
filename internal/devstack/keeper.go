package devstack

import (
	"errors"
	"sync"
	"syscall"
	"time"
)

// Keeper keeps one replica running, as an orchestrator does: when its process exits without
// being asked to, it is started again (after a short back-off that grows while it keeps
// failing), and the rest of the stack carries on. `make cluster` keeps every replica and every
// Temporal service with one; `make run` does not (there, any part's exit stops the whole stack).
type Keeper struct {
	name  string
	start func() (*Process, error)
	logf  func(format string, args ...any)

	mu       sync.Mutex
	cur      *Process
	stopping bool
	restarts int
	started  chan struct{} // closed and replaced at every (re)start, for WaitRestart
	done     chan struct{} // closed when the keeping loop has ended
}

const (
	keeperMinBackoff = 200 * time.Millisecond
	keeperMaxBackoff = 10 * time.Second
	// A process that ran this long was healthy: its next exit restarts it without back-off.
	keeperHealthyRun = 30 * time.Second
)

// Keep starts a process with start and keeps it running until Stop. logf, when set, is told of
// every exit and restart.
func Keep(name string, start func() (*Process, error), logf func(format string, args ...any)) (*Keeper, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	p, err := start()
	if err != nil {
		return nil, err
	}
	k := &Keeper{name: name, start: start, logf: logf, cur: p, started: make(chan struct{}), done: make(chan struct{})}
	go k.keep(p)
	return k, nil
}

// Name is the replica's name.
func (k *Keeper) Name() string { return k.name }

// Process is the replica's current process.
func (k *Keeper) Process() *Process {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur
}

// Restarts counts the restarts so far.
func (k *Keeper) Restarts() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.restarts
}

// Restarted returns a channel closed at the next restart.
func (k *Keeper) Restarted() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.started
}

// Kill sends SIGKILL to the current process's group: a crash, which the Keeper then repairs.
func (k *Keeper) Kill() error {
	p := k.Process()
	return syscall.Kill(-p.Pid(), syscall.SIGKILL)
}

// Done is closed once the Keeper has stopped for good.
func (k *Keeper) Done() <-chan struct{} { return k.done }

// Stop stops the replica (SIGTERM, then SIGKILL after grace) and keeps it stopped.
func (k *Keeper) Stop(grace time.Duration) error {
	k.mu.Lock()
	k.stopping = true
	p := k.cur
	k.mu.Unlock()
	err := p.Stop(grace)
	<-k.done
	return err
}

func (k *Keeper) keep(p *Process) {
	defer close(k.done)
	backoff := keeperMinBackoff
	for {
		began := time.Now()
		<-p.Done()
		k.mu.Lock()
		stopping := k.stopping
		k.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(began) > keeperHealthyRun {
			backoff = keeperMinBackoff
		}
		k.logf("%s exited (%v); starting it again in %s", k.name, errOrClean(p.Wait()), backoff)
		for {
			time.Sleep(backoff)
			backoff = min(backoff*2, keeperMaxBackoff)
			k.mu.Lock()
			if k.stopping {
				k.mu.Unlock()
				return
			}
			next, err := k.start()
			if err != nil {
				k.mu.Unlock()
				k.logf("%s: %v; trying again in %s", k.name, err, backoff)
				continue
			}
			k.cur, p = next, next
			k.restarts++
			close(k.started)
			k.started = make(chan struct{})
			k.mu.Unlock()
			break
		}
	}
}

func errOrClean(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}
