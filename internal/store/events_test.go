package store

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
)

func feedTypes(events []FeedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

// Every transition's public event is written with it, numbered once by the sequencer in the
// order it happened, served oldest first after a cursor, and owed to the account's endpoints
// that want it; a retried transition writes nothing twice.
func TestEventsFeedAndOwedDeliveries(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	other, _ := s.CreateAccount(ctx, "Other")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})
	all, err := s.CreateWebhookEndpoint(ctx, WebhookEndpoint{ID: uuid.New(), AccountID: acc.ID, URL: "https://hooks.acme.test/all"})
	if err != nil {
		t.Fatal(err)
	}
	onlyAccepted, err := s.CreateWebhookEndpoint(ctx, WebhookEndpoint{ID: uuid.New(), AccountID: acc.ID, URL: "https://hooks.acme.test/accepted",
		EventTypes: []string{contract.PublicAccepted}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWebhookEndpoint(ctx, WebhookEndpoint{ID: uuid.New(), AccountID: other.ID, URL: "https://hooks.other.test/"}); err != nil {
		t.Fatal(err)
	}

	n := newInvitation(acc.ID, sub.ID, "jane@acme.test", "run-1")
	for range 2 { // a retried create writes its event once
		if _, err := s.CreateInvitation(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	key := "invitation-" + n.ID.String() + "-g1-invite-1"
	if _, err := s.BeginEmail(ctx, Email{IdempotencyKey: key, InvitationID: n.ID, Kind: contract.KindInvite, Recipient: n.Email}, 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.FinishEmail(ctx, key, contract.DeliverySent, "re_1", ""); err != nil {
			t.Fatal(err)
		}
	}
	key2 := "invitation-" + n.ID.String() + "-g1-invite-2"
	if _, err := s.BeginEmail(ctx, Email{IdempotencyKey: key2, InvitationID: n.ID, Kind: contract.KindInvite, Recipient: n.Email}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishEmail(ctx, key2, contract.DeliverySent, "re_2", ""); err != nil {
		t.Fatal(err)
	}
	// Unnumbered events are not in the feed yet.
	if got, _ := s.ListEvents(ctx, acc.ID, 0, 100, nil); len(got) != 0 {
		t.Fatalf("feed before sequencing = %v", feedTypes(got))
	}
	seq, err := s.SequenceEvents(ctx, 2) // a small batch: the rest waits for the next
	if err != nil || seq.Events != 2 {
		t.Fatalf("first batch = %+v, %v", seq, err)
	}
	if len(seq.Owed) != 2 {
		t.Fatalf("owed = %+v, want the two events to the all-types endpoint", seq.Owed)
	}
	prov, err := s.ProvisionUser(ctx, n.ID, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	seq, err = s.SequenceEvents(ctx, 100)
	if err != nil || seq.Events != 2 {
		t.Fatalf("second batch = %+v, %v", seq, err)
	}
	owedTo := map[uuid.UUID]int{}
	for _, d := range seq.Owed {
		owedTo[d.EndpointID]++
	}
	if owedTo[all.ID] != 2 || owedTo[onlyAccepted.ID] != 1 || len(owedTo) != 2 {
		t.Fatalf("second batch owed %v", owedTo)
	}
	if again, _ := s.SequenceEvents(ctx, 100); again.Events != 0 {
		t.Fatalf("a third batch numbered %d events again", again.Events)
	}

	feed, err := s.ListEvents(ctx, acc.ID, 0, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{contract.PublicCreated, contract.PublicSent, contract.PublicResent, contract.PublicAccepted}
	if got := feedTypes(feed); !slices.Equal(got, want) {
		t.Fatalf("feed = %v, want %v", got, want)
	}
	accepted := feed[3]
	if accepted.UserID == nil || *accepted.UserID != prov.UserID || accepted.Invitation.Status != contract.StatusAccepted {
		t.Fatalf("accepted event = %+v, want user %s and the accepted invitation", accepted, prov.UserID)
	}
	if feed[0].Invitation.Status != contract.StatusPending || feed[0].UserID != nil || feed[0].Invitation.Email != n.Email {
		t.Fatalf("created event's snapshot = %+v", feed[0])
	}
	if feed[1].Invitation.DeliveryStatus != contract.DeliverySent {
		t.Fatalf("sent event's delivery = %q, want sent", feed[1].Invitation.DeliveryStatus)
	}
	page, _ := s.ListEvents(ctx, acc.ID, feed[1].Seq, 100, nil)
	if got := feedTypes(page); !slices.Equal(got, want[2:]) {
		t.Fatalf("after the second event = %v", got)
	}
	only, _ := s.ListEvents(ctx, acc.ID, 0, 100, []string{contract.PublicAccepted, contract.PublicCreated})
	if got := feedTypes(only); !slices.Equal(got, []string{contract.PublicCreated, contract.PublicAccepted}) {
		t.Fatalf("type filter = %v", got)
	}
	if mine, _ := s.ListEvents(ctx, other.ID, 0, 100, nil); len(mine) != 0 {
		t.Fatalf("another account's feed holds %v", feedTypes(mine))
	}
	ev, err := s.GetEvent(ctx, accepted.RowID)
	if err != nil || ev.ID != accepted.ID {
		t.Fatalf("GetEvent = %+v, %v", ev, err)
	}

	// Provider reports: applied once per provider event id; unknown emails ignored.
	applied, inv, err := s.ProviderDelivery(ctx, "msg_1", "email.bounced", "re_2", contract.DeliveryBounced, "mailbox full")
	if err != nil || !applied || inv == nil || *inv != n.ID {
		t.Fatalf("bounce = %v, %v, %v", applied, inv, err)
	}
	if applied, _, _ := s.ProviderDelivery(ctx, "msg_1", "email.bounced", "re_2", contract.DeliveryBounced, "mailbox full"); applied {
		t.Fatal("a replayed provider event was applied again")
	}
	if applied, _, err := s.ProviderDelivery(ctx, "msg_2", "email.bounced", "re_unknown", contract.DeliveryBounced, ""); applied || err != nil {
		t.Fatalf("a bounce of an email never sent = %v, %v", applied, err)
	}
	if _, err := s.SequenceEvents(ctx, 100); err != nil {
		t.Fatal(err)
	}
	feed, _ = s.ListEvents(ctx, acc.ID, 0, 100, nil)
	if got := feedTypes(feed); !slices.Equal(got, append(want, contract.PublicDeliveryFailed)) {
		t.Fatalf("feed after the bounce = %v", got)
	}
}

// Sequencers racing (one per worker replica) number every event exactly once, and each
// account's feed stays in the order its invitations' events happened.
func TestConcurrentSequencers(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 100, []string{"viewer"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	numbered := make([]int, 3)
	for i := range numbered {
		wg.Go(func() {
			for {
				seq, err := s.SequenceEvents(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				numbered[i] += seq.Events
				select {
				case <-stop:
					if seq.Events == 0 {
						return
					}
				default:
				}
			}
		})
	}
	ids := make([]uuid.UUID, 40)
	var writers sync.WaitGroup
	for i := range ids {
		writers.Go(func() {
			n := newInvitation(acc.ID, sub.ID, uuid.NewString()+"@acme.test", "run")
			ids[i] = n.ID
			if _, err := s.CreateInvitation(ctx, n); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.CloseInvitation(ctx, n.ID, 1, contract.StatusRevoked, ""); err != nil {
				t.Error(err)
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if total := numbered[0] + numbered[1] + numbered[2]; total != 80 {
		t.Fatalf("%d events numbered, want 80 (%v)", total, numbered)
	}
	feed, err := s.ListEvents(ctx, acc.ID, 0, 1000, nil)
	if err != nil || len(feed) != 80 {
		t.Fatalf("feed has %d events, %v", len(feed), err)
	}
	seen := map[uuid.UUID]string{}
	for i, e := range feed {
		if i > 0 && e.Seq <= feed[i-1].Seq {
			t.Fatalf("feed not in seq order at %d", i)
		}
		id := e.Invitation.ID
		switch e.Type {
		case contract.PublicCreated:
			if seen[id] != "" {
				t.Fatalf("invitation %s: created after %s", id, seen[id])
			}
		case contract.PublicRevoked:
			if seen[id] != contract.PublicCreated {
				t.Fatalf("invitation %s: revoked before created", id)
			}
		}
		seen[id] = e.Type
	}
}

// A deployment's dispatcher catches up on its own endpoints' deliveries, and on any
// endpoint's once they have waited past the orphan limit (their deployment is gone).
func TestUnstartedDeliveriesByDeployment(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})
	blue, err := s.CreateWebhookEndpoint(ctx, WebhookEndpoint{ID: uuid.New(), AccountID: acc.ID, URL: "https://hooks.acme.test/", TaskQueue: "blue"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInvitation(ctx, newInvitation(acc.ID, sub.ID, "jane@acme.test", "run")); err != nil {
		t.Fatal(err)
	}
	seq, err := s.SequenceEvents(ctx, 10)
	if err != nil || len(seq.Owed) != 1 || seq.Owed[0].TaskQueue != "blue" || seq.Owed[0].EndpointID != blue.ID {
		t.Fatalf("owed = %+v, %v", seq.Owed, err)
	}
	if got, _ := s.UnstartedDeliveries(ctx, "green", 0, time.Hour, 10); len(got) != 0 {
		t.Fatalf("green took blue's delivery: %+v", got)
	}
	if got, _ := s.UnstartedDeliveries(ctx, "blue", 0, time.Hour, 10); len(got) != 1 {
		t.Fatalf("blue's own catch-up = %+v", got)
	}
	if got, _ := s.UnstartedDeliveries(ctx, "green", time.Hour, 0, 10); len(got) != 1 {
		t.Fatalf("an orphaned delivery left to nobody: %+v", got)
	}
	if err := s.MarkDeliveryStarted(ctx, seq.Owed[0]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UnstartedDeliveries(ctx, "blue", 0, 0, 10); len(got) != 0 {
		t.Fatalf("a started delivery is still owed: %+v", got)
	}
}
