package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/workflows"
)

// Races between updates and timers, renewal and continue-as-new, and email failures.

// ---- accept racing the expiry timer ----

func TestAcceptJustBeforeExpiryWinsTheRace(t *testing.T) {
	h := newHarness(t)
	h.provisionDelay = 5 * time.Second // still provisioning when the expiry timer fires
	h.create()
	acc := h.update(settings.TTL-time.Second, contract.UpdateAccept, accept(1))
	h.run(newInput())

	acc.succeeded(t)
	assert.True(t, expiry.Add(4*time.Second).Equal(acc.doneAt), "accept answered at %v", acc.doneAt)
	prov := h.provisioned()
	require.Len(t, prov, 1)
	assert.True(t, expiry.Add(4*time.Second).Equal(prov[0].At))
	assert.Empty(t, h.closed(), "an invitation accepted in time must never be closed as expired")
	st := h.result()
	assert.Equal(t, contract.StatusAccepted, st.Status)
	require.NotNil(t, st.UserID)
	assert.Equal(t, provisionedUserID, *st.UserID)
	assert.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindReminder}, kinds(h.emailsSent()))
	assert.Equal(t, "accepted", h.sa("InvitationStatus"))
}

func TestAcceptAtOrAfterExpiryIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Duration
	}{
		{"exactly at expiry", settings.TTL},
		{"one second after", settings.TTL + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.closeDelay = time.Minute // the expiring run is still open when the accept arrives
			h.create()
			acc := h.update(tc.at, contract.UpdateAccept, accept(1))
			h.run(newInput())
			st := h.result()

			acc.failed(t, contract.CodeInvitationExpired)
			assert.Empty(t, h.provisioned(), "no user is provisioned for an expired link")
			closes := h.closed()
			require.Len(t, closes, 1)
			assert.Equal(t, contract.StatusExpired, closes[0].In.Status)
			assert.True(t, expiry.Add(time.Minute).Equal(closes[0].At), "the expiry, recorded from its timer (at %v)", closes[0].At)
			assert.Equal(t, contract.StatusExpired, st.Status)
		})
	}
}

func TestConcurrentAcceptsProvisionOnce(t *testing.T) {
	h := newHarness(t)
	h.provisionDelay = 5 * time.Second
	h.create()
	first := h.update(time.Hour, contract.UpdateAccept, accept(1))
	// Passes the validator (still pending), then waits for the first to finish.
	second := h.update(time.Hour+time.Second, contract.UpdateAccept, accept(1))
	h.run(newInput())

	first.succeeded(t)
	second.failed(t, contract.CodeInvalidState)
	assert.Len(t, h.provisioned(), 1, "one user, one membership, one seat")
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}

func TestRevokeDuringProvisioningLosesToAccept(t *testing.T) {
	h := newHarness(t)
	h.provisionDelay = 5 * time.Second
	h.create()
	acc := h.update(time.Hour, contract.UpdateAccept, accept(1))
	rev := h.update(time.Hour+time.Second, contract.UpdateRevoke, contract.RevokeRequest{By: "portal-admin"})
	h.run(newInput())

	acc.succeeded(t)
	rev.failed(t, contract.CodeInvalidState)
	assert.Empty(t, h.closed(), "the accepted invitation is not revoked")
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}

// ---- renew and continue-as-new ----

