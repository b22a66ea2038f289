// Package workflowclient is the API's side of the invitation workflows: it starts one with its
// create update, runs updates on one, and turns the answers into problems. The JSON API and the
// invitee operations (server/invitee) both ask the workflows through it.
package workflowclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/server/problem"
)

// timeout bounds an update, which waits for the workflow's activities (accept provisions the
// user): long enough for a slow database, short of the server's write timeout.
const timeout = 20 * time.Second

// Client runs the invitation workflows of one task queue.
type Client struct {
	Temporal  client.Client
	TaskQueue string
}

// ErrWorkflowClosed means the invitation's workflow has finished: an update to it answers
// NotFound, and the caller decides the answer from the invitation's row.
var ErrWorkflowClosed = errors.New("the invitation's workflow has finished")

// Start starts the invitation's workflow and runs its create update in one call,
// waiting until the workflow has reserved the seat and recorded the invitation (or refused).
// Re-running it for the same id joins the running workflow, and the fixed update id makes
// Temporal answer the first create's outcome instead of creating twice.
//
// A create that failed for a passing reason (its Postgres step ran out of time: the run then
// ends, with nothing recorded) is not the invitation's fate, but Temporal keeps answering that
// outcome to the same update id, even after the run closed. So Start tries again under an
// update id named after the failed run: that starts a fresh run, and concurrent retries of the
// same request, deriving the same id, join it rather than race it.
func (w *Client) Start(ctx context.Context, in contract.InvitationInput) (contract.State, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	updateID := contract.CreateUpdateID
	for {
		st, runID, err := w.start(ctx, in, updateID)
		var appErr *temporal.ApplicationError
		switch {
		case errors.As(err, &appErr) && appErr.Type() == string(contract.CodeUnavailable) && runID != "":
			updateID = contract.CreateUpdateID + "-after-" + runID
		case errors.As(err, &appErr) && appErr.Type() == string(contract.CodeInvalidState) && updateID != contract.CreateUpdateID:
			// The failed run has not closed yet and refuses a second create: ask again once it has.
			select {
			case <-ctx.Done():
				return st, workflowError(ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return st, workflowError(err)
		}
	}
}

// start is one update-with-start of the create update under updateID; it returns the run that
// answered.
func (w *Client) start(ctx context.Context, in contract.InvitationInput, updateID string) (contract.State, string, error) {
	op := w.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       contract.InvitationWorkflowID(in.InvitationID),
		TaskQueue:                w.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            staticSummary(in),
	}, contract.WorkflowName, in)
	handle, err := w.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   contract.UpdateCreate,
			UpdateID:     updateID,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return contract.State{}, "", err
	}
	var st contract.State
	err = handle.Get(ctx, &st)
	return st, handle.RunID(), err
}

// Update runs an update on an invitation's workflow and waits for its outcome.
// It addresses the existing workflow only: a closed one answers ErrWorkflowClosed, never a
// new run.
func (w *Client) Update(ctx context.Context, id uuid.UUID, name string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   contract.InvitationWorkflowID(id),
		UpdateName:   name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if arg != nil {
		opts.Args = []any{arg}
	}
	handle, err := w.Temporal.UpdateWorkflow(ctx, opts)
	if err == nil {
		err = handle.Get(ctx, result)
	}
	return workflowError(err)
}

// workflowError turns the error of a Temporal call into a problem, ErrWorkflowClosed, or a
// 503: the workflow's business errors (ApplicationErrors typed with an API code) keep their
// code; anything else means Temporal, the worker or an activity could not do it now, which a
// retry may fix, so it is never a 500.
func workflowError(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && contract.Code(appErr.Type()).Business() {
		p := problem.New(contract.Code(appErr.Type()), "%s", refusal(appErr.Message()))
		switch contract.Code(appErr.Type()) {
		case contract.CodeRateLimited:
			var d contract.RateLimitDetails
			if appErr.HasDetails() && appErr.Details(&d) == nil && d.RetryAfter > 0 {
				p.RetryAfter = d.RetryAfter
			} else {
				p.RetryAfter = time.Second // the header must be there either way
			}
		case contract.CodeValidation:
			p.Errors = []problem.FieldError{{Field: problem.BodyField, Message: appErr.Message()}}
		}
		return p
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w: %w", ErrWorkflowClosed, err)
	}
	return problem.Unavailable(err)
}

// refusal is the detail of a workflow's refusal: its message as a sentence.
func refusal(msg string) string {
	if detail := problem.Sentence(msg); detail != "" {
		return detail
	}
	return "The invitation's workflow refused the request."
}

// staticSummary is the line the Temporal UI shows for the workflow. It masks the local part
// of the address (support searches by id; the summary must not spread addresses further).
func staticSummary(in contract.InvitationInput) string {
	return fmt.Sprintf("Invite %s to %s / %s as %s", contract.MaskEmail(in.Email), in.AccountName, in.Application, in.Role)
}
