package workflowclient

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// StartBatch starts a bulk batch's workflow; starting it again joins the one running.
func (w *Client) StartBatch(ctx context.Context, in contract.BatchInput) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := w.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       contract.BatchWorkflowID(in.BatchID),
		TaskQueue:                w.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Bulk invitations: %d rows for account %s", in.Total, in.AccountID),
	}, contract.BatchWorkflowName, in)
	return err
}
