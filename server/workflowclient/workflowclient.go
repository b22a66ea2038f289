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

	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/problem"
)

// timeout bounds an update, which waits for the workflow's activities (accept provisions the
// user): long enough for a slow database, short of the server's write timeout.
const timeout = 20 * time.Second

// Client runs the invitation workflows of one task queue.
type Client struct {
	Temporal  client.Client
	TaskQueue string
	// Settings and EmailHashKey make the input of a run that Resume starts from a row, as the
	// API makes a create's.
	Settings     contract.Settings
	EmailHashKey []byte
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
	in.Lifecycle = contract.Lifecycle2
	var st contract.State
	runID, err := w.updateWithStart(ctx, in, contract.StartSearchAttributes(in, contract.Created),
		client.UpdateWorkflowOptions{UpdateName: contract.UpdateCreate, UpdateID: updateID}, &st)
	return st, runID, err
}

// updateWithStart sends an update to the invitation's open run, or to a new run of in when
// none is open, and waits for its outcome; it returns the run that answered.
func (w *Client) updateWithStart(ctx context.Context, in contract.InvitationInput, sa temporal.SearchAttributes, opts client.UpdateWorkflowOptions, result any) (string, error) {
	op := w.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       contract.InvitationWorkflowID(in.InvitationID),
		TaskQueue:                w.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            staticSummary(in),
		TypedSearchAttributes:    sa,
	}, contract.WorkflowName, in)
	opts.WaitForStage = client.WorkflowUpdateStageCompleted
	var runID string
	err := whenReady(ctx, func() error {
		handle, err := w.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions:          opts,
		})
		if err != nil {
			return err
		}
		runID = handle.RunID()
		return handle.Get(ctx, result)
	})
	return runID, err
}

// whenReady runs an update call again while Temporal answers WorkflowNotReady: the workflow
// task that ran the update could not complete (an event arrived while it ran, and the task that
// would have closed the run is rewound), so the run forgot the update. Every step an update runs
// is idempotent, keyed by invitation and generation, so the update is simply sent again; the
// caller never sees a 503 for what was only a rewind.
func whenReady(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		var notReady *serviceerror.WorkflowNotReady
		if !errors.As(err, &notReady) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(min(attempt, 10)) * 20 * time.Millisecond):
		}
	}
}

// Resume runs an update (renew, revoke, request_renewal) on an expired invitation. Its last run
// ended with the expiry, so the update starts the next run, from the row; if a run is still open
// (one that is finishing, or one of lifecycle 0, which waits after the expiry) the update goes to
// it instead. A repeated updateID gets the first outcome, even once that run has closed.
func (w *Client) Resume(ctx context.Context, inv store.Invitation, renewalRequestedAt time.Time, name, updateID string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := w.resumeInput(inv, renewalRequestedAt)
	opts := client.UpdateWorkflowOptions{UpdateName: name, UpdateID: updateID}
	if arg != nil {
		opts.Args = []any{arg}
	}
	_, err := w.updateWithStart(ctx, in, contract.StartSearchAttributes(in, *in.Carried), opts, result)
	return workflowError(err)
}

// resumeInput is the input of a run that starts from the invitation's row: the invitation as
// created, and its state as Postgres has it.
func (w *Client) resumeInput(inv store.Invitation, renewalRequestedAt time.Time) contract.InvitationInput {
	in := contract.InvitationInput{
		InvitationID:     inv.ID,
		AccountID:        inv.AccountID,
		AccountName:      inv.AccountName,
		SubscriptionID:   inv.SubscriptionID,
		SubscriptionName: inv.Subscription,
		Application:      inv.Application,
		Role:             inv.Role,
		GroupIDs:         inv.GroupIDs,
		UserID:           inv.UserID,
		Email:            inv.Email,
		FirstName:        inv.FirstName,
		LastName:         inv.LastName,
		Phone:            inv.Phone,
		Inviter:          contract.Person{Name: inv.InviterName, Email: inv.InviterEmail},
		Settings:         w.Settings,
		EmailHash:        emailhash.Hash(w.EmailHashKey, inv.Email),
		Lifecycle:        contract.Lifecycle2,
		HoldEmail:        inv.HoldEmail,
		Message:          inv.Message,
		Metadata:         inv.Metadata,
		RedirectURL:      inv.RedirectURL,
		Carried: &contract.State{
			InvitationID:       inv.ID,
			Status:             inv.Status,
			Generation:         inv.Generation,
			ExpiresAt:          inv.ExpiresAt,
			Sends:              inv.Sends,
			InviteSent:         true,
			ReminderSent:       true,
			RenewalRequestedAt: renewalRequestedAt,
			Delivery:           contract.Delivery{Status: inv.DeliveryStatus, Error: inv.DeliveryError},
		},
	}
	if inv.ExpiresIn > 0 {
		in.Settings.TTL = inv.ExpiresIn // the invitation's own validity, also for its renewals
	}
	return in
}

// Update runs an update on an invitation's workflow and waits for its outcome. updateID (see
// contract.UpdateID; "" for a fresh one) makes a retry get the first outcome, even once the
// run has closed. It addresses the existing workflow only: a closed one answers
// ErrWorkflowClosed for an update it did not run, never a new run.
func (w *Client) Update(ctx context.Context, id uuid.UUID, name, updateID string, arg, result any) error {
	return w.UpdateWorkflow(ctx, contract.InvitationWorkflowID(id), name, updateID, arg, result)
}

// UpdateWorkflow is Update for any of the service's workflows, by workflow ID.
func (w *Client) UpdateWorkflow(ctx context.Context, workflowID, name, updateID string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   name,
		UpdateID:     updateID,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if arg != nil {
		opts.Args = []any{arg}
	}
	err := whenReady(ctx, func() error {
		handle, err := w.Temporal.UpdateWorkflow(ctx, opts)
		if err != nil {
			return err
		}
		return handle.Get(ctx, result)
	})
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
