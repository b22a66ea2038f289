package workflows

import (
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

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
	w.deliverInBackground(in)
}

// deliverInBackground delivers an email in a workflow goroutine under emailCtx, which a
// closing or renewed invitation cancels; settleEmails waits for it.
func (w *invitation) deliverInBackground(in activities.SendEmailInput) {
	w.emailsInFlight++
	workflow.Go(w.emailCtx, func(gctx workflow.Context) {
		defer func() { w.emailsInFlight-- }()
		w.deliver(gctx, in)
	})
}

// deliver runs the email activity on the throttled email task queue and records the delivery. A
// failure is recorded, not fatal: the administrator sees it and can resend or re-invite.
func (w *invitation) deliver(ctx workflow.Context, in activities.SendEmailInput) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.EmailTaskQueue(workflow.GetInfo(ctx).TaskQueueName),
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
		return // the invitation closed or moved on to a new link: this email no longer matters
	}
	if err != nil {
		res = activities.SendEmailResult{Status: contract.DeliveryFailed, Error: err.Error()}
		// Recorded on a disconnected context: giving up the email must not also lose its record.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		mctx := workflow.WithActivityOptions(dctx, dbOptions("Record the email failure"))
		if merr := workflow.ExecuteActivity(mctx, a.MarkEmailFailed, activities.MarkEmailFailedInput{
			Email: in, Reason: err.Error(),
		}).Get(dctx, nil); merr != nil {
			w.logger(ctx).Error("email failure not recorded", "error", merr)
		}
	}
	if res.Status == contract.DeliverySkipped || (in.Kind != contract.KindInvite && in.Kind != contract.KindReminder) {
		return // delivery describes the invitee's latest invite or reminder
	}
	w.st.Delivery = contract.Delivery{Status: res.Status, Error: res.Error}
	w.publish(ctx)
}

// settleEmails waits for emails still being delivered; with cancel, it first gives them up.
func (w *invitation) settleEmails(ctx workflow.Context, cancel bool) error {
	if cancel {
		w.cancelEmails()
	}
	return workflow.Await(ctx, func() bool { return w.emailsInFlight == 0 })
}
