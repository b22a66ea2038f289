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
// Runs started before the "history-limit-1000" version keep their earlier limit of 2000.
const (
	maxHistoryEvents   = 1000
	maxHistoryEventsV0 = 2000
)

// createWait is how long a started workflow waits for its create update before giving up: the
// API sends both in one update-with-start call, so this only fires on a misuse.
const createWait = time.Minute

// Invitation is the invitation workflow.
func Invitation(ctx workflow.Context, in contract.InvitationInput) (contract.State, error) {
	w := &invitation{in: in, mu: workflow.NewMutex(ctx)}
	w.emailCtx, w.cancelEmails = workflow.WithCancel(ctx)
	if err := w.setup(ctx); err != nil {
		return w.st, err
	}
	return w.run(ctx)
}

type invitation struct {
	in contract.InvitationInput
	st contract.State
	// mu serialises every transition: handlers and the timer both take it, so an accept racing
	// the expiry timer sees the other's outcome instead of both acting.
	mu workflow.Mutex
	// renewed is set by the renew handler: the run then continues as new with a fresh history.
	renewed bool
	// emailCtx is the context of background email deliveries; cancelEmails gives them up when
	// the invitation closes or is renewed. emailsInFlight counts them.
	emailCtx       workflow.Context
	cancelEmails   workflow.CancelFunc
	emailsInFlight int
	// historyLimit is this run's maxHistoryEvents (see there).
	historyLimit int
}

func (w *invitation) setup(ctx workflow.Context) error {
	if w.in.Carried != nil {
		w.st = *w.in.Carried
	}
	w.st.InvitationID = w.in.InvitationID
	w.historyLimit = maxHistoryEvents
	if workflow.GetVersion(ctx, "history-limit-1000", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		w.historyLimit = maxHistoryEventsV0
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		contract.SearchAccountID.ValueSet(w.in.AccountID.String()),
		contract.SearchSubscriptionID.ValueSet(w.in.SubscriptionID.String()),
		contract.SearchApplication.ValueSet(w.in.Application),
	); err != nil {
		return err
	}
	if w.in.EmailHash != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.SearchEmailHash.ValueSet(w.in.EmailHash)); err != nil {
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
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler,
			workflow.UpdateHandlerOptions{Validator: h.validator}); err != nil {
			return err
		}
	}
	return nil
}

func (w *invitation) run(ctx workflow.Context) (contract.State, error) {
	logger := w.logger(ctx)
	if w.st.Status == "" {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: createWait, TimerOptions: workflow.TimerOptions{Summary: "Wait for the create update"},
		}, func() bool { return w.st.Status != "" })
		if err != nil {
			return w.st, err
		}
		if !ok {
			// A create may still be running: the mutex lets it finish before this decides.
			if err := w.mu.Lock(ctx); err != nil {
				return w.st, err
			}
			if w.st.Status == "" {
				w.st.Status = contract.StatusRejected
			}
			w.mu.Unlock()
		}
	}
	for {
		w.publish(ctx)
		switch w.st.Status {
		case contract.StatusPending:
			if !w.st.InviteSent {
				w.sendInBackground(ctx, contract.KindInvite)
			}
			if err := w.waitPending(ctx); err != nil {
				return w.st, err
			}
		case contract.StatusExpired:
			if err := workflow.Await(ctx, func() bool {
				return w.st.Status != contract.StatusExpired || w.renewed || w.historyFull(ctx)
			}); err != nil {
				return w.st, err
			}
		case contract.StatusAccepted:
			w.deliver(ctx, w.markEmail(ctx, contract.KindWelcome))
			return w.finish(ctx)
		default: // revoked, declined, rejected
			return w.finish(ctx)
		}
		if !w.st.Status.Terminal() && (w.renewed || w.historyFull(ctx)) {
			// A renewal gives up the old link's emails; a full history lets the current ones end.
			if err := w.settleEmails(ctx, w.renewed); err != nil {
				return w.st, err
			}
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return w.st, err
			}
			logger.Info("continuing as new", "generation", w.st.Generation, "history_length", workflow.GetInfo(ctx).GetCurrentHistoryLength())
			next := w.in
			carried := w.st
			next.Carried = &carried
			return w.st, workflow.NewContinueAsNewError(ctx, Invitation, next)
		}
	}
}

// waitPending sleeps until the reminder or the expiry is due, or a handler changes the state.
func (w *invitation) waitPending(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	due, reminder := w.st.ExpiresAt, false
	if at := w.reminderAt(); !w.st.ReminderSent && at.After(now) && at.Before(due) {
		due, reminder = at, true
	}
	gen := w.st.Generation
	summary := fmt.Sprintf("Expiry of generation %d", w.st.Generation)
	if reminder {
		summary = fmt.Sprintf("Reminder of generation %d", w.st.Generation)
	}
	changed, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout: due.Sub(now), TimerOptions: workflow.TimerOptions{Summary: summary},
	}, func() bool {
		return w.st.Status != contract.StatusPending || w.st.Generation != gen || w.renewed || w.historyFull(ctx)
	})
	if err != nil || changed {
		return err
	}
	if reminder {
		w.sendInBackground(ctx, contract.KindReminder)
		return nil
	}
	w.expireLocked(ctx)
	return nil
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
	if err := w.settleEmails(ctx, true); err != nil {
		return w.st, err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return w.st, err
	}
	w.publish(ctx)
	return w.st, nil
}

// publish mirrors the state into search attributes and the UI's current details.
func (w *invitation) publish(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		contract.SearchStatus.ValueSet(string(w.st.Status)),
		contract.SearchGeneration.ValueSet(int64(w.st.Generation)),
	}
	if w.st.Delivery.Status != "" {
		updates = append(updates, contract.SearchDelivery.ValueSet(string(w.st.Delivery.Status)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		w.logger(ctx).Error("search attributes not updated", "error", err)
	}
	workflow.SetCurrentDetails(ctx, w.waitingFor())
}

func (w *invitation) waitingFor() string {
	switch w.st.Status {
	case "":
		return "Waiting for the create update."
	case contract.StatusPending:
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
		return fmt.Sprintf("Expired at %s. Waiting for the administrator to renew or revoke.", w.st.ExpiresAt.UTC().Format(time.RFC3339))
	case contract.StatusAccepted:
		return "Accepted by user " + w.st.UserID.String() + "."
	default:
		return "Closed: " + string(w.st.Status) + "."
	}
}

func (w *invitation) id() uuid.UUID { return w.in.InvitationID }

// logger is the workflow's replay-safe logger with the invitation's and account's ids on every
// line (the SDK adds the workflow and run ids).
func (w *invitation) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "invitation_id", w.in.InvitationID, "account_id", w.in.AccountID)
}

func businessErr(code contract.Code, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), string(code))
}
