package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// The lifecycle of runs started before contract.Lifecycle2, kept so that they replay as they
// were recorded: their expired invitations wait for a renew or a revoke, their timers are
// AwaitWithOptions timeouts, and they set their search attributes themselves. A renew, or a
// history grown long, hands such a run over to a run of the current lifecycle. This file goes
// once no run of lifecycle 0 is open (docs/operations.md: changing the workflow safely).

func (w *invitation) setupLifecycle0(ctx workflow.Context) error {
	// Registering a handler records nothing, so every run of lifecycle 0 gains this one: the
	// maintenance schedule ends an expired run that would otherwise wait for ever.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, contract.UpdateRetireExpired, func(ctx workflow.Context) (contract.State, error) {
		w.retired = true
		return w.st, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
		if w.st.Status != contract.StatusExpired {
			return businessErr(contract.CodeInvalidState, "only an expired run is retired; this one is %s", w.st.Status)
		}
		return nil
	}}); err != nil {
		return err
	}
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
		return workflow.UpsertTypedSearchAttributes(ctx, contract.SearchEmailHash.ValueSet(w.in.EmailHash))
	}
	return nil
}

func (w *invitation) runLifecycle0(ctx workflow.Context) (contract.State, error) {
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
			if err := w.waitPendingLifecycle0(ctx); err != nil {
				return w.st, err
			}
		case contract.StatusExpired:
			if err := workflow.Await(ctx, func() bool {
				return w.st.Status != contract.StatusExpired || w.renewed || w.historyFull(ctx) || w.retired
			}); err != nil {
				return w.st, err
			}
			if w.retired && w.st.Status == contract.StatusExpired {
				return w.finish(ctx) // as a run of lifecycle 2 ends with its expiry
			}
		case contract.StatusAccepted:
			w.deliver(ctx, w.markEmail(ctx, contract.KindWelcome))
			return w.finish(ctx)
		default: // revoked, declined, rejected
			return w.finish(ctx)
		}
		if !w.st.Status.Terminal() && (w.renewed || w.historyFull(ctx)) {
			// A renewal gives up the old link's emails; a full history lets the current ones end.
			if _, err := w.continueAsNew(ctx, w.renewed); err != nil {
				return w.st, err
			}
		}
	}
}

func (w *invitation) waitPendingLifecycle0(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	due, reminder, summary := w.nextWakeUp(now)
	gen := w.st.Generation
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
