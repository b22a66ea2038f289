package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// reconcileBatch bounds one pass of the reconciler; the next pass takes the rest.
const reconcileBatch = 200

// Prune forgets, in one pass of the maintenance schedule, the Idempotency-Keys, abandoned-create
// tombstones and sent emails' bodies older than their retention.
func (a *Activities) Prune(ctx context.Context, in contract.MaintenanceInput) (contract.MaintenanceResult, error) {
	p, err := a.Store.PruneRetention(ctx, in.IdempotencyKeyTTL, in.EmailBodyRetention)
	if err != nil {
		return contract.MaintenanceResult{}, err
	}
	if p.IdempotencyKeys+p.EmailBodies+p.AbandonedCreates > 0 {
		a.Logger.Info("pruned", "idempotency_keys", p.IdempotencyKeys, "email_bodies", p.EmailBodies, "abandoned_creates", p.AbandonedCreates)
	}
	return contract.MaintenanceResult{IdempotencyKeysPruned: p.IdempotencyKeys, EmailBodiesPruned: p.EmailBodies, AbandonedCreatesPruned: p.AbandonedCreates}, nil
}

// Reconcile finds pending invitations long past their expiry and asks Temporal about their
// workflow: one still running is left to it (a worker that was down catches up); one whose run
// has ended (terminated by hand, say) would otherwise hold its seat for ever, so the invitation
// is closed as expired, releasing the seat, with a log line and onboarding_reconciled_total.
func (a *Activities) Reconcile(ctx context.Context, in contract.MaintenanceInput) ([]uuid.UUID, error) {
	overdue, err := a.Store.OverduePending(ctx, in.ReconcileGrace, reconcileBatch)
	if err != nil {
		return nil, err
	}
	var released []uuid.UUID
	for _, o := range overdue {
		running, err := a.workflowRunning(ctx, contract.InvitationWorkflowID(o.ID))
		if err != nil {
			return released, err
		}
		if running {
			continue
		}
		detail := fmt.Sprintf("released by the reconciler: its workflow had ended while it was pending (expiry %s)", o.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
		changed, err := a.Store.CloseInvitation(ctx, o.ID, o.Generation, contract.StatusExpired, detail)
		if errors.Is(err, store.ErrInvalidState) || errors.Is(err, store.ErrSuperseded) {
			continue // it moved on meanwhile
		}
		if err != nil {
			return released, err
		}
		if changed {
			a.Logger.Warn("pending invitation without a running workflow released", "invitation_id", o.ID, "generation", o.Generation)
			a.Metrics.Reconciled()
			a.Metrics.InvitationCompleted(contract.StatusExpired)
			released = append(released, o.ID)
		}
	}
	return released, nil
}

// RetireExpired ends the runs of lifecycle 0 that still wait after their expiry (runs of the
// current lifecycle end with it), a page of them per pass, so that their code can go. A run that
// moved on meanwhile refuses, and is left alone.
func (a *Activities) RetireExpired(ctx context.Context) (int, error) {
	resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: reconcileBatch,
		Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s = '%s'",
			contract.WorkflowName, contract.SearchStatus.GetName(), contract.StatusExpired),
	})
	if err != nil {
		return 0, err
	}
	retired := 0
	for _, e := range resp.GetExecutions() {
		h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
			UpdateName: contract.UpdateRetireExpired, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			a.Logger.Info("expired run not retired", "workflow_id", e.GetExecution().GetWorkflowId(), "error", err)
			continue
		}
		retired++
	}
	if retired > 0 {
		a.Logger.Info("expired runs of lifecycle 0 retired", "count", retired)
	}
	return retired, nil
}

// workflowRunning reports whether a workflow's latest run is open.
func (a *Activities) workflowRunning(ctx context.Context, workflowID string) (bool, error) {
	d, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil // never started, or its closed run is past Temporal's retention
	}
	if err != nil {
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
