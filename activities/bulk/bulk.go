// Package bulk holds the activities of a bulk batch's workflow (workflows.InvitationBatch): they
// create the batch's rows through invitecreate, the path of the API's single create, so every
// row is judged with the same rules and answers the same codes.
package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/invitecreate"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Activities are the batch's activities.
type Activities struct {
	Store   *store.Store
	Creator *invitecreate.Service
	Logger  *slog.Logger
}

// CreateBatchRows creates up to in.Limit pending rows of the batch, recording each outcome, and
// answers where the batch stands. A failure to reach Postgres or Temporal fails the activity,
// which is retried: the rows it recorded stay recorded, and the others are created again under
// their own invitation ids.
func (a *Activities) CreateBatchRows(ctx context.Context, in contract.BatchRows) (contract.BatchProgress, error) {
	b, err := a.Store.GetBatch(ctx, in.AccountID, in.BatchID)
	if errors.Is(err, store.ErrNotFound) {
		return contract.BatchProgress{}, nil // deleted because its workflow was not started: nothing to do
	}
	if err != nil {
		return contract.BatchProgress{}, err
	}
	acc, err := a.Store.GetAccount(ctx, in.AccountID)
	if err != nil {
		return contract.BatchProgress{}, err
	}
	items, err := a.Store.PendingBatchItems(ctx, in.BatchID, in.Limit)
	if err != nil {
		return contract.BatchProgress{}, err
	}
	// One row after the other, in the batch's order: the first rows of a spreadsheet are the
	// ones that get the last seats, as if each had been sent on its own.
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return contract.BatchProgress{}, err
		}
		if err := a.createRow(ctx, acc, b, it); err != nil {
			return contract.BatchProgress{}, err
		}
		activity.RecordHeartbeat(ctx, it.Index)
	}
	return a.progress(ctx, in)
}

func (a *Activities) progress(ctx context.Context, in contract.BatchRows) (contract.BatchProgress, error) {
	b, err := a.Store.GetBatch(ctx, in.AccountID, in.BatchID)
	if err != nil {
		return contract.BatchProgress{}, err
	}
	return contract.BatchProgress{Succeeded: b.Succeeded, Failed: b.Failed, Remaining: b.Total - b.Succeeded - b.Failed}, nil
}

// createRow creates one row as the API's create would (without its Idempotency-Key: the row's
// fixed invitation id plays that part) and records the outcome. A refusal (a 4xx problem) is
// the row's outcome; anything else is returned, for the activity to be retried.
func (a *Activities) createRow(ctx context.Context, acc store.Account, b store.Batch, it store.BatchItem) error {
	// Created by an earlier attempt whose outcome was not recorded: it stands.
	if exists, err := a.Store.InvitationExists(ctx, it.InvitationID); err != nil || exists {
		if err != nil {
			return err
		}
		return a.finish(ctx, b, it, nil)
	}
	var req invitecreate.Request
	if err := json.Unmarshal(it.Request, &req); err != nil {
		return a.finish(ctx, b, it, problem.New(contract.CodeValidation, "The row could not be read: %v.", err))
	}
	req.Bulk = true
	in, sub, err := a.Creator.Input(ctx, acc, b.FullReach, req, it.InvitationID)
	if err == nil {
		err = a.Creator.Precheck(ctx, sub, in)
	}
	if err == nil {
		_, err = a.Creator.Start(ctx, in)
	}
	return a.finish(ctx, b, it, err)
}

// finish records a row's outcome: created when err is nil, failed for a refusal. Any other
// error is handed back unrecorded.
func (a *Activities) finish(ctx context.Context, b store.Batch, it store.BatchItem, err error) error {
	it.Status = store.ItemCreated
	if err != nil {
		var p *problem.Problem
		if !errors.As(err, &p) || p.Status >= http.StatusInternalServerError {
			return fmt.Errorf("row %d: %w", it.Index, err)
		}
		it.Status, it.ErrorCode, it.ErrorDetail = store.ItemFailed, string(p.Code), p.Detail
		if len(p.Errors) > 0 {
			it.ErrorFields, _ = json.Marshal(p.Errors)
		}
	}
	if err := a.Store.FinishBatchItem(ctx, b.ID, it); err != nil {
		return err
	}
	if a.Logger != nil && it.Status == store.ItemFailed {
		a.Logger.Debug("batch row refused", "batch_id", b.ID, "index", it.Index, "code", it.ErrorCode)
	}
	return nil
}

// CompleteBatch marks the batch completed once every row is finished.
func (a *Activities) CompleteBatch(ctx context.Context, batchID uuid.UUID) error {
	return a.Store.CompleteBatch(ctx, batchID)
}
