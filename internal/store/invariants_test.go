package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

func newInvitation(accountID, subID uuid.UUID, email, run string) NewInvitation {
	return NewInvitation{
		ID: uuid.Must(uuid.NewV7()), AccountID: accountID, SubscriptionID: subID, Application: "analytics",
		Role: "viewer", Email: email, FirstName: "Jane", ExpiresAt: time.Now().Add(time.Hour), CreateRun: run,
	}
}

func (s *Store) seatsReserved(t *testing.T, subID uuid.UUID) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(t.Context(), `select seats_reserved from subscriptions where id = $1`, subID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A create that its workflow run gave up on leaves nothing: undone when it had committed, and
// refused when it commits after the undo. The create of a later run for the same invitation (the
// API's retry) is not the abandoned one and stands.
func TestAbandonedCreate(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})

	// Committed, then abandoned: the row goes and the seat comes back.
	n := newInvitation(acc.ID, sub.ID, "late@acme.test", "run-1")
	if created, err := s.CreateInvitation(ctx, n); err != nil || !created {
		t.Fatalf("create = %v, %v", created, err)
	}
	if err := s.AbandonCreate(ctx, n.ID, "run-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetInvitation(ctx, n.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the undo the row is still there: %v", err)
	}
	if got := s.seatsReserved(t, sub.ID); got != 0 {
		t.Fatalf("%d seats reserved after the undo", got)
	}
	// The attempt that was still in flight commits only now: refused, nothing recorded.
	if _, err := s.CreateInvitation(ctx, n); !errors.Is(err, ErrAbandoned) {
		t.Fatalf("late create after the undo = %v, want ErrAbandoned", err)
	}
	if got := s.seatsReserved(t, sub.ID); got != 0 {
		t.Fatalf("%d seats reserved after the late create", got)
	}
	// The API's retry starts a new run, whose create stands; the old run's undo leaves it alone.
	n.CreateRun = "run-2"
	if created, err := s.CreateInvitation(ctx, n); err != nil || !created {
		t.Fatalf("create of the next run = %v, %v", created, err)
	}
	if err := s.AbandonCreate(ctx, n.ID, "run-1"); err != nil {
		t.Fatal(err)
	}
	if inv, err := s.GetInvitation(ctx, n.ID); err != nil || inv.Status != "pending" {
		t.Fatalf("the next run's invitation = %+v, %v", inv, err)
	}
	if got := s.seatsReserved(t, sub.ID); got != 1 {
		t.Fatalf("%d seats reserved, want the next run's 1", got)
	}
}

