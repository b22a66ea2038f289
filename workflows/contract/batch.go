package contract

import (
	"fmt"

	"github.com/google/uuid"
)

// Bulk invitations (CONTRACT.md "Bulk invitations"): one workflow per batch creates its rows,
// each exactly as a single create would, under the invitation id fixed for the row when the
// batch was accepted. Its rows live in Postgres; the workflow carries only their batch's id.
const (
	BatchWorkflowName = "InvitationBatch"
	// The batch's activities, registered by name (they are the worker's, not the invitation
	// workflow's: they create invitations through the same path as the API).
	ActivityCreateBatchRows = "CreateBatchRows"
	ActivityCompleteBatch   = "CompleteBatch"
	// MaxBatchItems bounds a batch.
	MaxBatchItems = 1000
)

// BatchWorkflowID is a batch's workflow ID, so support finds it in the Temporal UI.
func BatchWorkflowID(batchID uuid.UUID) string { return "invitation-batch:" + batchID.String() }

// BatchInput starts a batch's workflow.
type BatchInput struct {
	BatchID   uuid.UUID
	AccountID uuid.UUID
	Total     int
}

// BatchRows asks CreateBatchRows to create up to Limit of the batch's pending rows.
type BatchRows struct {
	BatchID   uuid.UUID
	AccountID uuid.UUID
	Limit     int
}

// BatchProgress is where a batch stands after a CreateBatchRows.
type BatchProgress struct {
	Succeeded int // rows created so far
	Failed    int // rows refused so far
	Remaining int // rows still to create
}

// Summary says it in words, for the Temporal UI.
func (p BatchProgress) Summary(total int) string {
	if p.Remaining == 0 {
		return fmt.Sprintf("Completed: %d of %d rows created, %d failed.", p.Succeeded, total, p.Failed)
	}
	return fmt.Sprintf("Creating rows: %d created, %d failed, %d to go (of %d).", p.Succeeded, p.Failed, p.Remaining, total)
}
