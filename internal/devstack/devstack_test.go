package devstack

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// temporalCLI finds the CLI the way `make test` provides it. A missing CLI fails the test rather
// than skipping it: a skipped dev-server test would let `go test ./...` pass with nothing tested.
func temporalCLI(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, ".bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Temporal CLI not found (%v): run `make test`, which builds .bin/temporal, or set TEMPORAL_CLI", err)
	}
	return path
}

func TestStartTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logFile := filepath.Join(t.TempDir(), "temporal.log")
	// Every port free and the UI off: this must run next to `make run`'s dev server.
	srv, err := StartTemporal(ctx, TemporalOptions{Binary: temporalCLI(t), LogFile: logFile})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	if srv.UIURL() != "" {
		t.Errorf("UIURL() = %q for a headless server", srv.UIURL())
	}

	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}

	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	// Every typed key the workflow upserts must be in the table the dev server registers.
	for _, key := range []interface{ GetName() string }{
		contract.SearchStatus, contract.SearchAccountID, contract.SearchSubscriptionID, contract.SearchApplication,
		contract.SearchGeneration, contract.SearchDelivery, contract.SearchEmailHash,
	} {
		if _, ok := contract.SearchAttributeTypes()[key.GetName()]; !ok {
			t.Errorf("search attribute %s is upserted by the workflow but not registered", key.GetName())
		}
	}
	for name, want := range contract.SearchAttributeTypes() {
		if got, ok := resp.GetCustomAttributes()[name]; !ok || got != want {
			t.Errorf("search attribute %s: registered=%v type=%v, want %v", name, ok, got, want)
		}
	}

	// Update-with-start and an activity run through the server's task queues, so that the
	// dynamic config values the service depends on are read; a value of the wrong type shows up
	// as a warning in the log, checked below.
	const taskQueue = "devstack-probe"
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(probeWorkflow)
	w.RegisterActivity(probeActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       "devstack-probe",
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, probeWorkflow)
	update, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: "finish", WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err != nil {
		t.Fatalf("UpdateWithStartWorkflow: %v", err)
	}
	var reply string
	if err := update.Get(ctx, &reply); err != nil || reply != "pong" {
		t.Fatalf("update reply = %q, %v; want pong", reply, err)
	}
	run, err := start.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("probe workflow: %v", err)
	}
	w.Stop()

	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopped = true
	select {
	case <-srv.Done():
	default:
		t.Error("Done() is open after Stop returned")
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "Failed to convert value") {
		t.Errorf("the dev server rejected a dynamic config value:\n%s", log)
	}
}

func probeWorkflow(ctx workflow.Context) error {
	finished := false
	if err := workflow.SetUpdateHandler(ctx, "finish", func(ctx workflow.Context) (string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
		var out string
		err := workflow.ExecuteActivity(ctx, probeActivity).Get(ctx, &out)
		finished = true
		return out, err
	}); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return finished && workflow.AllHandlersFinished(ctx) })
}

func probeActivity(context.Context) (string, error) { return "pong", nil }

func TestIsPinnedTemporalCLI(t *testing.T) {
	ctx := context.Background()
	if cli := temporalCLI(t); !isPinnedTemporalCLI(ctx, cli) {
		t.Errorf("%s is not recognised as Temporal CLI %s; `make clean test` rebuilds it", cli, TemporalCLIVersion)
	}
	if isPinnedTemporalCLI(ctx, "/bin/true") {
		t.Error("/bin/true is recognised as the Temporal CLI")
	}
	if isPinnedTemporalCLI(ctx, filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing file is recognised as the Temporal CLI")
	}
}

func TestStartTemporalReportsEarlyExit(t *testing.T) {
	// A frontend port that is taken makes the CLI exit at once; StartTemporal must say so
	// promptly instead of polling for a minute.
	cli := temporalCLI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	begin := time.Now()
	_, err = StartTemporal(context.Background(), TemporalOptions{Binary: cli, Port: port, LogFile: filepath.Join(t.TempDir(), "temporal.log")})
	if err == nil || !strings.Contains(err.Error(), "exited during start") {
		t.Fatalf("StartTemporal on a taken port: err = %v, want an early-exit error", err)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("early exit reported after %s", d)
	}
}

func TestProcessStop(t *testing.T) {
	p, err := StartProcess("sleeper", exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop of a process that dies of SIGTERM: %v", err)
	}

	// SIGTERM ignored by the shell and, inherited, by its child: both must be killed.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stubborn := exec.Command("sh", "-c", `trap "" TERM; echo ready; sleep 60 & wait`)
	stubborn.Stdout = w
	p, err = StartProcess("stubborn", stubborn)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil { // the trap is in place
		t.Fatal(err)
	}
	err = p.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v, want a killed error", err)
	}

	p, err = StartProcess("failing", exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if err := p.Stop(time.Second); err == nil {
		t.Error("Stop of a process that had failed returned nil")
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(mod), "module github.com/onboarding-service/onboarding\n") {
		t.Errorf("RepoRoot() = %s, whose go.mod is not this module's", root)
	}
}

func TestStartTemporalRetriesATakenPickedPort(t *testing.T) {
	// A port StartTemporal picked is taken before the server binds it: the server exits, and
	// StartTemporal starts it again on fresh ports.
	cli := temporalCLI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	handedOut := 0
	pickPort = func() (int, error) {
		handedOut++
		if handedOut == 1 {
			return taken, nil // the first attempt's frontend port
		}
		return FreePort()
	}
	defer func() { pickPort = FreePort }()
	srv, err := StartTemporal(context.Background(), TemporalOptions{Binary: cli, LogFile: filepath.Join(t.TempDir(), "temporal.log")})
	if err != nil {
		t.Fatalf("StartTemporal after a taken picked port: %v", err)
	}
	defer srv.Stop()
	if handedOut < 6 || strings.HasSuffix(srv.Address(), ":"+strconv.Itoa(taken)) {
		t.Fatalf("server at %s after %d picked ports; want a second attempt on fresh ports (the first had %d)", srv.Address(), handedOut, taken)
	}
}
