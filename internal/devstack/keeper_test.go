package devstack

import (
	"os/exec"
	"testing"
	"time"
)

// A kept process that crashes is started again; one that is stopped stays stopped.
func TestKeeperRestartsACrashedProcess(t *testing.T) {
	k, err := Keep("sleeper", func() (*Process, error) {
		return StartProcess("sleeper", exec.Command("sleep", "60"))
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	first := k.Process()
	restarted := k.Restarted()
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-restarted:
	case <-time.After(10 * time.Second):
		t.Fatal("not started again within 10 s")
	}
	if k.Process().Pid() == first.Pid() || k.Restarts() != 1 {
		t.Fatalf("after a crash: pid %d (was %d), %d restarts", k.Process().Pid(), first.Pid(), k.Restarts())
	}
	second := k.Process()
	if err := k.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.Done():
	default:
		t.Fatal("Stop returned with the process still running")
	}
	time.Sleep(keeperMinBackoff * 3)
	if k.Restarts() != 1 || k.Process() != second {
		t.Fatalf("a stopped process was started again (%d restarts)", k.Restarts())
	}
}
