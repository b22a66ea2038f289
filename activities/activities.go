// Package activities holds all the I/O of the invitation workflow: Postgres writes through the
// store, and email through Resend or the dev mailbox. Every activity is idempotent, keyed by
// invitation id and generation, so a retry or a worker crash never doubles a row or an email.
package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
)

// Store is the part of the Postgres store the activities use.
type Store interface {
	CreateInvitation(ctx context.Context, n store.NewInvitation) (bool, error)
	CloseInvitation(ctx context.Context, id uuid.UUID, generation int, to contract.Status, detail string) (bool, error)
	RenewInvitation(ctx context.Context, id uuid.UUID, generation int, expiresAt time.Time) error
	ProvisionUser(ctx context.Context, id uuid.UUID, generation int, passwordHash string) (store.Provisioned, error)
	AddEvent(ctx context.Context, invitationID uuid.UUID, typ, dedupeKey, detail string) error
	DiscardInvitation(ctx context.Context, id uuid.UUID) error
	AbandonCreate(ctx context.Context, id uuid.UUID, runID string) error
	PruneRetention(ctx context.Context, keys, bodies time.Duration) (store.Pruned, error)
	RecentInviteEmails(ctx context.Context, recipient string, since time.Time) (int, time.Time, error)
	OverduePending(ctx context.Context, grace time.Duration, limit int) ([]store.Overdue, error)
	GetInvitation(ctx context.Context, id uuid.UUID) (store.Invitation, error)
	GetEmail(ctx context.Context, key string) (store.Email, error)
	BeginEmail(ctx context.Context, e store.Email, inviteSeq int) (store.Email, error)
	FinishEmail(ctx context.Context, key string, status contract.DeliveryStatus, providerID, errMsg string) error
	EditInvitation(ctx context.Context, e store.Edit) (time.Time, error)
}

// Mailer sends one email. An error that wraps ErrRejected is permanent (the provider refused the
// message, e.g. an invalid recipient); other errors are retried.
type Mailer interface {
	Send(ctx context.Context, m Message) (providerID string, err error)
}

// Links computes the invite link of an invitation generation.
type Links interface {
	InviteURL(invitationID uuid.UUID, generation int) string
}

// Activities is registered with the worker as a whole; workflows call its methods.
type Activities struct {
	Store  Store
	Mailer Mailer
	Links  Links
	// Resets and ResetLinks serve the password reset (reset.go).
	Resets     ResetStore
	ResetLinks ResetLinks
	// From is the sender (EMAIL_FROM); PortalURL is where the welcome email points.
	From      string
	PortalURL string
	// RecipientDailyCap caps invite and reminder emails per address per 24 h (0: none).
	RecipientDailyCap int
	Logger            *slog.Logger
	// Metrics records business metrics; nil records nothing.
	Metrics *metrics.Business
	// Temporal starts the welcome email's workflow on TaskQueue, and tells the reconciler
	// whether an invitation's workflow runs (worker.New sets both).
	Temporal  Temporal
	TaskQueue string
}

// Temporal is the part of the Temporal client the activities use.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
}

// Error types of non-retryable activity failures beyond the workflow's business codes.
const (
	ErrEmailRejected = "email_rejected"
	ErrTemplate      = "template_error"
)

// CreateInvitation records the invitation and holds its seat in one transaction.
func (a *Activities) CreateInvitation(ctx context.Context, in store.NewInvitation) error {
	created, err := a.Store.CreateInvitation(ctx, in)
	if created {
		a.Metrics.InvitationCreated()
	}
	if errors.Is(err, store.ErrSeatsExhausted) {
		a.Metrics.SeatRefused(metrics.SeatActionCreate)
	}
	return businessError(err)
}

// DiscardInvitation removes what a create that the workflow gave up on may have left behind.
func (a *Activities) DiscardInvitation(ctx context.Context, invitationID uuid.UUID) error {
	return a.Store.DiscardInvitation(ctx, invitationID)
}

// AbandonInput names a create that its workflow run gave up on.
type AbandonInput struct {
	InvitationID uuid.UUID
	RunID        string
}

// AbandonCreate undoes a create that its run gave up on (it ran out of time, perhaps after
// committing), and keeps an attempt of it still in flight from committing later.
func (a *Activities) AbandonCreate(ctx context.Context, in AbandonInput) error {
	return a.Store.AbandonCreate(ctx, in.InvitationID, in.RunID)
}

// CloseInput moves an invitation generation to expired, revoked or declined.
type CloseInput struct {
	InvitationID uuid.UUID
	Generation   int
	Status       contract.Status
	Detail       string
}

// CloseInvitation records expiry, revocation or decline and releases a held seat.
func (a *Activities) CloseInvitation(ctx context.Context, in CloseInput) error {
	changed, err := a.Store.CloseInvitation(ctx, in.InvitationID, in.Generation, in.Status, in.Detail)
	if changed {
		a.Metrics.InvitationCompleted(in.Status)
	}
	return businessError(err)
}