func TestExpiredRunEndsAndRenewStartsTheNextRun(t *testing.T) {
	h := newHarness(t)
	h.create()
	h.run(newInput())
	first := h.result()
	assert.Equal(t, contract.StatusExpired, first.Status, "an invitation left to expire closes its run")
	assert.True(t, expiry.Equal(h.now()), "at its expiry (ended %v)", h.now())
	assert.Equal(t, []contract.Status{contract.StatusExpired}, statuses(h.closed()))
	firstRunEmails := h.emailsSent()

	// Thirty days later the administrator renews: the API starts the next run from the row.
	renewedAt := expiry.Add(30 * 24 * time.Hour)
	newExpiry := renewedAt.Add(settings.TTL)
	next := resumedInput(1, expiry)

	t.Run("the next run sends the new link and accepts only it", func(t *testing.T) {
		h2 := newHarness(t)
		h2.env.SetStartTime(renewedAt)
		renewed := h2.update(0, contract.UpdateRenew)
		var st contract.State
		h2.at(30*time.Minute, func() { st = h2.state() })
		oldLink := h2.update(time.Hour, contract.UpdateAccept, accept(1))
		newLink := h2.update(2*time.Hour, contract.UpdateAccept, accept(2))
		h2.run(next)

		rst := renewed.state(t)
		assert.Equal(t, contract.StatusPending, rst.Status)
		assert.Equal(t, 2, rst.Generation, "the generation after the row's")
		assert.True(t, newExpiry.Equal(rst.ExpiresAt), "renewed expiry %v, want renew time + TTL", rst.ExpiresAt)
		require.Len(t, h2.renews, 1)
		assert.Equal(t, activities.RenewInput{InvitationID: invID(), Generation: 2, ExpiresAt: rst.ExpiresAt}, h2.renews[0].In)
		assert.True(t, renewedAt.Equal(h2.renews[0].At))

		sent := h2.emailsSent()
		require.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(sent))
		assert.Equal(t, email(contract.KindInvite, 2, 2), sent[0].In, "the new link, counted on from the row's sends")
		assert.True(t, renewedAt.Equal(sent[0].At), "the new invite goes out at once (sent %v)", sent[0].At)
		assertDistinctKeys(t, append(firstRunEmails, sent...))
		assert.Empty(t, h2.creates, "the next run does not create again")

		assert.Equal(t, contract.StatusPending, st.Status)
		assert.Equal(t, 2, st.Generation)
		assert.True(t, st.InviteSent)

		oldLink.rejected(t, contract.CodeInvitationExpired)
		newLink.succeeded(t)
		prov := h2.provisioned()
		require.Len(t, prov, 1)
		assert.Equal(t, 2, prov[0].In.Generation)
		assert.Equal(t, contract.StatusAccepted, h2.result().Status)
		assert.Equal(t, []string{"DeliveryStatus=queued", "InvitationGeneration=2", "InvitationStatus=pending", "DeliveryStatus=sent", "InvitationStatus=accepted"}, h2.upserted())
	})

	t.Run("the next run expires on the new timer and ends", func(t *testing.T) {
		h2 := newHarness(t)
		h2.env.SetStartTime(renewedAt)
		h2.update(0, contract.UpdateRenew)
		h2.run(next)

		assert.Equal(t, contract.StatusExpired, h2.result().Status)
		assert.True(t, newExpiry.Equal(h2.now()))
		sent := h2.emailsSent()
		require.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindReminder}, kinds(sent))
		assert.Equal(t, 2, sent[1].In.Generation)
		assert.True(t, newExpiry.Add(-settings.ReminderBefore).Equal(sent[1].At), "reminder at %v", sent[1].At)
		closes := h2.closed()
		require.Len(t, closes, 1)
		assert.Equal(t, contract.StatusExpired, closes[0].In.Status)
		assert.Equal(t, 2, closes[0].In.Generation)
		assert.True(t, newExpiry.Equal(closes[0].At), "expired at %v, want %v", closes[0].At, newExpiry)
		assert.Equal(t, []timerEvent{
			started(renewedAt, settings.TTL-settings.ReminderBefore), fired(newExpiry.Add(-settings.ReminderBefore)),
			started(newExpiry.Add(-settings.ReminderBefore), settings.ReminderBefore), fired(newExpiry),
		}, h2.timerEvents())
	})
}

