package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/activities"
)

// Lifecycle tests: create, expiry and reminder, resend and renew, accept, decline and revoke.
// The harness is in invitation_harness_test.go; races, continue-as-new and email failures are
// in invitation_races_test.go.

// ---- create ----

func TestCreateSendsInviteAndPublishesState(t *testing.T) {
	h := newHarness(t)
	created := h.create()
	var st contract.State
	h.at(time.Hour, func() { st = h.state() })
	h.cancelAt(2 * time.Hour)
	h.run(newInput())
	h.requireCancelled()

	got := created.state(t)
	assert.Equal(t, contract.StatusPending, got.Status)
	assert.Equal(t, 1, got.Generation)
	assert.True(t, expiry.Equal(got.ExpiresAt), "create answered expiry %v", got.ExpiresAt)
	assert.Equal(t, invitationID, got.InvitationID)

	require.Len(t, h.creates, 1)
	c := h.creates[0]
	assert.True(t, t0.Equal(c.At))
	assert.Equal(t, store.NewInvitation{
		ID: invID(), AccountID: accountID, SubscriptionID: subscriptionID,
		Application: "analytics", Role: "editor", GroupIDs: []uuid.UUID{groupID},
		Email: inviteeEmail, FirstName: "Jane", LastName: "Doe", Phone: "+44 20 7946 0000",
		InviterName: "Alice Admin", InviterEmail: "alice@acme.example", ExpiresAt: c.In.ExpiresAt, CreateRun: c.In.CreateRun,
		ExpiresIn: settings.TTL, // the invitation's own validity, recorded for its renewals
	}, c.In)
	assert.True(t, expiry.Equal(c.In.ExpiresAt), "recorded expiry %v", c.In.ExpiresAt)
	assert.NotEmpty(t, c.In.CreateRun, "the row names the run that created it")
	c.In.CreateRun = ""
	assert.Nil(t, c.In.UserID, "a new person has no user id")

	sent := h.emailsSent()
	require.Len(t, sent, 1, "only the invite goes out in the first two hours: %v", kinds(sent))
	assert.Equal(t, email(contract.KindInvite, 1, 1), sent[0].In)
	assert.True(t, t0.Equal(sent[0].At), "invite sent at %v", sent[0].At)

	assert.Equal(t, contract.StatusPending, st.Status)
	assert.Equal(t, 1, st.Generation)
	assert.Equal(t, 1, st.Sends)
	assert.True(t, st.InviteSent)
	assert.False(t, st.ReminderSent)
	assert.Equal(t, contract.Delivery{Status: contract.DeliverySent}, st.Delivery)
	assert.True(t, t0.Equal(st.LastSentAt))
	assert.True(t, expiry.Equal(st.ExpiresAt))
	assert.Contains(t, st.WaitingFor, "j…@example.com")
	assert.Contains(t, st.WaitingFor, expiry.Format(time.RFC3339))
	assert.Contains(t, st.WaitingFor, "Reminder due "+reminder.Format(time.RFC3339))
	assert.NotContains(t, st.WaitingFor, inviteeEmail, "the address must not reach the UI summary")

	assert.Equal(t, "pending", h.sa("InvitationStatus"))
	assert.Equal(t, accountID.String(), h.sa("AccountId"))
	assert.Equal(t, subscriptionID.String(), h.sa("SubscriptionId"))
	assert.Equal(t, "analytics", h.sa("Application"))
	assert.EqualValues(t, 1, h.sa("InvitationGeneration"))
	assert.Equal(t, "sent", h.sa("DeliveryStatus"))
	assert.Equal(t, []string{"DeliveryStatus=sent"}, h.upserted(),
		"what the start set is not upserted again; the delivery is, once it changes")
	assert.Equal(t, []timerEvent{started(t0, settings.TTL-settings.ReminderBefore)}, h.timerEvents(),
		"one timer, for the reminder")

	assert.Empty(t, h.closed())
	assert.Empty(t, h.provisioned())
	assert.Empty(t, h.discards)
}

func TestCreateForExistingUserPassesUserID(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.UserID = &existingUserID
	created := h.create()
	h.cancelAt(time.Hour)
	h.run(in)
	h.requireCancelled()

	created.state(t)
	require.Len(t, h.creates, 1)
	require.NotNil(t, h.creates[0].In.UserID)
	assert.Equal(t, existingUserID, *h.creates[0].In.UserID)
}

