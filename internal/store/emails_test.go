package store

import (
	"errors"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// An email is recorded once per idempotency key, however often its send is retried; finishing
// it records its outcome and one event; an unknown key is ErrNotFound (the workflow's record of
// a failure treats that as "never got as far as being recorded", rather than retrying it).
func TestEmailRecords(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})
	inv := seedInvitation(t, s, acc.ID, sub.ID, "jane@acme.test", "pending", time.Now())

	e := Email{IdempotencyKey: "invitation-x-g1-invite-2", InvitationID: inv, Kind: contract.KindInvite,
		Recipient: "jane@acme.test", Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"}
	for range 2 {
		got, err := s.BeginEmail(ctx, e, 2)
		if err != nil || got.Status != contract.DeliveryQueued || got.Subject != "Hi" || got.InvitationID != inv {
			t.Fatalf("BeginEmail = %+v, %v", got, err)
		}
	}
	var rows, sends int
	if err := s.Pool.QueryRow(ctx, `select count(*), (select sends from invitations where id = $1) from emails where invitation_id = $1`, inv).
		Scan(&rows, &sends); err != nil || rows != 1 || sends != 2 {
		t.Fatalf("%d email rows and %d sends (%v), want 1 and 2", rows, sends, err)
	}

	for range 2 {
		if err := s.FinishEmail(ctx, e.IdempotencyKey, contract.DeliverySent, "re_1", ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetEmail(ctx, e.IdempotencyKey)
	if err != nil || got.Status != contract.DeliverySent || got.ProviderID != "re_1" {
		t.Fatalf("after FinishEmail: %+v %v", got, err)
	}
	events, err := s.InvitationEvents(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, ev := range events {
		if ev.Type == "email_sent" {
			sent++
			if ev.Detail != "invite email sent" {
				t.Errorf("event detail %q", ev.Detail)
			}
		}
	}
	if sent != 1 {
		t.Errorf("%d email_sent events, want 1: %+v", sent, events)
	}

	if err := s.FinishEmail(ctx, "no-such-key", contract.DeliveryFailed, "", "boom"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishEmail of an unknown key = %v, want ErrNotFound", err)
	}
}
