package workflows

import (
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// batchChunk is how many rows one CreateBatchRows creates: a 1000-row batch is ten activities.
const batchChunk = 100

// InvitationBatch creates a bulk batch's rows, chunk by chunk, and completes the batch. Rows
// are in Postgres, each with its outcome once created or refused, so a retried or restarted
// chunk takes up where the last one stopped; a row caught mid-create is created under its fixed
// invitation id and update ID, so it never exists twice.
func InvitationBatch(ctx workflow.Context, in contract.BatchInput) (contract.BatchProgress, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		// A worker that dies mid-chunk is noticed within seconds, and the chunk runs again.
		HeartbeatTimeout: 15 * time.Second,
		Summary:          "Create the next rows of the batch",
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})
	var p contract.BatchProgress
	p.Remaining = in.Total
	workflow.SetCurrentDetails(ctx, p.Summary(in.Total))
	for p.Remaining > 0 {
		if err := workflow.ExecuteActivity(actx, contract.ActivityCreateBatchRows, contract.BatchRows{
			BatchID: in.BatchID, AccountID: in.AccountID, Limit: batchChunk,
		}).Get(ctx, &p); err != nil {
			return p, err
		}
		workflow.SetCurrentDetails(ctx, p.Summary(in.Total))
	}
	cctx := workflow.WithActivityOptions(ctx, dbOptions("Mark the batch completed"))
	if err := workflow.ExecuteActivity(cctx, contract.ActivityCompleteBatch, in.BatchID).Get(ctx, nil); err != nil {
		return p, err
	}
	return p, nil
}
