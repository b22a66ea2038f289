package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Concurrent requests: the seat count, the one-pending-invitation rule, idempotency and
// acceptance hold whatever the interleaving.

const storm = 20

// concurrently runs n calls at once (released together) and returns their answers by index.
// Transport errors fail the test from the test's goroutine.
func concurrently(t *testing.T, n int, call func(i int) (response, error)) []response {
	t.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = call(i)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if out[i].Status >= 500 {
			t.Errorf("call %d answered %d: %s", i, out[i].Status, out[i].Body)
		}
	}
	return out
}

// seatSampler reads a subscription's seats through the API and in SQL until stopped, and
// remembers the worst it saw.
type seatSampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	worst   int // max used+reserved
	problem string
}

func sampleSeats(f fixture) *seatSampler {
	s := &seatSampler{stop: make(chan struct{}), done: make(chan struct{})}
	subID := uuid.MustParse(f.SubscriptionID)
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			r, err := portal().call("GET", f.path("/subscriptions/"+f.SubscriptionID), nil)
			if err != nil || r.Status != 200 {
				s.problem = fmt.Sprintf("GET subscription: %v %d %s", err, r.Status, r.Body)
				return
			}
			var sub subscription
			if err := json.Unmarshal(r.Body, &sub); err != nil {
				s.problem = err.Error()
				return
			}
			if sub.SeatsUsed+sub.SeatsReserved+sub.SeatsAvailable != sub.Seats {
				s.problem = fmt.Sprintf("inconsistent counts %+v", sub)
			}
			s.worst = max(s.worst, sub.SeatsUsed+sub.SeatsReserved)
			var used, reserved int
			if err := stack.Store.Pool.QueryRow(context.Background(),
				`select seats_used, seats_reserved from subscriptions where id = $1`, subID).Scan(&used, &reserved); err != nil {
				s.problem = err.Error()
				return
			}
			s.worst = max(s.worst, used+reserved)
			s.samples++
		}
	}()
	return s
}

func (s *seatSampler) finish(t *testing.T, seats int) {
	t.Helper()
	close(s.stop)
	<-s.done
	if s.problem != "" {
		t.Fatalf("seat sampler: %s", s.problem)
	}
	if s.samples == 0 {
		t.Fatal("seat sampler took no sample")
	}
	if s.worst > seats {
		t.Fatalf("subscription showed %d seats used+reserved of %d", s.worst, seats)
	}
	t.Logf("%d seat samples, at most %d of %d seats taken", s.samples, s.worst, seats)
}

