package workflows

import (
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

// The password reset of one address (contract.PasswordResetWorkflowName). Each request signal
// issues the next generation of the user's reset link in Postgres and emails it; the run waits
// for the confirm update, a newer request or the link's expiry, and ends with the first that
// leaves nothing to wait for: a used or expired link, or an address that belongs to no user.
// No token is in the history: the email activity signs the link from the user id and the
// generation when it sends.

// maxResetEmailsPerRun bounds the emails of one run whatever reaches the workflow: with the
// API's per-address limit it keeps an inbox from being flooded, and it holds across replicas.
const maxResetEmailsPerRun = 5

// resetStepRetryFor bounds the retries of the reset's Postgres steps: a link is worth an hour.
const resetStepRetryFor = time.Hour

type passwordReset struct {
	in     contract.PasswordResetInput
	issued contract.PasswordResetIssued
	used   bool
	emails int
	// usedSet completes when the confirm has set the password: the run can end.
	usedSet workflow.Settable
}

// PasswordReset is the workflow of an address's password reset.
func PasswordReset(ctx workflow.Context, in contract.PasswordResetInput) error {
	r := &passwordReset{in: in}
	if in.Carried != nil {
		r.issued = *in.Carried // a link issued by the run this one continues
	}
	usedF, usedSet := workflow.NewFuture(ctx)
	r.usedSet = usedSet
	if err := workflow.SetUpdateHandlerWithOptions(ctx, contract.UpdatePasswordResetConfirm, r.confirm,
		workflow.UpdateHandlerOptions{Validator: r.validateConfirm}); err != nil {
		return err
	}
	requests := workflow.GetSignalChannel(ctx, contract.SignalPasswordResetRequested)
	emailCtx, giveUp := workflow.WithCancel(ctx)
	for {
		asked := false
		for requests.ReceiveAsync(nil) {
			asked = true
		}
		// Past the cap, a request changes nothing: a new link would supersede the emailed one.
		if asked && !r.used && r.emails < maxResetEmailsPerRun {
			if err := r.issue(ctx); err != nil {
				return err
			}
			if r.issued.Found {
				giveUp() // the older link's email no longer matters
				emailCtx, giveUp = workflow.WithCancel(ctx)
				r.emails++
				r.sendInBackground(emailCtx)
			}
		}
		now := workflow.Now(ctx)
		if r.used || !r.issued.Found || !now.Before(r.issued.ExpiresAt) {
			break
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			carried := r.issued
			return workflow.NewContinueAsNewError(ctx, PasswordReset, contract.PasswordResetInput{Email: in.Email, TTL: in.TTL, Carried: &carried})
		}
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, r.issued.ExpiresAt.Sub(now)), func(workflow.Future) {})
		sel.AddFuture(usedF, func(workflow.Future) {})
		sel.AddReceive(requests, func(workflow.ReceiveChannel, bool) {}) // drained at the top
		sel.Select(ctx)
		cancelTimer()
	}
	giveUp()
	// A confirm in flight finishes first; its answer is the reason the run ends.
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// issue issues the next link of the address's user, if it has one.
func (r *passwordReset) issue(ctx workflow.Context) error {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: resetStepRetryFor,
		StartToCloseTimeout:    LocalStepTimeout,
		RetryPolicy:            dbOptions("").RetryPolicy,
		Summary:                "Issue a password-reset link",
	})
	var issued contract.PasswordResetIssued
	if err := workflow.ExecuteLocalActivity(lctx, a.IssuePasswordReset, r.in).Get(ctx, &issued); err != nil {
		return err
	}
	if issued.Found || !r.issued.Found {
		r.issued = issued
	}
	return nil
}

// sendInBackground emails the current link on the rate-limited email queue, ahead of
// invitations (someone is waiting for it); a newer link, a use or the expiry cancels it.
func (r *passwordReset) sendInBackground(ctx workflow.Context) {
	in := contract.PasswordResetEmail{UserID: r.issued.UserID, Generation: r.issued.Generation}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.EmailTaskQueue(workflow.GetInfo(ctx).TaskQueueName),
		Priority:               temporal.Priority{PriorityKey: 1},
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: r.issued.ExpiresAt.Sub(workflow.Now(ctx)),
		Summary:                "Send the password-reset email",
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: append([]string{activities.ErrEmailRejected, activities.ErrTemplate}, contract.BusinessErrorTypes()...),
		},
	})
	workflow.Go(ctx, func(gctx workflow.Context) {
		var res activities.SendEmailResult
		if err := workflow.ExecuteActivity(actx, a.SendPasswordResetEmail, in).Get(gctx, &res); err != nil && !temporal.IsCanceledError(err) {
			workflow.GetLogger(gctx).Warn("password-reset email not sent", "generation", in.Generation, "error", err)
		}
	})
}

func (r *passwordReset) validateConfirm(ctx workflow.Context, req contract.PasswordResetConfirm) error {
	if r.used || !r.issued.Found || req.Generation != r.issued.Generation || !workflow.Now(ctx).Before(r.issued.ExpiresAt) {
		return linkExpired()
	}
	if req.PasswordHash == "" {
		return temporal.NewApplicationError("no password hash", string(contract.CodeValidation))
	}
	return nil
}

// confirm sets the new password with the current link and ends the run.
func (r *passwordReset) confirm(ctx workflow.Context, req contract.PasswordResetConfirm) error {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: resetStepRetryFor,
		StartToCloseTimeout:    LocalStepTimeout,
		RetryPolicy:            dbOptions("").RetryPolicy,
		Summary:                "Set the new password",
	})
	err := workflow.ExecuteLocalActivity(lctx, a.ConfirmPasswordReset, activities.ConfirmPasswordResetInput{
		UserID: r.issued.UserID, Generation: req.Generation, PasswordHash: req.PasswordHash,
	}).Get(ctx, nil)
	if err != nil {
		return passOn(err)
	}
	if !r.used {
		r.used = true
		r.usedSet.Set(nil, nil)
	}
	return nil
}

func linkExpired() error {
	return temporal.NewApplicationError("This password-reset link was used, has expired or was replaced by a newer one.", string(contract.CodeLinkExpired))
}