// A re-invite racing an accept of the same person never leaves a pending invitation for a
// member: before the accept commits it is a duplicate of the pending one, after it the person
// is a member (the create waits on the accept's lock, then reads the membership). And an
// invitation's accept never overwrites an active membership that came another way.
func TestReinviteRacingAccept(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 50, []string{"viewer", "editor"})
	for i := range 20 {
		email := uuid.NewString()[:8] + "@acme.test"
		first := newInvitation(acc.ID, sub.ID, email, "run")
		if _, err := s.CreateInvitation(ctx, first); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var acceptErr, createErr error
		again := newInvitation(acc.ID, sub.ID, email, "run")
		wg.Go(func() { _, acceptErr = s.ProvisionUser(ctx, first.ID, 1, "") })
		wg.Go(func() { _, createErr = s.CreateInvitation(ctx, again) })
		wg.Wait()
		if acceptErr != nil {
			t.Fatalf("round %d: accept = %v", i, acceptErr)
		}
		var dup *DuplicateInvitationError
		switch {
		case errors.Is(createErr, ErrAlreadyMember), errors.As(createErr, &dup):
		default:
			t.Fatalf("round %d: the re-invite racing the accept = %v, want already_member or duplicate", i, createErr)
		}
		var pending int
		if err := s.Pool.QueryRow(ctx, `select count(*) from invitations where account_id = $1 and email = $2 and status = 'pending'`,
			acc.ID, email).Scan(&pending); err != nil || pending != 0 {
			t.Fatalf("round %d: %d pending invitations for a member (%v)", i, pending, err)
		}
	}

	// An invitation created before the person joined another way cannot take over the membership.
	email := "twice@acme.test"
	a := newInvitation(acc.ID, sub.ID, email, "run")
	if _, err := s.CreateInvitation(ctx, a); err != nil {
		t.Fatal(err)
	}
	p, err := s.ProvisionUser(ctx, a.ID, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	b := newInvitation(acc.ID, sub.ID, email, "run")
	b.Role = "editor"
	if _, err := s.Pool.Exec(ctx, `update memberships set state = 'blocked' where user_id = $1`, p.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInvitation(ctx, b); err != nil {
		t.Fatalf("re-invite of a blocked member = %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `update memberships set state = 'active' where user_id = $1`, p.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProvisionUser(ctx, b.ID, 1, ""); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("accept over an active membership = %v, want ErrAlreadyMember", err)
	}
	var role string
	if err := s.Pool.QueryRow(ctx, `select role from memberships where user_id = $1`, p.UserID).Scan(&role); err != nil || role != "viewer" {
		t.Fatalf("membership role %q (%v): the refused accept must not overwrite it", role, err)
	}
	if inv, _ := s.GetInvitation(ctx, b.ID); inv.Status != "pending" {
		t.Fatalf("the refused accept changed the invitation to %s", inv.Status)
	}
}

// A close or an accept of an invitation Postgres already holds as closed is refused with a
// ClosedError (an ErrInvalidState) naming the status and the accepted user, and changes
// nothing; repeating the close that happened is not an error.
func TestClosedInvitationNamesItsOutcome(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})

	accepted := newInvitation(acc.ID, sub.ID, "accepted@acme.test", "run")
	if _, err := s.CreateInvitation(ctx, accepted); err != nil {
		t.Fatal(err)
	}
	p, err := s.ProvisionUser(ctx, accepted.ID, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []contract.Status{contract.StatusExpired, contract.StatusDeclined, contract.StatusRevoked} {
		changed, err := s.CloseInvitation(ctx, accepted.ID, 1, to, "")
		var closed *ClosedError
		if changed || !errors.Is(err, ErrInvalidState) || !errors.As(err, &closed) ||
			closed.Status != contract.StatusAccepted || closed.UserID == nil || *closed.UserID != p.UserID {
			t.Fatalf("close to %s of an accepted invitation = %v, %v (%+v); want a ClosedError naming accepted by %s", to, changed, err, closed, p.UserID)
		}
	}

	declined := newInvitation(acc.ID, sub.ID, "declined@acme.test", "run")
	if _, err := s.CreateInvitation(ctx, declined); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.CloseInvitation(ctx, declined.ID, 1, contract.StatusDeclined, ""); err != nil || !changed {
		t.Fatalf("decline = %v, %v", changed, err)
	}
	if changed, err := s.CloseInvitation(ctx, declined.ID, 1, contract.StatusDeclined, ""); err != nil || changed {
		t.Fatalf("the decline again = %v, %v; want nil, unchanged", changed, err)
	}
	_, err = s.ProvisionUser(ctx, declined.ID, 1, "")
	var closed *ClosedError
	if !errors.As(err, &closed) || closed.Status != contract.StatusDeclined || closed.UserID != nil {
		t.Fatalf("accept of a declined invitation = %v (%+v); want a ClosedError naming declined", err, closed)
	}
	if _, err := s.CloseInvitation(ctx, declined.ID, 1, contract.StatusExpired, ""); !errors.As(err, &closed) || closed.Status != contract.StatusDeclined {
		t.Fatalf("expiry of a declined invitation = %v; want a ClosedError naming declined", err)
	}
	if got := s.seatsReserved(t, sub.ID); got != 0 {
		t.Fatalf("%d seats reserved; the refusals must change nothing", got)
	}
}
