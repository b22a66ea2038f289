package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// createLifecycle0 creates an invitation as the API did before the lifecycle was versioned: a
// run of lifecycle 0 (in.Lifecycle 0), as those still open after an upgrade are. It returns the
// create's answer.
func createLifecycle0(ctx context.Context, t *testing.T, c client.Client, taskQueue string, in contract.InvitationInput) contract.State {
	t.Helper()
	var st contract.State
	for attempt := 1; ; attempt++ {
		op := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
			ID:                       contract.InvitationWorkflowID(in.InvitationID),
			TaskQueue:                taskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			StaticSummary: fmt.Sprintf("Invite %s to %s / %s as %s",
				contract.MaskEmail(in.Email), in.AccountName, in.Application, in.Role),
		}, contract.WorkflowName, in)
		handle, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName:   contract.UpdateCreate,
				UpdateID:     contract.CreateUpdateID,
				WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err == nil {
			err = handle.Get(ctx, &st)
		}
		// A rewound workflow task forgets the update: send it again, as the API does.
		var notReady *serviceerror.WorkflowNotReady
		if errors.As(err, &notReady) && attempt < 10 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("create of lifecycle 0 for %s: %v", in.Email, err)
		}
		return st
	}
}