func TestRequestRenewalAnswersBeforeTheEmail(t *testing.T) {
	h := newHarness(t)
	h.emailDelay = map[contract.EmailKind]time.Duration{contract.KindRenewalRequest: time.Hour}
	asked := h.update(0, contract.UpdateRequestRenewal, contract.RenewalRequest{Generation: 1})
	h.run(resumedInput(1, t0.Add(-time.Hour)))

	asked.state(t)
	require.Len(t, h.events, 1)
	assert.Equal(t, contract.EventRenewalRequested, h.events[0].In.Type)
	assert.True(t, t0.Equal(asked.doneAt), "the answer does not wait for the inviter's email (answered %v)", asked.doneAt)
	sent := h.emailsSent()
	require.Equal(t, []contract.EmailKind{contract.KindRenewalRequest}, kinds(sent))
	assert.True(t, t0.Add(time.Hour).Equal(sent[0].At))
	assert.Equal(t, contract.StatusExpired, h.result().Status)
	assert.True(t, t0.Add(time.Hour).Equal(h.now()), "the run ends once the email is out")
}

func TestRequestRenewalRefusedWithinADayOfTheLast(t *testing.T) {
	h := newHarness(t)
	in := resumedInput(1, t0.Add(-48*time.Hour))
	in.Carried.RenewalRequestedAt = t0.Add(-time.Hour) // from the story: the invitee asked an hour ago
	asked := h.update(0, contract.UpdateRequestRenewal, contract.RenewalRequest{Generation: 1})
	h.run(in)

	var details contract.RateLimitDetails
	require.NoError(t, asked.rejected(t, contract.CodeRateLimited).Details(&details))
	assert.Equal(t, 23*time.Hour, details.RetryAfter)
	assert.Empty(t, h.emailsSent())
	assert.Equal(t, contract.StatusExpired, h.result().Status)
}

func TestLifecycle0RenewHandsOverToTheCurrentLifecycle(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.Lifecycle = 0 // a run started before the lifecycle was versioned
	h.create()
	renewed := h.update(settings.TTL+24*time.Hour, contract.UpdateRenew)
	h.run(in)

	assert.Equal(t, 2, renewed.state(t).Generation)
	next := continuedAs(t, h.env.GetWorkflowError())
	assert.Equal(t, contract.Lifecycle2, next.Lifecycle, "the next run follows the current lifecycle")
	assert.Equal(t, contract.StatusPending, next.Carried.Status)
	assert.Equal(t, 2, next.Carried.Generation)
	assert.False(t, next.Carried.InviteSent)
}

func TestLifecycle0ExpiredRunIsRetired(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.Lifecycle = 0
	h.create()
	early := h.update(time.Hour, contract.UpdateRetireExpired)
	retired := h.update(settings.TTL+30*24*time.Hour, contract.UpdateRetireExpired)
	h.run(in)

	early.rejected(t, contract.CodeInvalidState)
	retired.succeeded(t)
	st := h.result()
	assert.Equal(t, contract.StatusExpired, st.Status, "the retired run completes, still expired")
	assert.True(t, expiry.Add(30*24*time.Hour).Equal(h.now()), "when retired (ended %v)", h.now())
	assert.Equal(t, []contract.Status{contract.StatusExpired}, statuses(h.closed()))
}

func TestContinueAsNewNeverCarriesAFinishedInvitation(t *testing.T) {
	h := newHarness(t)
	h.env.SetContinueAsNewSuggested(true)
	h.emailDelay = map[contract.EmailKind]time.Duration{contract.KindInvite: 10 * time.Second}
	h.create()
	// The run waits for the invite to settle before continuing as new; the accept comes first.
	acc := h.update(5*time.Second, contract.UpdateAccept, accept(1))
	h.run(newInput())

	acc.succeeded(t)
	require.NoError(t, h.env.GetWorkflowError(), "an accepted invitation completes; it is not carried to a new run")
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}