// TestRaceSeats: 20 concurrent invitations for 3 seats give exactly 3 invitations; then 20
// concurrent accepts of those 3 provision each exactly once; the subscription is never
// oversubscribed, and Postgres ends with 3 users, memberships and seats.
func TestRaceSeats(t *testing.T) {
	t.Parallel()
	const seats = 3
	f := newFixture(t, seats)
	emails := make([]string, storm)
	for i := range emails {
		emails[i] = unique(fmt.Sprintf("Racer%02d", i))
	}
	sampler := sampleSeats(f)

	created := concurrently(t, storm, func(i int) (response, error) {
		return portal().call("POST", f.path("/invitations"), f.inviteBody(emails[i]))
	})
	var invs []invitation
	for i, r := range created {
		if r.Status == 201 {
			var inv invitation
			r.decode(t, &inv)
			if !strings.EqualFold(inv.Email, emails[i]) || inv.Status != "pending" {
				t.Fatalf("call %d for %s created %+v", i, emails[i], inv)
			}
			invs = append(invs, inv)
			continue
		}
		r.expectProblem(t, 409, "seats_exhausted")
	}
	if len(invs) != seats {
		t.Fatalf("%d invitations created for %d seats", len(invs), seats)
	}
	if s := f.subscription(t); s.SeatsReserved != seats || s.SeatsUsed != 0 || s.SeatsAvailable != 0 {
		t.Fatalf("after the invitation storm, subscription %+v", s)
	}
	if l := f.list(t, ""); len(l.Items) != seats {
		t.Fatalf("%d invitations listed, want %d: refused creates must leave nothing", len(l.Items), seats)
	}

	// Several accepts per token, all at once.
	tokens := make([]string, seats)
	for i, inv := range invs {
		tokens[i] = tokenOf(t, *inv.InviteURL)
	}
	accepted := concurrently(t, storm, func(i int) (response, error) {
		return invitee().call("POST", "/v1/invitations/accept", map[string]any{
			"token": tokens[i%seats], "password": "Correct-Horse-42", "accept_terms": true,
		})
	})
	sampler.finish(t, seats)

	// The accepts of one link carry one update ID (accept, generation 1): however many arrive
	// at once, the invitation is accepted once and every one of them gets that accept's answer.
	userOf := make([]string, seats)
	for i, r := range accepted {
		k := i % seats
		r.expect(t, 200)
		var out struct {
			Status string `json:"status"`
			UserID string `json:"user_id"`
		}
		r.decode(t, &out)
		if out.Status != "accepted" || out.UserID == "" {
			t.Fatalf("accept %d answered %s", i, r.Body)
		}
		if userOf[k] != "" && userOf[k] != out.UserID {
			t.Fatalf("invitation %s accepted twice (users %s and %s)", invs[k].ID, userOf[k], out.UserID)
		}
		userOf[k] = out.UserID
	}
	for k, inv := range invs {
		if userOf[k] == "" {
			t.Fatalf("invitation %s was never accepted", inv.ID)
		}
		got := f.invitation(t, portal(), inv.ID)
		if got.Status != "accepted" || got.UserID == nil || *got.UserID != userOf[k] {
			t.Fatalf("invitation %+v, want accepted by %s", got, userOf[k])
		}
	}

	if s := f.subscription(t); s.SeatsUsed != seats || s.SeatsReserved != 0 || s.SeatsAvailable != 0 {
		t.Fatalf("after the accept storm, subscription %+v", s)
	}
	ctx := context.Background()
	db := stack.Store.Pool
	var used, reserved, users, members, seatRows int
	if err := db.QueryRow(ctx, `select seats_used, seats_reserved from subscriptions where id = $1`, uuid.MustParse(f.SubscriptionID)).
		Scan(&used, &reserved); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from users where lower(email) = any($1)`, emails).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from memberships where account_id = $1`, uuid.MustParse(f.AccountID)).Scan(&members); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from seats where subscription_id = $1`, uuid.MustParse(f.SubscriptionID)).Scan(&seatRows); err != nil {
		t.Fatal(err)
	}
	if used != seats || reserved != 0 || users != seats || members != seats || seatRows != seats {
		t.Fatalf("Postgres holds used=%d reserved=%d users=%d memberships=%d seats=%d, want %d used and %d of each",
			used, reserved, users, members, seatRows, seats, seats)
	}
	active := 0
	for _, u := range f.users(t) {
		if u.State == "active" {
			active++
		}
	}
	if active != seats {
		t.Fatalf("%d active users listed, want %d", active, seats)
	}
}

// TestRaceDuplicateEmail: 20 concurrent invitations of one person to one account give one
// invitation; every other answer is duplicate_invitation naming it.
func TestRaceDuplicateEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, storm+5)
	email := unique("Same.Person")
	before := stack.Store.Pool.Stat()
	began := time.Now()
	answers := concurrently(t, storm, func(i int) (response, error) {
		e := email
		if i%2 == 1 {
			e = strings.ToUpper(email) // the same address
		}
		return portal().call("POST", f.path("/invitations"), f.inviteBody(e))
	})
	elapsed := time.Since(began)
	after := stack.Store.Pool.Stat()
	t.Logf("storm took %s; pool max %d conns, acquires canceled during it: %d, waited for a free conn: %d",
		elapsed, after.MaxConns(), after.CanceledAcquireCount()-before.CanceledAcquireCount(),
		after.EmptyAcquireCount()-before.EmptyAcquireCount())
	// A refusal is a quick answer: the requests contend for one row, nothing needs seconds.
	if elapsed > 10*time.Second {
		t.Errorf("%d concurrent invitations of one person took %s", storm, elapsed)
	}
	var winner string
	for _, r := range answers {
		if r.Status == 201 {
			var inv invitation
			r.decode(t, &inv)
			if winner != "" {
				t.Fatalf("two invitations created for %s: %s and %s", email, winner, inv.ID)
			}
			winner = inv.ID
		}
	}
	if winner == "" {
		t.Fatal("no invitation created")
	}
	for i, r := range answers {
		if r.Status == 201 {
			continue
		}
		p := r.expectProblem(t, 409, "duplicate_invitation")
		if !strings.Contains(p.Detail, winner) || p.InvitationID != winner {
			t.Errorf("answer %d: duplicate_invitation %+v does not name %s", i, p, winner)
		}
	}
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v, want one seat held", s)
	}
	var n int
	if err := stack.Store.Pool.QueryRow(context.Background(),
		`select count(*) from invitations where account_id = $1 and lower(email) = lower($2)`, uuid.MustParse(f.AccountID), email).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d invitations recorded for %s (err %v), want 1", n, email, err)
	}
}

// TestRaceIdempotencyKey: 20 concurrent creates with one Idempotency-Key and body all answer
// 201 with the same invitation, and one email is sent.
func TestRaceIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, storm+5)
	email := unique("Retry.Storm")
	key := "storm-" + randomHex(8)
	answers := concurrently(t, storm, func(int) (response, error) {
		return portal().call("POST", f.path("/invitations"), f.inviteBody(email), "Idempotency-Key", key)
	})
	var id string
	for i, r := range answers {
		r.expect(t, 201)
		var inv invitation
		r.decode(t, &inv)
		if id == "" {
			id = inv.ID
		}
		if inv.ID != id || inv.Status != "pending" {
			t.Fatalf("answer %d: %+v, want invitation %s", i, inv, id)
		}
	}
	waitEmail(t, email, "invited you", 1)
	eventually(t, 10*time.Second, "the invite email to be recorded", func() bool {
		return hasEvents(f.invitation(t, portal(), id), "email_sent")
	})
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v, want one seat held", s)
	}
	if l := f.list(t, ""); len(l.Items) != 1 || l.Items[0].ID != id || l.Items[0].Sends != 1 {
		t.Fatalf("invitations %+v, want only %s, sent once", l.Items, id)
	}
	if got := stack.Resend.EmailsTo(email); len(got) != 1 {
		t.Fatalf("%d emails to %s, want 1", len(got), email)
	}
}

// TestDuplicateUnderPoolPressure: when the service's Postgres pool is busy (here: all but one
// of its connections held, as under load), refusing a duplicate invitation must still work: a
// unit of work may wait for a connection but must never need two at once. The request is the
// replay of a refused request under its Idempotency-Key, which skips the API's pre-checks and
// so meets the database's one-pending-invitation rule inside the create transaction.
// Not parallel: it starves the shared pool on purpose.
func TestDuplicateUnderPoolPressure(t *testing.T) {
	f := newFixture(t, 5)
	email := unique("Pressure")
	first := f.createInvitation(t, portal(), email)
	key := "pressure-" + randomHex(8)
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(email), "Idempotency-Key", key).
		expectProblem(t, 409, "duplicate_invitation")

	pool := stack.Store.Pool
	var held []*pgxpool.Conn
	release := func() {
		for _, c := range held {
			c.Release()
		}
		held = nil
	}
	defer release()
	for range int(pool.Stat().MaxConns()) - 1 {
		c, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	began := time.Now()
	r := portal().do(t, "POST", f.path("/invitations"), f.inviteBody(email), "Idempotency-Key", key)
	elapsed := time.Since(began)
	release()
	if elapsed > 5*time.Second {
		t.Errorf("with one free pool connection, the refusal took %s", elapsed)
	}
	p := r.expectProblem(t, 409, "duplicate_invitation")
	if !strings.Contains(p.Detail, first.ID) {
		t.Fatalf("duplicate_invitation detail %q does not name %s", p.Detail, first.ID)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v, want one seat held", s)
	}
}

// TestRaceAcceptDeclineRevoke: for each of several invitations, the invitee's accept and
// decline and the administrator's revoke arrive at once. Exactly one of them wins; the others
// are refused with invalid_state; the invitation ends in the winner's status, and the seats
// add up (one used per acceptance, none held).
func TestRaceAcceptDeclineRevoke(t *testing.T) {
	t.Parallel()
	const n = 6
	// Existing users, so accept hashes no new password (it verifies theirs) and races on equal terms.
	home, f := newFixture(t, n), newFixture(t, n)
	invs := make([]invitation, n)
	for i := range invs {
		userID := acceptNewUser(t, home, unique(fmt.Sprintf("Contested%d", i)))
		portal().do(t, "POST", f.path("/invitations"), map[string]any{
			"user_id": userID, "subscription_id": f.SubscriptionID, "role": "viewer",
		}).expect(t, 201).decode(t, &invs[i])
	}
	tokens := make([]string, n)
	for i, inv := range invs {
		tokens[i] = tokenOf(t, *inv.InviteURL)
	}
	answers := concurrently(t, 3*n, func(i int) (response, error) {
		inv, token := invs[i/3], tokens[i/3]
		switch i % 3 {
		case 0:
			return invitee().call("POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true})
		case 1:
			return invitee().call("POST", "/v1/invitations/decline", map[string]any{"token": token})
		default:
			return portal().call("POST", f.path("/invitations/"+inv.ID+"/revoke"), nil)
		}
	})
	accepted := 0
	for k, inv := range invs {
		winner := ""
		for j, action := range []string{"accepted", "declined", "revoked"} {
			r := answers[3*k+j]
			if r.Status == 200 {
				if winner != "" {
					t.Fatalf("invitation %s: both %s and %s succeeded", inv.ID, winner, action)
				}
				winner = action
				continue
			}
			r.expectProblem(t, 409, "invalid_state")
		}
		if winner == "" {
			t.Fatalf("invitation %s: every action was refused", inv.ID)
		}
		if got := f.invitation(t, portal(), inv.ID); got.Status != winner {
			t.Fatalf("invitation %s is %s, but %s won", inv.ID, got.Status, winner)
		}
		if winner == "accepted" {
			accepted++
		}
	}
	if s := f.subscription(t); s.SeatsUsed != accepted || s.SeatsReserved != 0 || s.SeatsAvailable != n-accepted {
		t.Fatalf("subscription %+v after %d acceptances", s, accepted)
	}
	var seatRows int
	if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from seats where subscription_id = $1`,
		uuid.MustParse(f.SubscriptionID)).Scan(&seatRows); err != nil || seatRows != accepted {
		t.Fatalf("%d seat rows (err %v), want %d", seatRows, err, accepted)
	}
	t.Logf("%d of %d invitations accepted, the rest declined or revoked", accepted, n)
}
