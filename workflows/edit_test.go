package workflows_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// ---- edit (PATCH) and send_email false ----

func TestEditMovesTheExpiryAndItsTimer(t *testing.T) {
	h := newHarness(t)
	h.create()
	role := "viewer"
	edited := h.update(time.Hour, contract.UpdateEdit, contract.EditRequest{
		Role: &role, ExpiresIn: 2 * time.Hour, Metadata: json.RawMessage(`{"crm":"42"}`), By: "portal",
	})
	h.run(newInput())
	newExpiry := t0.Add(3 * time.Hour)

	st := edited.state(t)
	assert.True(t, newExpiry.Equal(st.ExpiresAt), "expires_in counts from the edit: %v", st.ExpiresAt)
	assert.Equal(t, 1, st.Generation, "the link stays")
	require.Len(t, h.edits, 1)
	e := h.edits[0].In
	assert.Equal(t, invID(), e.InvitationID)
	assert.Equal(t, 1, e.Generation)
	assert.NotEmpty(t, e.Key, "the edit is named by its update, so a retried step applies it once")
	require.NotNil(t, e.Role)
	assert.Equal(t, "viewer", *e.Role)
	require.NotNil(t, e.ExpiresAt)
	assert.True(t, newExpiry.Equal(*e.ExpiresAt))
	assert.Equal(t, 2*time.Hour, e.ExpiresIn)
	assert.Contains(t, e.Detail, "edited by portal")

	assert.Equal(t, contract.StatusExpired, h.result().Status)
	assert.True(t, newExpiry.Equal(h.now()), "the run ends at the new expiry, not the old one (ended %v)", h.now())
	closes := h.closed()
	require.Len(t, closes, 1)
	assert.True(t, newExpiry.Equal(closes[0].At))
	assert.Equal(t, []timerEvent{
		started(t0, settings.TTL-settings.ReminderBefore),
		started(t0.Add(time.Hour), 2*time.Hour), cancelled(t0.Add(time.Hour)), fired(newExpiry),
	}, h.timerEvents(), "one timer follows the new expiry and the old one is cancelled; the reminder would fall before the edit")
	assert.Equal(t, []contract.EmailKind{contract.KindInvite}, kinds(h.emailsSent()))
}

func TestEditRefusedOnceExpired(t *testing.T) {
	h := newHarness(t)
	h.closeDelay = 2 * time.Hour // the expiry is still being recorded when the edit arrives
	h.create()
	groups := []uuid.UUID{}
	late := h.update(settings.TTL+time.Hour, contract.UpdateEdit, contract.EditRequest{GroupIDs: &groups})
	h.run(newInput())
	assert.Equal(t, contract.StatusExpired, h.result().Status)
	late.rejected(t, contract.CodeInvalidState)
	assert.Empty(t, h.edits)
}

func TestHeldEmailWaitsForAResend(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.HoldEmail = true
	created := h.create()
	var before contract.State
	h.at(time.Hour, func() { before = h.state() })
	resent := h.update(2*time.Hour, contract.UpdateResend)
	h.run(in)

	st := created.state(t)
	assert.Equal(t, contract.StatusPending, st.Status)
	assert.Empty(t, st.Delivery.Status, "nothing is queued for an invitation created without an email")
	assert.Equal(t, 0, before.Sends)
	assert.False(t, before.InviteSent)
	assert.Contains(t, before.WaitingFor, "without an email")
	assert.Equal(t, 1, resent.state(t).Sends, "the resend sends the first email")
	require.Len(t, h.creates, 1)
	assert.True(t, h.creates[0].In.HoldEmail, "the row records send_email false")

	sent := h.emailsSent()
	require.Equal(t, []contract.EmailKind{contract.KindInvite, contract.KindReminder}, kinds(sent),
		"no email until the resend, then the reminder as usual")
	assert.True(t, t0.Add(2*time.Hour).Equal(sent[0].At))
	assert.Equal(t, email(contract.KindInvite, 1, 1), sent[0].In)
	assert.True(t, reminder.Equal(sent[1].At))
	assert.Equal(t, contract.StatusExpired, h.result().Status)
}

func TestHeldEmailNeverSendsAReminder(t *testing.T) {
	h := newHarness(t)
	in := newInput()
	in.HoldEmail = true
	h.create()
	h.run(in)
	assert.Equal(t, contract.StatusExpired, h.result().Status)
	assert.Empty(t, h.emailsSent(), "no invite was emailed, so there is nothing to remind of")
	assert.Equal(t, []timerEvent{started(t0, settings.TTL), fired(expiry)}, h.timerEvents())
}