func TestContinueAsNewWhenHistoryIsFullKeepsTimersAndSendsNothingTwice(t *testing.T) {
	h := newHarness(t)
	h.env.SetContinueAsNewSuggested(true)
	created := h.create()
	h.run(newInput())

	created.state(t)
	next := continuedAs(t, h.env.GetWorkflowError())
	assert.Equal(t, contract.StatusPending, next.Carried.Status)
	assert.Equal(t, 1, next.Carried.Generation)
	assert.True(t, next.Carried.InviteSent)
	assert.Equal(t, 1, next.Carried.Sends)
	assert.True(t, expiry.Equal(next.Carried.ExpiresAt))
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))

	h2 := newHarness(t)
	h2.env.SetStartTime(t0.Add(time.Second))
	h2.run(next)
	assert.Equal(t, contract.StatusExpired, h2.result().Status)

	sent := h2.emailsSent()
	require.Equal(t, []contract.EmailKind{contract.KindReminder}, kinds(sent), "the invite is not sent again")
	assert.True(t, reminder.Equal(sent[0].At))
	closes := h2.closed()
	require.Len(t, closes, 1)
	assert.True(t, expiry.Equal(closes[0].At), "the expiry is not reset by continue-as-new")
}

// ---- email failures ----

func TestEmailPermanentFailureIsRecorded(t *testing.T) {
	h := newHarness(t)
	h.emailResult = func(in activities.SendEmailInput, _ int32) (activities.SendEmailResult, error) {
		if in.Seq == 1 {
			return activities.SendEmailResult{Status: contract.DeliveryFailed, Error: "email rejected: mailbox does not exist"}, nil
		}
		return activities.SendEmailResult{Status: contract.DeliverySent}, nil
	}
	h.create()
	var failed, resent contract.State
	var failedSA, resentSA any
	h.at(time.Hour, func() { failed, failedSA = h.state(), h.sa("DeliveryStatus") })
	h.update(time.Hour+time.Minute, contract.UpdateResend)
	h.at(time.Hour+2*time.Minute, func() { resent, resentSA = h.state(), h.sa("DeliveryStatus") })
	h.cancelAt(2 * time.Hour)
	h.run(newInput())
	h.requireCancelled()

	assert.Equal(t, contract.StatusPending, failed.Status, "a failed email does not end the invitation")
	assert.Equal(t, contract.Delivery{Status: contract.DeliveryFailed, Error: "email rejected: mailbox does not exist"}, failed.Delivery)
	assert.True(t, failed.InviteSent)
	assert.Equal(t, "failed", failedSA)
	assert.Empty(t, h.marks, "the activity recorded the failure itself")

	assert.Equal(t, contract.Delivery{Status: contract.DeliverySent}, resent.Delivery, "the administrator's resend delivers")
	assert.Equal(t, "sent", resentSA)
	assert.Len(t, h.emailsSent(), 2)
}

func TestEmailNonRetryableErrorMarksFailed(t *testing.T) {
	h := newHarness(t)
	h.emailResult = func(activities.SendEmailInput, int32) (activities.SendEmailResult, error) {
		return activities.SendEmailResult{}, temporal.NewNonRetryableApplicationError("recipient refused", activities.ErrEmailRejected, nil)
	}
	h.create()
	var st contract.State
	h.at(time.Hour, func() { st = h.state() })
	h.cancelAt(2 * time.Hour)
	h.run(newInput())
	h.requireCancelled()

	assert.Len(t, h.emailsSent(), 1, "a non-retryable error is not retried")
	require.Len(t, h.marks, 1)
	assert.Equal(t, email(contract.KindInvite, 1, 1), h.marks[0].In.Email)
	assert.Contains(t, h.marks[0].In.Reason, "recipient refused")
	assert.Equal(t, contract.StatusPending, st.Status)
	assert.Equal(t, contract.DeliveryFailed, st.Delivery.Status)
	assert.Contains(t, st.Delivery.Error, "recipient refused")
	assert.Equal(t, "failed", h.sa("DeliveryStatus"))
}