func TestCreateRejectedByBusinessError(t *testing.T) {
	for _, tc := range []struct {
		typ     contract.Code
		details []any
	}{
		{contract.CodeSeatsExhausted, nil},
		{contract.CodeDuplicateInvitation, []any{existingInviteID}},
		{contract.CodeAlreadyMember, nil},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			h := newHarness(t)
			h.createErr = func(int32) error {
				return temporal.NewNonRetryableApplicationError("refused by the store", string(tc.typ), nil, tc.details...)
			}
			created := h.create()
			h.run(newInput())

			appErr := created.failed(t, tc.typ)
			if tc.typ == contract.CodeDuplicateInvitation {
				var existing string
				require.NoError(t, appErr.Details(&existing))
				assert.Equal(t, existingInviteID, existing, "the API needs the existing invitation's id")
			}
			st := h.result()
			assert.Equal(t, contract.StatusRejected, st.Status)
			assert.Len(t, h.creates, 1, "a business error is not retried")
			assert.Empty(t, h.emailsSent(), "a rejected invitation sends no email")
			assert.Empty(t, h.discards, "nothing to undo after a business error")
			assert.Empty(t, h.closed())
			assert.Equal(t, "rejected", h.sa("InvitationStatus"))
			assert.True(t, t0.Equal(h.now()), "the workflow ends at once, not after the create wait (ended %v)", h.now())
		})
	}
}

func TestCreateThatCannotBeRecordedIsUndone(t *testing.T) {
	h := newHarness(t)
	h.createErr = func(int32) error { return errors.New("connection refused") }
	created := h.create()
	h.run(newInput())

	created.failed(t, "unavailable")
	assert.Equal(t, contract.StatusRejected, h.result().Status)
	assert.Greater(t, len(h.creates), 1, "a transient failure is retried")
	for _, c := range h.creates {
		assert.LessOrEqual(t, c.At.Sub(t0), 20*time.Second, "the create is bounded to 20 s")
	}
	require.Len(t, h.discards, 1, "a create that may have committed is undone")
	assert.Equal(t, invID(), h.discards[0].In)
	assert.Empty(t, h.emailsSent())
}

func TestCreateValidation(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.SubscriptionID = uuid.Nil // the API never sends one; the workflow refuses it anyway
	created := h.create()
	h.run(in)

	created.rejected(t, contract.CodeValidation)
	assert.Empty(t, h.creates)
	assert.Equal(t, contract.StatusRejected, h.result().Status)
}

func TestSecondCreateIsInvalidState(t *testing.T) {
	h := newHarness(t)
	first := h.create()
	second := h.update(time.Minute, contract.UpdateCreate)
	h.cancelAt(time.Hour)
	h.run(newInput())
	h.requireCancelled()

	first.state(t)
	second.rejected(t, contract.CodeInvalidState)
	assert.Len(t, h.creates, 1)
	assert.Len(t, h.emailsSent(), 1)
}

func TestGivesUpWithoutCreate(t *testing.T) {
	h := newHarness(t)
	h.run(newInput())

	st := h.result()
	assert.Equal(t, contract.StatusRejected, st.Status)
	assert.True(t, t0.Equal(h.now()), "a run started without its create ends at once (ended %v)", h.now())
	assert.Empty(t, h.timerEvents(), "and arms no timer")
	assert.Empty(t, h.creates)
	assert.Empty(t, h.emailsSent())
	assert.Equal(t, "rejected", h.sa("InvitationStatus"))
}

// ---- expiry and reminder ----

