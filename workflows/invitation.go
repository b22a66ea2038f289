// Package workflows holds the invitation workflow: one durable execution per invitation that
// holds its seat, sends its emails, waits for the invitee or the expiry timer, and provisions
// the user on acceptance. It does no I/O; activities do.
package workflows

import (
	"fmt"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

// a refers to the activities' methods by name; the worker registers the real struct.
var a *activities.Activities

// maxHistoryEvents bounds each run's history: past it, the workflow continues as new at the next
// quiet moment. Temporal's own suggestion (at about 4k events or 4 MiB) also triggers it. A
// whole ordinary lifecycle takes under 100 events; only a storm of resends comes near.
// Runs of lifecycle 0 started before its "history-limit-1000" version keep their earlier limit
// of 2000.
const (
	maxHistoryEvents   = 1000
	maxHistoryEventsV0 = 2000
)

// createWait is how long a run of lifecycle 0 waits for its create update before giving up.
const createWait = time.Minute

// Invitation is the invitation workflow.
func Invitation(ctx workflow.Context, in contract.InvitationInput) (contract.State, error) {
	w := &invitation{in: in, mu: workflow.NewMutex(ctx), root: ctx, v2: in.Lifecycle >= contract.Lifecycle2}
	w.emailCtx, w.cancelEmails = workflow.WithCancel(ctx)
	if err := w.setup(ctx); err != nil {
		return w.st, err
	}
	if !w.v2 {
		return w.runLifecycle0(ctx)
	}
	return w.run(ctx)
}

type invitation struct {
	in contract.InvitationInput
	st contract.State
	// v2 is set on runs of contract.Lifecycle2; the others replay the code of lifecycle 0.
	v2 bool
	// mu serialises every transition: handlers and the timer both take it, so an accept racing
	// the expiry timer sees the other's outcome instead of both acting.
	mu workflow.Mutex
	// renewed is set by the renew handler of lifecycle 0: the run then continues as new.
	// retired is set by its retire_expired handler: an expired run then completes.
	renewed, retired bool
	// root is the workflow's context. emailCtx is the context of background invite and reminder
	// deliveries; cancelEmails gives them up when the invitation closes or moves to a new link.
	// emailsInFlight counts every background delivery.
	root           workflow.Context
	emailCtx       workflow.Context
	cancelEmails   workflow.CancelFunc
	emailsInFlight int
	// historyLimit is this run's maxHistoryEvents (see there).
	historyLimit int
	// published is the status, generation and delivery the search attributes show.
	published contract.State
	// learned is the status the run took from Postgres (learnClosed), if any.
	learned contract.Status
}

func (w *invitation) setup(ctx workflow.Context) error {
	if w.in.Carried != nil {
		w.st = *w.in.Carried
	}
	w.st.InvitationID = w.in.InvitationID
	w.historyLimit = maxHistoryEvents
	// What the search attributes show as the run starts, as the input tells it (the run's own
	// search attributes are no guide: a replay may read them as they were last upserted). The
	// API starts a create with contract.Created and a run from a row with that row's state; a
	// run continued as new shows what the last run upserted, which the first publish rewrites.
	switch {
	case workflow.GetInfo(ctx).ContinuedExecutionRunID != "":
	case w.in.Carried != nil:
		w.published = *w.in.Carried
	default:
		w.published = contract.Created
	}
	if !w.v2 {
		if err := w.setupLifecycle0(ctx); err != nil {
			return err
		}
	}
	if err := workflow.SetQueryHandler(ctx, contract.QueryState, func() (contract.State, error) {
		s := w.st
		s.WaitingFor = w.waitingFor()
		return s, nil
	}); err != nil {
		return err
	}
	handlers := []struct {
		name      string
		handler   any
		validator any
	}{
		{contract.UpdateCreate, w.create, w.validateCreate},
		{contract.UpdateAccept, w.accept, w.validateAccept},
		{contract.UpdateDecline, w.decline, w.validateDecline},
		{contract.UpdateResend, w.resend, w.validateResend},
		{contract.UpdateRenew, w.renew, w.validateRenew},
		{contract.UpdateRevoke, w.revoke, w.validateRevoke},
		{contract.UpdateRequestRenewal, w.requestRenewal, w.validateRequestRenewal},
		{contract.UpdateEdit, w.edit, w.validateEdit},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler,
			workflow.UpdateHandlerOptions{Validator: h.validator}); err != nil {
			return err
		}
	}
	workflow.Go(ctx, w.providerDeliveries)
	return nil
}

// providerDeliveries follows the email provider's reports after the send (the API signals
// them from Resend's webhooks): a pending invitation's delivery, and so its DeliveryStatus
// search attribute, shows delivered, bounced or complained. Postgres already holds the report.
func (w *invitation) providerDeliveries(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, contract.SignalProviderDelivery)
	for {
		var d contract.ProviderDelivery
		if more := ch.Receive(ctx, &d); !more {
			return
		}
		if w.st.Status != contract.StatusPending || !w.st.InviteSent {
			continue
		}
		w.st.Delivery = contract.Delivery{Status: d.Status, Error: d.Error}
		w.publish(ctx)
	}
}

