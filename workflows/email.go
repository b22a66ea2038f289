package workflows

import (
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

// Emails are recorded under the mutex (so no two transitions count the same send) and delivered
// outside it: delivery may retry for hours during an outage, and nothing else may wait on it.

// markEmail records that an email of kind goes out now and returns the activity's input; the
// caller holds the mutex.
func (w *invitation) markEmail(ctx workflow.Context, kind contract.EmailKind) activities.SendEmailInput {
	seq := 1
	switch kind {
	case contract.KindInvite:
		w.st.Sends++
		seq = w.st.Sends
		w.st.InviteSent = true
		w.st.LastSentAt = workflow.Now(ctx)
		w.st.Delivery = contract.Delivery{Status: contract.DeliveryQueued}
	case contract.KindReminder:
		w.st.ReminderSent = true
		w.st.Delivery = contract.Delivery{Status: contract.DeliveryQueued}
	}
	return activities.SendEmailInput{InvitationID: w.id(), Generation: w.st.Generation, Kind: kind, Seq: seq}
}

// sendInBackground records an email under the mutex and delivers it in a workflow goroutine, so
// the main loop goes on to arm the reminder and expiry timers.
func (w *invitation) sendInBackground(ctx workflow.Context, kind contract.EmailKind) {
	if err := w.mu.Lock(ctx); err != nil {
		return
	}
	due := w.st.Status == contract.StatusPending && ((kind == contract.KindInvite && !w.st.InviteSent) ||
		(kind == contract.KindReminder && !w.st.ReminderSent))
	if !due {
		w.mu.Unlock()
		return
	}
	in := w.markEmail(ctx, kind)
	w.mu.Unlock()
	w.deliverInBackground(w.emailCtx, in)
}

// deliverInBackground delivers an email in a workflow goroutine under ctx (emailCtx for the
// invitee's emails, which a closing or renewed invitation gives up); drain waits for it.
func (w *invitation) deliverInBackground(ctx workflow.Context, in activities.SendEmailInput) {
	w.emailsInFlight++
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer func() { w.emailsInFlight-- }()
		w.deliver(gctx, in)
	})
}

// deliver sends an email and records its delivery as the invitation's, for the invitee's
// invite and reminder.
func (w *invitation) deliver(ctx workflow.Context, in activities.SendEmailInput) {
	res, ok := sendEmail(ctx, in, w.in.AccountID.String(), w.in.Bulk, w.logger(ctx))
	if !ok || res.Status == contract.DeliverySkipped || (in.Kind != contract.KindInvite && in.Kind != contract.KindReminder) {
		return // delivery describes the invitee's latest invite or reminder
	}
	if res.Status == contract.DeliverySent && providerReported(w.st.Delivery.Status) {
		return // the provider's report on this send (signalled while its result was on its way) says more
	}
	w.st.Delivery = contract.Delivery{Status: res.Status, Error: res.Error}
	w.publish(ctx)
}

// providerReported reports whether s is what the email provider said after a send.
func providerReported(s contract.DeliveryStatus) bool {
	return s == contract.DeliveryDelivered || s == contract.DeliveryBounced || s == contract.DeliveryComplained
}

// emailPriority orders the shared, rate-limited email queue: the welcome email of someone who
// has just joined first, then the inviter's renewal request, then invites and reminders, shared
// fairly between accounts (the fairness key), so that one account's burst of invites never holds
// another account's single invite or anyone's welcome email behind it. The invites and
// reminders of a bulk batch's invitations come last of all, so a batch of a thousand never
// delays a single invitation's email. Lower keys go first (Temporal's default is 3).
func emailPriority(in activities.SendEmailInput, account string, bulk bool) temporal.Priority {
	switch {
	case in.Kind == contract.KindWelcome:
		return temporal.Priority{PriorityKey: 1}
	case in.Kind == contract.KindRenewalRequest:
		return temporal.Priority{PriorityKey: 2, FairnessKey: account}
	case bulk:
		return temporal.Priority{PriorityKey: 4, FairnessKey: account}
	default:
		return temporal.Priority{PriorityKey: 3, FairnessKey: account}
	}
}

// Email is the workflow that delivers one email of an invitation outside the invitation's run:
// the welcome email, which the accept hands over so that the run completes with the accept.
func Email(ctx workflow.Context, in activities.SendEmailInput) (activities.SendEmailResult, error) {
	res, _ := sendEmail(ctx, in, "", false, log.With(workflow.GetLogger(ctx), "invitation_id", in.InvitationID, "kind", in.Kind))
	return res, nil
}

// sendEmail runs the email activity on the throttled email task queue and records a failure:
// a failure is recorded, not fatal, since the administrator sees it and can resend or re-invite.
// It returns false when the email was given up (cancelled).
func sendEmail(ctx workflow.Context, in activities.SendEmailInput, account string, bulk bool, logger log.Logger) (activities.SendEmailResult, bool) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.EmailTaskQueue(workflow.GetInfo(ctx).TaskQueueName),
		Priority:               emailPriority(in, account, bulk),
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour, // as long as Resend keeps an Idempotency-Key
		Summary:                "Send the " + string(in.Kind) + " email",
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: append([]string{activities.ErrEmailRejected, activities.ErrTemplate}, contract.BusinessErrorTypes()...),
		},
	})
	var res activities.SendEmailResult
	err := workflow.ExecuteActivity(actx, a.SendEmail, in).Get(ctx, &res)
	if temporal.IsCanceledError(err) {
		return res, false // the invitation closed or moved on to a new link: this email no longer matters
	}
	if err != nil {
		res = activities.SendEmailResult{Status: contract.DeliveryFailed, Error: err.Error()}
		// Recorded on a disconnected context: giving up the email must not also lose its record.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		mctx := workflow.WithActivityOptions(dctx, dbOptions("Record the email failure"))
		if merr := workflow.ExecuteActivity(mctx, a.MarkEmailFailed, activities.MarkEmailFailedInput{
			Email: in, Reason: err.Error(),
		}).Get(dctx, nil); merr != nil {
			logger.Error("email failure not recorded", "error", merr)
		}
	}
	return res, true
}

// giveUpEmails cancels the invitee's emails in flight; later ones get a fresh context.
func (w *invitation) giveUpEmails() {
	w.cancelEmails()
	w.emailCtx, w.cancelEmails = workflow.WithCancel(w.root)
}