func TestExpiresAfterTTLWithReminder(t *testing.T) {
	h := newHarness(t)
	h.create()
	var before, after contract.State
	h.at(reminder.Sub(t0)-time.Second, func() { before = h.state() })
	h.at(reminder.Sub(t0)+time.Second, func() { after = h.state() })
	h.run(newInput())
	expired := h.result()
	assert.True(t, expiry.Equal(h.now()), "the run completes with the expiry (ended %v)", h.now())
	assert.Equal(t, "expired", h.sa("InvitationStatus"))
	assert.Equal(t, []timerEvent{
		started(t0, settings.TTL-settings.ReminderBefore), fired(reminder),
		started(reminder, settings.ReminderBefore), fired(expiry),
	}, h.timerEvents(), "a timer for the reminder, then one for the expiry, and nothing else")

	sent := h.emailsSent()
	require.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindReminder}, kinds(sent))
	assert.True(t, t0.Equal(sent[0].At))
	assert.Equal(t, email(contract.KindReminder, 1, 1), sent[1].In)
	assert.True(t, reminder.Equal(sent[1].At), "reminder at %v, want expiry-48h = %v", sent[1].At, reminder)

	closes := h.closed()
	require.Len(t, closes, 1)
	assert.Equal(t, invID(), closes[0].In.InvitationID)
	assert.Equal(t, 1, closes[0].In.Generation)
	assert.Equal(t, contract.StatusExpired, closes[0].In.Status)
	assert.True(t, expiry.Equal(closes[0].At), "expired at %v, want creation+TTL = %v", closes[0].At, expiry)

	assert.False(t, before.ReminderSent)
	assert.True(t, after.ReminderSent)
	assert.Equal(t, contract.StatusPending, after.Status)
	assert.Equal(t, contract.StatusExpired, expired.Status)
	assert.Equal(t, 1, expired.Generation)
}

func TestNoReminderWhenReminderBeforeIsZero(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.Settings.ReminderBefore = 0
	h.create()
	var st contract.State
	h.at(time.Hour, func() { st = h.state() })
	h.run(in)
	assert.Equal(t, contract.StatusExpired, h.result().Status)
	assert.Equal(t, []timerEvent{started(t0, settings.TTL), fired(expiry)}, h.timerEvents())

	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))
	assert.NotContains(t, st.WaitingFor, "Reminder")
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.True(t, expiry.Equal(closes[0].At))
	assert.Equal(t, contract.StatusExpired, closes[0].In.Status)
}

// ---- resend and renew ----

func TestResendRateLimitedThenSameLink(t *testing.T) {
	h := newHarness(t)
	h.create()
	early := h.update(20*time.Second, contract.UpdateResend)
	resent := h.update(90*time.Second, contract.UpdateResend)
	again := h.update(100*time.Second, contract.UpdateResend)
	h.run(newInput())
	assert.Equal(t, contract.StatusExpired, h.result().Status)

	var details contract.RateLimitDetails
	require.NoError(t, early.rejected(t, contract.CodeRateLimited).Details(&details))
	assert.Equal(t, 40*time.Second, details.RetryAfter, "retry after the rest of the 60 s interval")
	require.NoError(t, again.rejected(t, contract.CodeRateLimited).Details(&details))
	assert.Equal(t, 50*time.Second, details.RetryAfter)

	st := resent.state(t)
	assert.Equal(t, 2, st.Sends)
	assert.Equal(t, 1, st.Generation, "a resend keeps the link")
	assert.True(t, t0.Add(90*time.Second).Equal(st.LastSentAt))
	assert.True(t, expiry.Equal(st.ExpiresAt), "a resend does not move the expiry")

	sent := h.emailsSent()
	require.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindInvite, contract.KindReminder}, kinds(sent))
	assert.Equal(t, email(contract.KindInvite, 1, 2), sent[1].In, "same generation (same link), next send number")
	assert.True(t, t0.Add(90*time.Second).Equal(sent[1].At))
	assert.True(t, reminder.Equal(sent[2].At))
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.True(t, expiry.Equal(closes[0].At), "the expiry timer is unchanged by the resend (expired %v)", closes[0].At)
	assert.Equal(t, []timerEvent{
		started(t0, settings.TTL-settings.ReminderBefore), fired(reminder),
		started(reminder, settings.ReminderBefore), fired(expiry),
	}, h.timerEvents(), "a resend arms no timer and cancels none")
}

func TestResendAndRenewRefusedInWrongState(t *testing.T) {
	h := newHarness(t)
	h.closeDelay = 2 * time.Hour // the expiry is still being recorded when the resend arrives
	h.create()
	renewPending := h.update(time.Hour, contract.UpdateRenew)
	resendExpired := h.update(settings.TTL+time.Hour, contract.UpdateResend)
	h.run(newInput())
	assert.Equal(t, contract.StatusExpired, h.result().Status)

	renewPending.rejected(t, contract.CodeInvalidState)
	resendExpired.rejected(t, contract.CodeInvalidState)
	assert.Empty(t, h.renews)
	assert.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindReminder}, kinds(h.emailsSent()))
}