// run is the lifecycle of one run: it starts with the update that the API sent with the start
// (create, or renew and request_renewal on an invitation whose last run ended), and ends when
// the invitation closes or expires, or continues as new when its history is long.
func (w *invitation) run(ctx workflow.Context) (contract.State, error) {
	// Update-with-start hands the first update over with the first workflow task, and its
	// handler starts once this function yields. A run started without one (by hand, say) has
	// nothing to do: it ends at once instead of arming a timer every run would pay for.
	if err := yield(ctx); err != nil {
		return w.st, err
	}
	if w.st.Status == "" && workflow.AllHandlersFinished(ctx) {
		w.st.Status = contract.StatusRejected
	}
	for {
		if err := workflow.Await(ctx, func() bool { return w.st.Status != "" }); err != nil {
			return w.st, err
		}
		w.publish(ctx)
		switch w.st.Status {
		case contract.StatusPending:
			if !w.st.InviteSent && !w.emailHeld() {
				w.sendInBackground(ctx, contract.KindInvite)
			}
			if err := w.waitPending(ctx); err != nil {
				return w.st, err
			}
			if w.st.Status == contract.StatusPending && w.historyFull(ctx) {
				if next, err := w.continueAsNew(ctx, false); next != nil || err != nil {
					return w.st, err
				}
			}
		case contract.StatusExpired:
			// The run ends with the expiry: Postgres keeps the status and the generation, and a
			// renew starts the next run. What is in flight finishes first; a renew among it
			// takes the invitation back to pending, in this run.
			if err := w.drain(ctx, true); err != nil {
				return w.st, err
			}
			if w.st.Status == contract.StatusExpired {
				w.publish(ctx)
				return w.st, nil
			}
		default: // accepted, revoked, declined, rejected
			return w.finish(ctx)
		}
	}
}

// yield lets every other coroutine of the workflow run once (the handlers of updates that came
// with this workflow task) and returns; it adds nothing to the history.
func yield(ctx workflow.Context) error {
	done := false
	workflow.Go(ctx, func(workflow.Context) { done = true })
	return workflow.Await(ctx, func() bool { return done })
}

// waitPending sleeps until the reminder or the expiry is due, or a handler changes the state.
// Its timer is cancelled when the run goes on without it; a run that ends takes it along.
func (w *invitation) waitPending(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	due, reminder, summary := w.nextWakeUp(now)
	gen, expires, sent := w.st.Generation, w.st.ExpiresAt, w.st.InviteSent
	tctx, cancel := workflow.WithCancel(ctx)
	timer := workflow.NewTimerWithOptions(tctx, max(due.Sub(now), 0), workflow.TimerOptions{Summary: summary})
	// A new link, a new expiry (an edit) or a first email (a resend of an invitation created
	// without one: its reminder is now due) each need the next wake-up computed again.
	moved := func() bool {
		return w.st.Status != contract.StatusPending || w.st.Generation != gen || !w.st.ExpiresAt.Equal(expires) ||
			w.st.InviteSent != sent || w.historyFull(ctx)
	}
	if err := workflow.Await(ctx, func() bool { return timer.IsReady() || moved() }); err != nil {
		return err
	}
	if !timer.IsReady() {
		if w.st.Status == contract.StatusPending && !w.historyFull(ctx) {
			cancel() // the next wait arms its own timer
		}
		return nil
	}
	if err := timer.Get(ctx, nil); err != nil {
		return err
	}
	if moved() {
		return nil
	}
	if reminder {
		w.sendInBackground(ctx, contract.KindReminder)
		return nil
	}
	w.expireLocked(ctx)
	return nil
}

// nextWakeUp is when the pending invitation next needs the workflow: its reminder, if one is
// still due before the expiry, or its expiry.
func (w *invitation) nextWakeUp(now time.Time) (due time.Time, reminder bool, summary string) {
	due = w.st.ExpiresAt
	if at := w.reminderAt(); w.st.InviteSent && !w.st.ReminderSent && at.After(now) && at.Before(due) {
		due, reminder = at, true
	}
	summary = fmt.Sprintf("Expiry of generation %d", w.st.Generation)
	if reminder {
		summary = fmt.Sprintf("Reminder of generation %d", w.st.Generation)
	}
	return due, reminder, summary
}

