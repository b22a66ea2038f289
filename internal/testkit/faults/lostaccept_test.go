package faults

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// TestWorkerKilledAfterProvisioningNearExpiry: an accept sent 3 s before the invitation expires
// provisions the user (the test kit's slow worker commits at once and holds the step's result),
// and its worker is SIGKILLed before the workflow task that ran the step completes: Postgres
// holds the user, the history does not. The task that replaces it starts after the lost one's
// 10 s timeout, past the expiry, with the expiry's timer fired: the run, retrying the accept,
// would refuse it as expired (or close the invitation as expired, refused by Postgres). The
// accept happened, and its answer must say so: 200 with the user (or a retry-safe 503 and then
// that), never a 410. Postgres holds one user, membership and seat and no expiry; the run ends
// accepted, by that user, as Postgres holds it.
func TestWorkerKilledAfterProvisioningNearExpiry(t *testing.T) {
	t.Parallel()
	svc := newService(t, "lostaccept", map[string]string{"INVITATION_TTL": "10s", "INVITATION_REMINDER_BEFORE": "0s"})
	first := svc.startSlowWorker(t, 30*time.Second, map[string]string{"TESTKIT_PROVISION_HOLD": "after"})
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Lost.Accept")
	inv := f.invite(t, c, email)
	token := tokenOf(t, *inv.InviteURL)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	time.Sleep(time.Until(inv.ExpiresAt.Add(-3 * time.Second)))

	answer, sent, lost := acceptWhenIdle(t, svc, inv)
	eventually(t, 10*time.Second, "the provisioning to commit", func() bool {
		return provisionedFor(t, f, email) == provisioned{1, 1, 1}
	})
	committed := time.Now()
	first.signal(t, syscall.SIGKILL)
	if exited, _ := first.exitedIn(10 * time.Second); !exited {
		t.Fatal("the worker survived SIGKILL")
	}
	svc.startWorker(t, nil)
	t.Logf("accept sent %s before the expiry; its task started %s after; committed and killed %s before the expiry",
		inv.ExpiresAt.Sub(sent).Round(time.Millisecond), lost.GetStartedTime().AsTime().Sub(sent).Round(time.Millisecond),
		inv.ExpiresAt.Sub(committed).Round(time.Millisecond))

	answers := settleAccept(t, svc.invitee(), token, <-answer, 90*time.Second)
	t.Logf("accept answers: %s", statuses(answers))
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	checkAnsweredUser(t, svc, f, inv.ID, answers)
	got := f.invitation(t, c, inv.ID)
	if got.count("expired") != 0 || got.count("accepted") != 1 {
		t.Errorf("the story of the accepted invitation: %+v; want one accepted event and no expiry", got.Events)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st contract.State
	if err := env.tc.GetWorkflow(ctx, wfID(inv.ID), "").Get(ctx, &st); err != nil {
		t.Fatalf("the run's result: %v", err)
	}
	if st.Status != contract.StatusAccepted || st.UserID == nil || got.UserID == nil || st.UserID.String() != *got.UserID {
		t.Errorf("the run ended %s by user %v; want accepted by %s, as Postgres holds it", st.Status, st.UserID, deref(got.UserID))
	}
}