func TestRenewRejectedWhenSeatsExhausted(t *testing.T) {
	h := newHarness(t)
	h.renewErr = temporal.NewNonRetryableApplicationError("no seat left", string(contract.CodeSeatsExhausted), nil)
	renewed := h.update(0, contract.UpdateRenew)
	h.run(resumedInput(1, t0.Add(-24*time.Hour)))

	renewed.failed(t, contract.CodeSeatsExhausted)
	require.Len(t, h.renews, 1, "a business error is not retried")
	st := h.result()
	assert.Equal(t, contract.StatusExpired, st.Status, "the run started for the renew ends, still expired")
	assert.Equal(t, 1, st.Generation)
	assert.True(t, t0.Equal(h.now()), "at once")
	assert.Empty(t, h.emailsSent())
	assert.Empty(t, h.upserted(), "nothing changed")
}

// ---- accept, decline, revoke ----

func TestAcceptProvisionsUserAndCompletes(t *testing.T) {
	h := newHarness(t)
	h.create()
	accepted := h.update(3*time.Hour, contract.UpdateAccept, accept(1))
	h.run(newInput())

	v := accepted.succeeded(t)
	res, ok := v.(contract.AcceptResult)
	require.True(t, ok, "accept answered %T", v)
	assert.Equal(t, provisionedUserID, res.UserID)

	prov := h.provisioned()
	require.Len(t, prov, 1)
	assert.Equal(t, activities.ProvisionInput{InvitationID: invID(), Generation: 1, PasswordHash: passwordHash, StartWelcome: true}, prov[0].In,
		"the provisioning step hands the welcome email to its own workflow")

	st := h.result()
	assert.Equal(t, contract.StatusAccepted, st.Status)
	require.NotNil(t, st.UserID)
	assert.Equal(t, provisionedUserID, *st.UserID)
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()), "the run sends no welcome email itself")
	assert.True(t, t0.Add(3*time.Hour).Equal(h.now()), "the run completes with the accept")
	assert.Empty(t, h.closed(), "an accepted invitation is not closed as expired, revoked or declined")
	assert.Equal(t, "accepted", h.sa("InvitationStatus"))
	assert.Equal(t, []string{"DeliveryStatus=sent", "InvitationStatus=accepted"}, h.upserted())
	assert.Equal(t, []timerEvent{started(t0, settings.TTL-settings.ReminderBefore)}, h.timerEvents(),
		"the reminder's timer ends with the run: no cancellation to record")
	assert.Equal(t, []string{"CreateInvitation", "ProvisionUser"}, h.locals, "the Postgres steps run as local activities")
}

func TestAcceptRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Duration
		gen  int
		typ  contract.Code
	}{
		{"wrong generation", time.Hour, 2, contract.CodeInvitationExpired},
		{"generation 0", time.Hour, 0, contract.CodeInvitationExpired},
		{"after expiry", settings.TTL + time.Hour, 1, contract.CodeInvitationExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.closeDelay = 3 * time.Hour // keeps the expiring run open for the accept
			h.create()
			acc := h.update(tc.at, contract.UpdateAccept, accept(tc.gen))
			var st contract.State
			h.at(tc.at+time.Minute, func() { st = h.state() })
			if tc.at < settings.TTL {
				h.cancelAt(tc.at + 2*time.Minute)
			}
			h.run(newInput())

			acc.rejected(t, tc.typ)
			assert.Empty(t, h.provisioned())
			assert.NotEqual(t, contract.StatusAccepted, st.Status)
		})
	}
}

func TestAcceptFailsWithProvisioningBusinessError(t *testing.T) {
	h := newHarness(t)
	h.provisionErr = temporal.NewNonRetryableApplicationError("no seat left", string(contract.CodeSeatsExhausted), nil)
	h.create()
	acc := h.update(time.Hour, contract.UpdateAccept, accept(1))
	var st contract.State
	h.at(time.Hour+time.Minute, func() { st = h.state() })
	h.cancelAt(2 * time.Hour)
	h.run(newInput())
	h.requireCancelled()

	acc.failed(t, contract.CodeSeatsExhausted)
	assert.Len(t, h.provisioned(), 1, "a business error is not retried")
	assert.Equal(t, contract.StatusPending, st.Status, "the invitation stays pending")
	assert.Nil(t, st.UserID)
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()), "no welcome email")
}