// continueAsNew hands the invitation to a fresh run once what is in flight has settled; with
// giveUpEmails (a new link) the old link's emails are given up rather than awaited. An
// invitation that closed meanwhile is not carried: it returns nil and the caller finishes.
func (w *invitation) continueAsNew(ctx workflow.Context, giveUpEmails bool) (*contract.InvitationInput, error) {
	if err := w.drain(ctx, giveUpEmails); err != nil {
		return nil, err
	}
	if w.st.Status.Terminal() || (w.v2 && w.st.Status != contract.StatusPending) {
		return nil, nil
	}
	w.logger(ctx).Info("continuing as new", "generation", w.st.Generation, "history_length", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	next := w.in
	carried := w.st
	next.Carried = &carried
	// A run of lifecycle 0 hands over to the current lifecycle: the next run is a fresh one.
	next.Lifecycle = contract.Lifecycle2
	return &next, workflow.NewContinueAsNewError(ctx, Invitation, next)
}

// drain waits for background emails (giving up the invitee's first, with giveUp) and for every
// handler, together: a handler may start an email as it finishes (request_renewal does).
func (w *invitation) drain(ctx workflow.Context, giveUp bool) error {
	if giveUp {
		w.giveUpEmails()
	}
	return workflow.Await(ctx, func() bool { return w.emailsInFlight == 0 && workflow.AllHandlersFinished(ctx) })
}

func (w *invitation) reminderAt() time.Time {
	if w.in.Settings.ReminderBefore <= 0 {
		return time.Time{}
	}
	return w.st.ExpiresAt.Add(-w.in.Settings.ReminderBefore)
}

func (w *invitation) historyFull(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > w.historyLimit
}

// finish waits for in-flight handlers, so no update's answer is lost, and completes.
func (w *invitation) finish(ctx workflow.Context) (contract.State, error) {
	if err := w.drain(ctx, true); err != nil {
		return w.st, err
	}
	w.publish(ctx)
	return w.st, nil
}

// publish mirrors the state into search attributes and the UI's current details. Runs of the
// current lifecycle start with their search attributes set and upsert only what changed.
func (w *invitation) publish(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		contract.SearchStatus.ValueSet(string(w.st.Status)),
		contract.SearchGeneration.ValueSet(int64(w.st.Generation)),
	}
	if w.st.Delivery.Status != "" {
		updates = append(updates, contract.SearchDelivery.ValueSet(string(w.st.Delivery.Status)))
	}
	if w.v2 {
		updates = changedSearchAttributes(w.published, w.st)
		w.published = w.st
	}
	if len(updates) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			w.logger(ctx).Error("search attributes not updated", "error", err)
		}
	}
	workflow.SetCurrentDetails(ctx, w.waitingFor())
}

// changedSearchAttributes are the updates that bring search attributes showing published to st.
func changedSearchAttributes(published, st contract.State) []temporal.SearchAttributeUpdate {
	var updates []temporal.SearchAttributeUpdate
	if published.Status != st.Status {
		updates = append(updates, contract.SearchStatus.ValueSet(string(st.Status)))
	}
	if published.Generation != st.Generation {
		updates = append(updates, contract.SearchGeneration.ValueSet(int64(st.Generation)))
	}
	if d := st.Delivery.Status; d != "" && d != published.Delivery.Status {
		updates = append(updates, contract.SearchDelivery.ValueSet(string(d)))
	}
	return updates
}

func (w *invitation) waitingFor() string {
	switch w.st.Status {
	case "":
		return "Waiting for the create update."
	case contract.StatusPending:
		if w.emailHeld() {
			return fmt.Sprintf("Waiting for %s to accept or decline until %s (generation %d): created without an email, the portal shares the link.",
				contract.MaskEmail(w.in.Email), w.st.ExpiresAt.UTC().Format(time.RFC3339), w.st.Generation)
		}
		if !w.st.InviteSent {
			return fmt.Sprintf("Sending the invitation email (generation %d).", w.st.Generation)
		}
		s := fmt.Sprintf("Waiting for %s to accept or decline until %s (generation %d, sends: %d).",
			contract.MaskEmail(w.in.Email), w.st.ExpiresAt.UTC().Format(time.RFC3339), w.st.Generation, w.st.Sends)
		if at := w.reminderAt(); !w.st.ReminderSent && !at.IsZero() {
			s += " Reminder due " + at.UTC().Format(time.RFC3339) + "."
		}
		return s
	case contract.StatusExpired:
		if w.v2 {
			return fmt.Sprintf("Expired at %s. A renew starts the next run.", w.st.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("Expired at %s. Waiting for the administrator to renew or revoke.", w.st.ExpiresAt.UTC().Format(time.RFC3339))
	case contract.StatusAccepted:
		if w.st.UserID == nil {
			return "Accepted."
		}
		return "Accepted by user " + w.st.UserID.String() + "."
	default:
		return "Closed: " + string(w.st.Status) + "."
	}
}

func (w *invitation) id() uuid.UUID { return w.in.InvitationID }

// emailHeld reports whether the invitee's emails are held back: created with send_email false,
// and no invite email sent yet (a resend sends the first, and the invitation emails from then on).
func (w *invitation) emailHeld() bool { return w.in.HoldEmail && w.st.Sends == 0 }

// logger is the workflow's replay-safe logger with the invitation's and account's ids on every
// line (the SDK adds the workflow and run ids).
func (w *invitation) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "invitation_id", w.in.InvitationID, "account_id", w.in.AccountID)
}

func businessErr(code contract.Code, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), string(code))
}