func TestEmailTransientErrorIsRetried(t *testing.T) {
	h := newHarness(t)
	h.emailResult = func(_ activities.SendEmailInput, attempt int32) (activities.SendEmailResult, error) {
		if attempt < 3 {
			return activities.SendEmailResult{}, errors.New("resend: 503 service unavailable")
		}
		return activities.SendEmailResult{Status: contract.DeliverySent}, nil
	}
	h.create()
	var st contract.State
	h.at(time.Hour, func() { st = h.state() })
	h.cancelAt(2 * time.Hour)
	h.run(newInput())
	h.requireCancelled()

	sent := h.emailsSent()
	require.Len(t, sent, 3)
	for i, want := range []time.Duration{0, 2 * time.Second, 6 * time.Second} {
		assert.Equal(t, int32(i+1), sent[i].Attempt)
		assert.Equal(t, email(contract.KindInvite, 1, 1), sent[i].In, "every attempt has the same idempotency key")
		assert.True(t, t0.Add(want).Equal(sent[i].At), "attempt %d at %v", i+1, sent[i].At)
	}
	assert.Empty(t, h.marks)
	assert.Equal(t, contract.Delivery{Status: contract.DeliverySent}, st.Delivery)
}

// ---- defects: these tests describe what the workflow should do ----

// A create update still running when the create wait ends must not leave a recorded
// invitation (seat held) behind a closed workflow that will never expire it.
func TestCreateInFlightWhenCreateWaitEnds(t *testing.T) {
	h := newHarness(t)
	h.createDelay = 5 * time.Second
	created := h.update(time.Minute-time.Second, contract.UpdateCreate)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 2*time.Hour)
	h.mockActivities()
	h.env.ExecuteWorkflow(workflows.Invitation, newInput())
	require.True(t, h.env.IsWorkflowCompleted())

	created.mu.Lock()
	createOK := created.done && created.err == nil
	created.mu.Unlock()
	var cancelled *temporal.CanceledError
	if createOK {
		// The API answered 201: the invitation must live on as pending.
		require.ErrorAs(t, h.env.GetWorkflowError(), &cancelled,
			"the create succeeded (seat held, row recorded) but the workflow already completed; result %+v", resultOrNil(h))
		assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))
	} else {
		// The API answered an error: nothing may be left behind.
		assert.Equal(t, contract.StatusRejected, h.result().Status)
		assert.True(t, len(h.creates) == 0 || len(h.discards) > 0, "a create that ran must be undone")
	}
}

// Emails are sent while the transition mutex is held, so an accept waits for every retry of an
// email in flight. The API bounds an update to 20 s (server.temporalTimeout): an accept must
// not wait for an email provider outage to end.
func TestAcceptNotBlockedByEmailOutage(t *testing.T) {
	h := newHarness(t)
	// A 5-minute outage starting with the reminder. (The test environment caps retries at 10
	// attempts; this outage ends after 9, so the reminder is delivered, as in production.)
	outageEnds := reminder.Add(5 * time.Minute)
	h.emailResult = func(in activities.SendEmailInput, _ int32) (activities.SendEmailResult, error) {
		if in.Kind == contract.KindReminder && h.now().Before(outageEnds) {
			return activities.SendEmailResult{}, errors.New("resend: 503 service unavailable")
		}
		return activities.SendEmailResult{Status: contract.DeliverySent}, nil
	}
	h.create()
	sentAfter := reminder.Add(time.Minute).Sub(t0)
	acc := h.update(sentAfter, contract.UpdateAccept, accept(1))
	h.run(newInput())

	require.Empty(t, h.marks, "the reminder was delivered once the outage ended")
	acc.succeeded(t)
	waited := acc.doneAt.Sub(t0.Add(sentAfter))
	assert.Less(t, waited, 20*time.Second, "the accept waited %v for the reminder email's retries", waited)
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}

func resultOrNil(h *harness) any {
	var st contract.State
	if err := h.env.GetWorkflowResult(&st); err != nil {
		return err
	}
	return st
}

func statuses(calls []call[activities.CloseInput]) []contract.Status {
	out := make([]contract.Status, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.In.Status)
	}
	return out
}

func assertDistinctKeys(t *testing.T, calls []call[activities.SendEmailInput]) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range calls {
		k := c.In.IdempotencyKey()
		assert.False(t, seen[k], "two different emails share the idempotency key %s", k)
		seen[k] = true
	}
}
