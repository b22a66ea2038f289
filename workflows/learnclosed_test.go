package workflows_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// A run whose state is behind Postgres: a workflow task whose step committed an accept or a
// decline was lost (its worker killed before it completed the task), so the step's result never
// reached the history. The next close the run attempts is refused with the outcome Postgres
// holds (activities' ClosedDetails), and the run ends as Postgres says instead of as it guessed.

// closedRefusal is the refusal of a Postgres step whose invitation Postgres holds as closed, as
// the activities return it (activities/refusals_test.go checks they do).
func closedRefusal(status contract.Status, user *uuid.UUID) error {
	return temporal.NewApplicationErrorWithOptions("the invitation is already "+string(status), string(contract.CodeInvalidState),
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{contract.ClosedDetails{Status: status, UserID: user}}})
}

func refuseCloses(status contract.Status, user *uuid.UUID) func(activities.CloseInput) error {
	return func(activities.CloseInput) error { return closedRefusal(status, user) }
}

// The expiry finds the invitation accepted in Postgres: the run ends accepted, by that user,
// and publishes so.
func TestExpiryLearnsAcceptFromPostgres(t *testing.T) {
	h := newHarness(t)
	user := provisionedUserID
	h.closeErr = refuseCloses(contract.StatusAccepted, &user)
	h.create()
	h.run(newInput())

	st := h.result()
	assert.Equal(t, contract.StatusAccepted, st.Status)
	require.NotNil(t, st.UserID)
	assert.Equal(t, provisionedUserID, *st.UserID)
	assert.True(t, expiry.Equal(h.now()), "the run ends with the expiry's close (ended %v)", h.now())
	assert.Equal(t, "accepted", h.sa("InvitationStatus"))
	closes := h.closed()
	require.Len(t, closes, 1, "the expiry's close is refused once, not retried")
	assert.Equal(t, contract.StatusExpired, closes[0].In.Status)
}

// A decline finds the invitation accepted in Postgres: the decline is refused as invalid_state
// and the run ends accepted.
func TestDeclineLearnsAcceptFromPostgres(t *testing.T) {
	h := newHarness(t)
	user := provisionedUserID
	h.closeErr = refuseCloses(contract.StatusAccepted, &user)
	h.create()
	declined := h.update(2*time.Hour, contract.UpdateDecline, contract.DeclineRequest{Generation: 1})
	h.run(newInput())

	declined.failed(t, contract.CodeInvalidState)
	st := h.result()
	assert.Equal(t, contract.StatusAccepted, st.Status)
	require.NotNil(t, st.UserID)
	assert.Equal(t, provisionedUserID, *st.UserID)
	assert.True(t, t0.Add(2*time.Hour).Equal(h.now()), "the run ends with the refused decline (ended %v)", h.now())
}

// An accept finds the invitation declined in Postgres: the accept is refused as invalid_state,
// nothing is provisioned twice, and the run ends declined.
func TestAcceptLearnsDeclineFromPostgres(t *testing.T) {
	h := newHarness(t)
	h.provisionErr = closedRefusal(contract.StatusDeclined, nil)
	h.create()
	acc := h.update(time.Hour, contract.UpdateAccept, accept(1))
	h.run(newInput())

	acc.failed(t, contract.CodeInvalidState)
	assert.Len(t, h.provisioned(), 1, "a refusal is not retried")
	st := h.result()
	assert.Equal(t, contract.StatusDeclined, st.Status)
	assert.Nil(t, st.UserID)
	assert.True(t, t0.Add(time.Hour).Equal(h.now()), "the run ends with the refused accept (ended %v)", h.now())
	assert.Equal(t, "declined", h.sa("InvitationStatus"))
}

// A refusal without the outcome (as runs recorded before ClosedDetails existed saw it) leaves
// the run's course as it was: the expiry's clock wins.
func TestExpiryRefusedWithoutOutcomeKeepsTheClock(t *testing.T) {
	h := newHarness(t)
	h.closeErr = func(activities.CloseInput) error {
		return temporal.NewNonRetryableApplicationError("the invitation is not in a state that allows this", string(contract.CodeInvalidState), nil)
	}
	h.create()
	h.run(newInput())

	assert.Equal(t, contract.StatusExpired, h.result().Status)
	assert.True(t, expiry.Equal(h.now()))
}

// The revoke whose workflow task was lost after its step committed comes again in the task that
// replaces it, with the expiry's timer: the expiry, run first, learns the revoke from Postgres,
// and the revoke, run again, answers revoked as it would have (its step repeats harmlessly).
func TestRevokeRunAgainAfterExpiryLearnedIt(t *testing.T) {
	h := newHarness(t)
	h.closeErr = func(in activities.CloseInput) error {
		if in.Status == contract.StatusExpired {
			return closedRefusal(contract.StatusRevoked, nil)
		}
		return nil
	}
	h.closeDelay = time.Second // the expiry's close, first, still runs as the revoke arrives
	h.create()
	revoked := h.update(settings.TTL+100*time.Millisecond, contract.UpdateRevoke, contract.RevokeRequest{By: "portal-admin"})
	h.run(newInput())

	assert.Equal(t, contract.StatusRevoked, revoked.state(t).Status)
	assert.Equal(t, contract.StatusRevoked, h.result().Status)
	closes := h.closed()
	require.Len(t, closes, 2)
	assert.Equal(t, []contract.Status{contract.StatusExpired, contract.StatusRevoked}, []contract.Status{closes[0].In.Status, closes[1].In.Status})
}
