package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/workflows"
)

// Replay tests: histories of real runs of every lifecycle path, recorded on the real stack by
// internal/testkit/faults (TestRecordHistories) and committed under testdata/histories, are replayed
// against the workflow code as it is now. A change that would make a running invitation's
// workflow take a different path through its own history (a new activity or timer, a reordered
// one, a removed update handler...) fails here instead of in production, where it would stop
// every open invitation with a non-determinism error. docs/operations.md says how to make such
// a change safely (workflow.GetVersion) and when to record again:
//
//	go test ./internal/testkit/faults -run TestRecordHistories -record

// historyPaths are the lifecycle paths whose histories, recorded with the current lifecycle,
// must be present (<path>.json, or <path>.runN.json for a path of several runs): deleting one to
// make this test pass is not a fix. Histories kept from earlier lifecycles (*.lifecycle0.json,
// *.before-v1.json) are the runs still open in production; they are replayed too.
var historyPaths = []string{
	"accepted",                  // created -> invite email -> accepted (the welcome email has its own workflow)
	"declined",                  // created -> invite email -> declined
	"revoked",                   // created -> invite email -> revoked
	"expired",                   // created -> reminder -> expired: the run ends
	"expired-renewed-accepted",  // run 1: created -> reminder -> expired; run 2: renewed -> accepted
	"resent-accepted",           // created -> resend -> resend -> accepted
	"history-full-accepted",     // run 1: created -> resent until its history is full; run 2: continued as new -> accepted
	"email-failed-revoked",      // created -> email refused by Resend (delivery failed) -> revoked
	"renewal-requested-revoked", // run 1: created -> expired; run 2: the invitee asks for a new one (then revoked, in Postgres)
	"rejected",                  // the create refused (no seat): nothing recorded
	"password-reset-confirmed",  // a password reset: requested, requested again (superseding), confirmed
	"password-reset-unknown",    // a reset of an address nobody has: the run ends at once
}

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range historyPaths {
		current := regexp.MustCompile(`^` + regexp.QuoteMeta(p) + `(\.run\d+)?\.json$`)
		if !slices.ContainsFunc(files, func(f string) bool { return current.MatchString(filepath.Base(f)) }) {
			t.Errorf("no history of the %q path recorded with the current lifecycle in testdata/histories", p)
		}
	}
	return files
}

// replayer replays the service's workflows, with invitation (and reset) standing in for the
// current code of the invitation (and password-reset) workflow.
func replayer(invitation, reset any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(invitation, workflow.RegisterOptions{Name: contract.WorkflowName})
	r.RegisterWorkflowWithOptions(reset, workflow.RegisterOptions{Name: contract.PasswordResetWorkflowName})
	return r
}

// TestReplayRecordedHistories replays every recorded history against the current code.
func TestReplayRecordedHistories(t *testing.T) {
	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, file := range historyFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			if err := replayer(workflows.Invitation, workflows.PasswordReset).ReplayWorkflowHistoryFromJSONFile(logger, file); err != nil {
				t.Fatalf("%s no longer replays: the change breaks running workflows of this path; "+
					"guard it with workflow.GetVersion (docs/operations.md): %v", file, err)
			}
		})
	}
}

// TestReplayCatchesIncompatibleChange shows that the replay test has teeth: a workflow that
// sleeps before doing anything else, as a careless edit might add, fails to replay every
// recorded history (the invitations' and the password resets').
func TestReplayCatchesIncompatibleChange(t *testing.T) {
	changed := func(ctx workflow.Context, in contract.InvitationInput) (contract.State, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return contract.State{}, err
		}
		return workflows.Invitation(ctx, in)
	}
	changedReset := func(ctx workflow.Context, in contract.PasswordResetInput) error {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return err
		}
		return workflows.PasswordReset(ctx, in)
	}
	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, file := range historyFiles(t) {
		err := replayer(changed, changedReset).ReplayWorkflowHistoryFromJSONFile(logger, file)
		if err == nil || !strings.Contains(err.Error(), "TMPRL1100") { // the SDK's non-determinism error
			t.Errorf("%s against an incompatible workflow: %v; want a non-determinism error (TMPRL1100)", file, err)
		}
	}
}