// RenewInput starts a new generation of an expired invitation.
type RenewInput struct {
	InvitationID uuid.UUID
	Generation   int
	ExpiresAt    time.Time
}

// RenewInvitation reserves a seat again and records the new generation and expiry.
func (a *Activities) RenewInvitation(ctx context.Context, in RenewInput) error {
	err := a.Store.RenewInvitation(ctx, in.InvitationID, in.Generation, in.ExpiresAt)
	if errors.Is(err, store.ErrSeatsExhausted) {
		a.Metrics.SeatRefused(metrics.SeatActionRenew)
	}
	return businessError(err)
}

// ProvisionInput accepts an invitation generation.
type ProvisionInput struct {
	InvitationID uuid.UUID
	Generation   int
	PasswordHash string
	// StartWelcome hands the welcome email to its own workflow once the user exists, so the
	// invitation's run can complete with the accept. Runs of lifecycle 0 leave it false and
	// send the welcome email themselves.
	StartWelcome bool
}

// ProvisionResult names the provisioned user.
type ProvisionResult struct {
	UserID uuid.UUID
}

// ProvisionUser creates or reuses the user, the membership and the seat.
func (a *Activities) ProvisionUser(ctx context.Context, in ProvisionInput) (ProvisionResult, error) {
	start := time.Now()
	p, err := a.Store.ProvisionUser(ctx, in.InvitationID, in.Generation, in.PasswordHash)
	if err != nil {
		return ProvisionResult{}, businessError(err)
	}
	if p.New {
		a.Metrics.Accepted(p.FirstSentAt, time.Since(start))
	}
	if in.StartWelcome {
		// After the commit, and again on every retry (a retry finds the user already there):
		// the email's workflow ID makes the second start a no-op, and a start that failed makes
		// the whole step fail and retry, so the welcome email is never lost.
		if err := a.startEmail(ctx, SendEmailInput{InvitationID: in.InvitationID, Generation: in.Generation, Kind: contract.KindWelcome, Seq: 1}); err != nil {
			return ProvisionResult{}, err
		}
	}
	return ProvisionResult{UserID: p.UserID}, nil
}

// startEmail starts the workflow that delivers one email outside the invitation's run. Its ID
// is the email's: a start of an email already started (or delivered) does nothing.
func (a *Activities) startEmail(ctx context.Context, in SendEmailInput) error {
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       contract.EmailWorkflowID(in.InvitationID, in.IdempotencyKey()),
		TaskQueue:                a.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Send the " + string(in.Kind) + " email of invitation " + in.InvitationID.String(),
	}, contract.EmailWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// RecordEventInput appends an entry to an invitation's story.
type RecordEventInput struct {
	InvitationID uuid.UUID
	Type         string // one of contract's event types
	Detail       string
	// DedupeKey makes the event appear once however often the activity runs.
	DedupeKey string
}

// RecordEvent appends an event to the invitation's story, once per dedupe key.
func (a *Activities) RecordEvent(ctx context.Context, in RecordEventInput) error {
	return a.Store.AddEvent(ctx, in.InvitationID, in.Type, in.DedupeKey, in.Detail)
}

// businessError turns the store's domain errors into non-retryable, benign errors typed with the
// API's problem codes; anything else (a lost connection, a timeout) stays retryable.
func businessError(err error) error {
	var dup *store.DuplicateInvitationError
	var closed *store.ClosedError
	code := contract.Code("")
	var details []any
	switch {
	case err == nil:
		return nil
	case errors.As(err, &dup):
		code, details = contract.CodeDuplicateInvitation, []any{dup.ExistingID.String()}
	case errors.As(err, &closed):
		code, details = contract.CodeInvalidState, []any{contract.ClosedDetails{Status: closed.Status, UserID: closed.UserID}}
	case errors.Is(err, store.ErrSeatsExhausted):
		code = contract.CodeSeatsExhausted
	case errors.Is(err, store.ErrAlreadyMember):
		code = contract.CodeAlreadyMember
	case errors.Is(err, store.ErrSuperseded):
		code = contract.CodeInvitationExpired
	case errors.Is(err, store.ErrInvalidState), errors.Is(err, store.ErrAbandoned):
		code = contract.CodeInvalidState
	case errors.Is(err, store.ErrNotFound):
		code = contract.CodeNotFound
	default:
		return err
	}
	// Benign: a refusal is the answer, not a failure, so the SDK neither logs it at ERROR nor
	// counts it in its failure metrics (onboarding_seat_refusals_total and the API's answers
	// count refusals).
	return temporal.NewApplicationErrorWithOptions(err.Error(), string(code), temporal.ApplicationErrorOptions{
		NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign, Details: details,
	})
}