func TestAcceptAfterAcceptIsInvalidState(t *testing.T) {
	h := newHarness(t)
	h.provisionDelay = 10 * time.Second
	h.create()
	first := h.update(time.Hour, contract.UpdateAccept, accept(1))
	// The first is still provisioning: the second waits for the mutex, then finds it accepted.
	second := h.update(time.Hour+5*time.Second, contract.UpdateAccept, accept(1))
	h.run(newInput())

	first.succeeded(t)
	second.failed(t, contract.CodeInvalidState)
	assert.Len(t, h.provisioned(), 1)
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}

func TestDeclineClosesAndCompletes(t *testing.T) {
	h := newHarness(t)
	h.create()
	declined := h.update(2*time.Hour, contract.UpdateDecline, contract.DeclineRequest{Generation: 1})
	h.run(newInput())

	assert.Equal(t, contract.StatusDeclined, declined.state(t).Status)
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.Equal(t, contract.StatusDeclined, closes[0].In.Status)
	assert.Equal(t, 1, closes[0].In.Generation)
	assert.True(t, t0.Add(2*time.Hour).Equal(closes[0].At))
	assert.Equal(t, contract.StatusDeclined, h.result().Status)
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))
	assert.Empty(t, h.provisioned())
	assert.Equal(t, "declined", h.sa("InvitationStatus"))
}

func TestDeclineAfterRevokeIsInvalidState(t *testing.T) {
	h := newHarness(t)
	h.closeDelay = 5 * time.Second // the revoke is still recording when the decline arrives
	h.create()
	revoked := h.update(time.Hour, contract.UpdateRevoke, contract.RevokeRequest{By: "portal-admin"})
	declined := h.update(time.Hour+time.Second, contract.UpdateDecline, contract.DeclineRequest{Generation: 1})
	h.run(newInput())

	assert.Equal(t, contract.StatusRevoked, revoked.state(t).Status)
	declined.failed(t, contract.CodeInvalidState)
	closes := h.closed()
	require.Len(t, closes, 1, "only the revoke is recorded")
	assert.Equal(t, contract.StatusRevoked, closes[0].In.Status)
	assert.Equal(t, contract.StatusRevoked, h.result().Status)
}

func TestRevokePending(t *testing.T) {
	h := newHarness(t)
	h.create()
	revoked := h.update(time.Hour, contract.UpdateRevoke, contract.RevokeRequest{By: "portal-admin"})
	h.run(newInput())

	assert.Equal(t, contract.StatusRevoked, revoked.state(t).Status)
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.Equal(t, activities.CloseInput{InvitationID: invID(), Generation: 1, Status: contract.StatusRevoked, Detail: "revoked by portal-admin"}, closes[0].In)
	assert.True(t, t0.Add(time.Hour).Equal(closes[0].At))
	assert.Equal(t, contract.StatusRevoked, h.result().Status)
	assert.True(t, t0.Add(time.Hour).Equal(h.now()), "completes at once, without waiting for the expiry")
	assert.Equal(t, "revoked", h.sa("InvitationStatus"))
}

func TestRevokeAfterExpiry(t *testing.T) {
	// A revoke that reaches a run in its expired state (one still finishing, or started from the
	// row by a renewal request) closes it there. With no run open, the API revokes in Postgres.
	h := newHarness(t)
	revoked := h.update(0, contract.UpdateRevoke, contract.RevokeRequest{})
	h.run(resumedInput(1, t0.Add(-24*time.Hour)))

	assert.Equal(t, contract.StatusRevoked, revoked.state(t).Status)
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.Equal(t, activities.CloseInput{InvitationID: invID(), Generation: 1, Status: contract.StatusRevoked, Detail: "revoked"}, closes[0].In)
	assert.Equal(t, contract.StatusRevoked, h.result().Status)
	assert.True(t, t0.Equal(h.now()), "and ends at once")
	assert.Empty(t, h.emailsSent())
	assert.Empty(t, h.timerEvents())
}

func TestRevokeAfterAcceptIsInvalidState(t *testing.T) {
	h := newHarness(t)
	h.provisionDelay = 10 * time.Second
	h.create()
	h.update(time.Hour, contract.UpdateAccept, accept(1))
	revoked := h.update(time.Hour+5*time.Second, contract.UpdateRevoke, contract.RevokeRequest{By: "portal-admin"})
	h.run(newInput())

	revoked.failed(t, contract.CodeInvalidState)
	assert.Empty(t, h.closed())
	assert.Equal(t, contract.StatusAccepted, h.result().Status)
}
