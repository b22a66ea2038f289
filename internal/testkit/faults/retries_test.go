package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Retries and lost answers: a non-2xx means nothing happened, and a retry gets the first answer.

// TestKilledConnectionsDuringCreatesAnswerTruthfully creates invitations, 12 at a time and
// without an Idempotency-Key (so the answer is all the portal has), while busy Postgres backends
// of both the worker and the API are terminated every few milliseconds. Every 201 names an
// invitation that exists; every other answer is a retry-safe 503 after which nothing exists for
// that address (no invitation, no seat, no email), even once every in-flight step has settled.
func TestKilledConnectionsDuringCreatesAnswerTruthfully(t *testing.T) {
	svc := newService(t, "pgtruth", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 100)
	type outcome struct {
		email string
		r     response
		err   error
	}
	var outcomes []outcome
	for round := range 3 {
		kWorker := startKiller(t, 20*time.Millisecond, "faults-pgtruth-worker")
		kAPI := startKiller(t, 5*time.Millisecond, "faults-pgtruth-api")
		batch := make([]outcome, 12)
		var wg sync.WaitGroup
		for i := range batch {
			batch[i].email = unique(fmt.Sprintf("Truth%d.%d", round, i))
			wg.Go(func() {
				batch[i].r, batch[i].err = c.call("POST", f.path("/invitations"), f.inviteBody(batch[i].email))
			})
		}
		wg.Wait()
		kWorker.finish()
		kAPI.finish()
		outcomes = append(outcomes, batch...)
	}
	// A create that answered 503 may still have steps in flight (its bounded create and its undo):
	// let them settle before judging.
	time.Sleep(15 * time.Second)
	created, refused := 0, 0
	for _, o := range outcomes {
		if o.err != nil {
			t.Errorf("create %s: transport error %v", o.email, o.err)
			continue
		}
		rows := sqlInt(t, `select count(*) from invitations where lower(email) = lower($1)`, o.email)
		switch {
		case o.r.Status == 201:
			created++
			var inv invitation
			o.r.decode(t, &inv)
			if rows != 1 || sqlInt(t, `select count(*) from invitations where id = $1`, inv.ID) != 1 {
				t.Errorf("create %s answered 201 with %s, but %d invitations exist for the address", o.email, inv.ID, rows)
			}
		case o.r.retrySafe():
			refused++
			if rows != 0 {
				t.Errorf("create %s answered %d %s, yet %d invitations exist for the address: a non-2xx must mean nothing happened",
					o.email, o.r.Status, o.r.code(), rows)
			}
			if n := emailsTo(o.email, ""); n != 0 {
				t.Errorf("create %s answered %d, yet %d emails went to the address", o.email, o.r.Status, n)
			}
		default:
			t.Errorf("create %s answered %d %s: want 201 or a retry-safe 503", o.email, o.r.Status, o.r.Body)
		}
	}
	s := seatsOf(t, f)
	if err := s.consistent(); err != nil {
		t.Fatal(err)
	}
	if s.Reserved != created {
		t.Errorf("%d seats reserved for %d created invitations", s.Reserved, created)
	}
	t.Logf("%d creates: %d answered 201, %d a retry-safe 503 that left nothing", len(outcomes), created, refused)
}

// TestRetriedAcceptAfterALostAnswer: the invitee's accept takes 3 s to provision (the test kit's
// slow worker) and their browser gives up after 1 s: the answer is lost. Sent again, the accept
// carries the same update ID (accept, generation 1) and gets the first accept's answer, 200 with
// the user's id, not 409; and the user, membership, seat and welcome email exist once.
func TestRetriedAcceptAfterALostAnswer(t *testing.T) {
	t.Parallel()
	svc := newService(t, "lostanswer", nil)
	svc.startSlowWorker(t, 3*time.Second, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Lost.Answer")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	body, _ := json.Marshal(acceptBody(token))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	req, _ := http.NewRequestWithContext(ctx, "POST", svc.url()+"/v1/invitations/accept", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	cancel()
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the first accept answered %d within 1 s; the test needs its answer lost", resp.StatusCode)
	}

	var first struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	r := svc.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(token))
	r.expect(t, 200).decode(t, &first)
	if first.Status != "accepted" || first.UserID == "" {
		t.Fatalf("the retried accept answered %s", r.Body)
	}
	got := f.invitation(t, c, inv.ID)
	if got.UserID == nil || *got.UserID != first.UserID {
		t.Fatalf("the invitation names user %v, the retried accept %s", got.UserID, first.UserID)
	}
	// Once more, now that the run has completed: still the first answer.
	var again struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	svc.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(token)).expect(t, 200).decode(t, &again)
	if again != first {
		t.Fatalf("the accept after the run completed answered %+v, want %+v", again, first)
	}
	checkProvisionedOnce(t, svc, f, inv.ID, email)
}
