package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/store"
)

// What the API asks of the invitation workflows, and how their answers become problems.

// errWorkflowClosed means the invitation's workflow has finished: an update to it answers
// NotFound, and the caller decides the answer from the invitation's row.
var errWorkflowClosed = errors.New("the invitation's workflow has finished")

// startInvitation starts the invitation's workflow and runs its create update in one call,
// waiting until the workflow has reserved the seat and recorded the invitation (or refused).
// Re-running it for the same id joins the running workflow, and the fixed update id makes
// Temporal answer the first create's outcome instead of creating twice.
func (s *Server) startInvitation(ctx context.Context, in contract.InvitationInput) (contract.State, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	op := s.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       contract.InvitationWorkflowID(in.InvitationID),
		TaskQueue:                s.cfg.TemporalTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            staticSummary(in),
	}, contract.WorkflowName, in)
	handle, err := s.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   contract.UpdateCreate,
			UpdateID:     contract.CreateUpdateID,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var st contract.State
	if err == nil {
		err = handle.Get(ctx, &st)
	}
	return st, workflowError(err)
}

// updateInvitation runs an update on an invitation's workflow and waits for its outcome.
// It addresses the existing workflow only: a closed one answers errWorkflowClosed, never a
// new run.
func (s *Server) updateInvitation(ctx context.Context, id uuid.UUID, name string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   contract.InvitationWorkflowID(id),
		UpdateName:   name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if arg != nil {
		opts.Args = []any{arg}
	}
	handle, err := s.temporal.UpdateWorkflow(ctx, opts)
	if err == nil {
		err = handle.Get(ctx, result)
	}
	return workflowError(err)
}

// workflowError turns the error of a Temporal call into a problem, errWorkflowClosed, or a
// 503: the workflow's business errors (ApplicationErrors typed with an API code) keep their
// code; anything else means Temporal, the worker or an activity could not do it now, which a
// retry may fix, so it is never a 500.
func workflowError(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && contract.Code(appErr.Type()).Business() {
		p := newProblem(contract.Code(appErr.Type()), "%s", sentence(appErr.Message()))
		switch contract.Code(appErr.Type()) {
		case contract.CodeRateLimited:
			var d contract.RateLimitDetails
			if appErr.HasDetails() && appErr.Details(&d) == nil && d.RetryAfter > 0 {
				p.retryAfter = d.RetryAfter
			} else {
				p.retryAfter = time.Second // the header must be there either way
			}
		case contract.CodeValidation:
			p.Errors = []fieldError{{Field: bodyField, Message: appErr.Message()}}
		}
		return p
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w: %w", errWorkflowClosed, err)
	}
	return unavailable(err)
}

// sentence capitalises a message and ends it with a full stop, as problem details read.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "The invitation's workflow refused the request."
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = strings.ToUpper(string(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// staticSummary is the line the Temporal UI shows for the workflow. It masks the local part
// of the address (support searches by id; the summary must not spread addresses further).
func staticSummary(in contract.InvitationInput) string {
	return fmt.Sprintf("Invite %s to %s / %s as %s", contract.MaskEmail(in.Email), in.AccountName, in.Application, in.Role)
}

// stateProblem is the answer for an action the invitation's status does not allow, decided
// from its row (when the workflow has finished, or before asking it).
func stateProblem(inv store.Invitation) *problem {
	return newProblem(contract.CodeInvalidState, "The invitation is %s.", inv.Status)
}
