package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Races. internal/testkit/e2e/races_test.go already covers 20 concurrent creates for 3 seats followed by
// 20 concurrent accepts, 20 concurrent creates of one person, and 20 under one Idempotency-Key;
// these add what it does not: every action and the expiry timer on one invitation at once, the
// seat constraint attacked in SQL and through renewals competing with creates, and 50 creates
// of one person mixing keyed and unkeyed requests.

// together runs the calls at once (released together) and returns their answers by index.
func together(t *testing.T, calls []func() (response, error)) []response {
	t.Helper()
	out := make([]response, len(calls))
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			<-start
			out[i], errs[i] = call()
		})
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

// TestRaceOneInvitation: on each of eight invitations, two accepts, two declines and two
// revokes are sent at once (on odd rounds the declines and revokes 150 ms after the accepts, so
// that the accepts, slower to start, win some), at a moment around its expiry (from 400 ms
// before to 200 ms after), so the expiry timer races them too. Each invitation ends with exactly
// one outcome: at most one kind of action succeeds (the two calls of one kind carry one update
// ID, so when that kind wins both get its answer, the same one), the status and the events agree
// with it, the rest answer 409 invalid_state or 410 invitation_expired, and the seat and the user
// exist only if it was accepted.
func TestRaceOneInvitation(t *testing.T) {
	t.Parallel()
	svc := newService(t, "raceone", map[string]string{"INVITATION_TTL": "4s", "INVITATION_REMINDER_BEFORE": "0s"}).startAll(t)
	c := svc.client()
	offsets := []time.Duration{-400, -250, -120, -60, -20, 0, 60, 200}
	outcomes := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, off := range offsets {
		wg.Go(func() {
			f := newFixture(t, c, 1)
			email := unique(fmt.Sprintf("Race.%d", i))
			inv := f.invite(t, c, email)
			token := tokenOf(t, *inv.InviteURL)
			time.Sleep(time.Until(inv.ExpiresAt.Add(off * time.Millisecond)))
			kinds := []string{"accept", "accept", "decline", "decline", "revoke", "revoke"}
			// An accept hashes the password first (about 100 ms): on odd rounds the others
			// start that much later, so that every action gets to win some rounds.
			var lag time.Duration
			if i%2 == 1 {
				lag = 150 * time.Millisecond
			}
			var calls []func() (response, error)
			for _, k := range kinds {
				switch k {
				case "accept":
					calls = append(calls, func() (response, error) {
						return svc.invitee().call("POST", "/v1/invitations/accept", acceptBody(token))
					})
				case "decline":
					calls = append(calls, func() (response, error) {
						time.Sleep(lag)
						return svc.invitee().call("POST", "/v1/invitations/decline", map[string]any{"token": token})
					})
				case "revoke":
					calls = append(calls, func() (response, error) {
						time.Sleep(lag)
						return c.call("POST", f.path("/invitations/"+inv.ID+"/revoke"), nil)
					})
				}
			}
			answers := together(t, calls)
			winners := map[string]int{}
			won := map[string]string{} // the winning answer's body, by kind
			for j, r := range answers {
				switch {
				case r.Status == 200:
					winners[kinds[j]]++
					if first, ok := won[kinds[j]]; ok && first != string(r.Body) {
						t.Errorf("offset %dms: the two %ss answered %s and %s; one update, one answer", off, kinds[j], first, r.Body)
					}
					won[kinds[j]] = string(r.Body)
				case r.Status == 409 && r.code() == "invalid_state", r.Status == 410 && r.code() == "invitation_expired" && kinds[j] != "revoke":
				default:
					t.Errorf("offset %dms: %s answered %d %s", off, kinds[j], r.Status, r.Body)
				}
			}
			// The expiry may come first; a revoke may then still close the expired invitation.
			var got invitation
			eventually(t, 15*time.Second, "a final status", func() bool {
				got = f.invitation(t, c, inv.ID)
				return got.Status != "pending"
			})
			outcome := got.Status
			if got.count("expired") == 1 && got.Status == "revoked" {
				outcome = "expired+revoked"
			}
			mu.Lock()
			outcomes[outcome]++
			mu.Unlock()
			t.Logf("offset %4dms lag %s: %s; answers %s", off, lag, outcome, statuses(answers))
			closing := got.count("accepted") + got.count("declined") + got.count("revoked") + got.count("expired")
			okEvents := closing == 1 || (outcome == "expired+revoked" && closing == 2)
			want := map[string]string{"accepted": "accept", "declined": "decline", "revoked": "revoke", "expired+revoked": "revoke"}[outcome]
			okWinners := len(winners) == 0 && outcome == "expired" ||
				len(winners) == 1 && winners[want] >= 1
			if !okEvents || !okWinners {
				t.Errorf("offset %dms: status %s, successful actions %v, events %+v: not exactly one outcome", off, got.Status, winners, got.Events)
			}
			wantProv := provisioned{}
			if got.Status == "accepted" {
				wantProv = provisioned{1, 1, 1}
			}
			if p := provisionedFor(t, f, email); p != wantProv {
				t.Errorf("offset %dms: %s, Postgres holds %+v", off, got.Status, p)
			}
			s := seatsOf(t, f)
			if err := s.consistent(); err != nil || s.Reserved != 0 {
				t.Errorf("offset %dms: %v (seats %+v)", off, err, s)
			}
		})
	}
	wg.Wait()
	t.Logf("outcomes: %v", outcomes)
}

// TestSeatConstraint attacks seats_not_oversubscribed directly in SQL: a write past the seat
// count fails on the constraint, and of ten concurrent transactions each taking one of three
// seats exactly three commit.
func TestSeatConstraint(t *testing.T) {
	t.Parallel()
	svc := newService(t, "seatsql", nil)
	svc.startAPI(t)
	api := svc.client()
	f := newFixture(t, api, 3)
	sub := uuid.MustParse(f.SubscriptionID)
	ctx := context.Background()
	for _, q := range []string{
		`update subscriptions set seats_reserved = seats + 1 where id = $1`,
		`update subscriptions set seats_used = seats, seats_reserved = 1 where id = $1`,
		`update subscriptions set seats = seats_used + seats_reserved - 1, seats_reserved = 1 where id = $1`,
	} {
		_, err := env.db.Exec(ctx, q, sub)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "seats_not_oversubscribed" {
			t.Fatalf("%s: %v; want a check violation of seats_not_oversubscribed", q, err)
		}
	}
	calls := make([]error, 10)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range calls {
		wg.Go(func() {
			<-start
			_, calls[i] = env.db.Exec(ctx, `update subscriptions set seats_reserved = seats_reserved + 1 where id = $1`, sub)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range calls {
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &pgErr) && pgErr.ConstraintName == "seats_not_oversubscribed":
		default:
			t.Fatalf("concurrent seat update: %v", err)
		}
	}
	var used, reserved int
	if err := env.db.QueryRow(ctx, `select seats_used, seats_reserved from subscriptions where id = $1`, sub).Scan(&used, &reserved); err != nil {
		t.Fatal(err)
	}
	if ok != 3 || used+reserved != 3 {
		t.Fatalf("%d of 10 concurrent seat updates committed, used %d + reserved %d; want exactly 3 of 3 seats", ok, used, reserved)
	}
	// Through the API the subscription now reads full, and a create is refused.
	if s := f.subscription(t, api); s.SeatsAvailable != 0 {
		t.Fatalf("subscription %+v", s)
	}
	_, _ = env.db.Exec(ctx, `update subscriptions set seats_reserved = 0 where id = $1`, sub)
}

// seatWatch samples a subscription's seats in SQL until stopped and keeps the highest
// used+reserved it saw.
type seatWatch struct {
	stop    chan struct{}
	done    chan struct{}
	worst   int
	samples int
	err     error
}

func watchSeats(f fixture) *seatWatch {
	w := &seatWatch{stop: make(chan struct{}), done: make(chan struct{})}
	sub := uuid.MustParse(f.SubscriptionID)
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			var used, reserved int
			if err := env.db.QueryRow(context.Background(), `select seats_used, seats_reserved from subscriptions where id = $1`, sub).
				Scan(&used, &reserved); err != nil {
				w.err = err
				return
			}
			w.worst = max(w.worst, used+reserved)
			w.samples++
		}
	}()
	return w
}

func (w *seatWatch) finish(t *testing.T, seats int) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	if w.worst > seats {
		t.Fatalf("the subscription held %d seats used+reserved of %d", w.worst, seats)
	}
	t.Logf("%d samples, at most %d of %d seats taken", w.samples, w.worst, seats)
}

// TestRaceSeatsRenewals: a subscription of 3 seats has 3 expired invitations. Their 3 renewals
// and 12 new invitations are sent at once: exactly 3 succeed in all (renewals take a seat again,
// like creates), the rest answer seats_exhausted, and used+reserved never exceeds 3 at any
// sample; the 3 survivors are then accepted concurrently (twice each) and end as 3 used seats.
func TestRaceSeatsRenewals(t *testing.T) {
	t.Parallel()
	const seats = 3
	short := newService(t, "raceseats-short", map[string]string{"INVITATION_TTL": "3s", "INVITATION_REMINDER_BEFORE": "0s"})
	long := newService(t, "raceseats-long", map[string]string{"TEMPORAL_TASK_QUEUE": short.taskQueue()})
	short.startWorker(t, nil)
	short.startAPI(t)
	long.startAPI(t)
	c := long.client()
	f := newFixture(t, c, seats)
	var expired []invitation
	for i := range seats {
		expired = append(expired, f.invite(t, short.client(), unique(fmt.Sprintf("Expired%d", i))))
	}
	eventually(t, 20*time.Second, "the invitations to expire", func() bool {
		for _, inv := range expired {
			if f.invitation(t, c, inv.ID).Status != "expired" {
				return false
			}
		}
		return true
	})
	watch := watchSeats(f)
	var calls []func() (response, error)
	for _, inv := range expired {
		calls = append(calls, func() (response, error) { return c.call("POST", f.path("/invitations/"+inv.ID+"/renew"), nil) })
	}
	for i := range 12 {
		email := unique(fmt.Sprintf("Newcomer%d", i))
		calls = append(calls, func() (response, error) { return c.call("POST", f.path("/invitations"), f.inviteBody(email)) })
	}
	answers := together(t, calls)
	var tokens []string
	for _, r := range answers {
		if r.Status == 200 || r.Status == 201 {
			var inv invitation
			r.decode(t, &inv)
			tokens = append(tokens, tokenOf(t, *inv.InviteURL))
			continue
		}
		r.expectProblem(t, 409, "seats_exhausted")
	}
	if len(tokens) != seats {
		t.Fatalf("%d renewals and creates succeeded for %d seats", len(tokens), seats)
	}
	var accepts []func() (response, error)
	both := append(tokens, tokens...)
	for _, tok := range both {
		accepts = append(accepts, func() (response, error) {
			return long.invitee().call("POST", "/v1/invitations/accept", acceptBody(tok))
		})
	}
	// The two accepts of one link carry one update ID: both get the one acceptance's answer.
	answered := map[string]string{}
	for i, r := range together(t, accepts) {
		switch {
		case r.Status == 200:
			if first, ok := answered[both[i]]; ok && first != string(r.Body) {
				t.Errorf("the two accepts of one link answered %s and %s", first, r.Body)
			}
			answered[both[i]] = string(r.Body)
		case r.Status == 409 && r.code() == "invalid_state", r.Status == 410 && r.code() == "invitation_expired":
		default:
			t.Errorf("accept answered %d %s", r.Status, r.Body)
		}
	}
	watch.finish(t, seats)
	s := seatsOf(t, f)
	if err := s.consistent(); err != nil {
		t.Fatal(err)
	}
	accepted := len(answered)
	if s.Used != accepted || s.Used+s.Reserved > seats {
		t.Fatalf("seats %+v after %d acceptances", s, accepted)
	}
	t.Logf("%d of %d accepted before their expiry", accepted, seats)
}

// TestRaceFiftyCreates: 50 concurrent creates of one person in one account, half under one
// Idempotency-Key and half without, give exactly one invitation: the 201s all name it, every
// other answer is duplicate_invitation naming it, one seat is held and one email sent.
func TestRaceFiftyCreates(t *testing.T) {
	t.Parallel()
	svc := newService(t, "race50", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 60)
	email := unique("Fifty.Times")
	key := "fifty-" + randomHex(6)
	var calls []func() (response, error)
	for i := range 50 {
		// The keyed requests are one request retried (same body); the others vary the case.
		e := email
		var hdr []string
		if i%2 == 0 {
			hdr = []string{"Idempotency-Key", key}
		} else if i%3 == 0 {
			e = strings.ToUpper(email)
		}
		calls = append(calls, func() (response, error) {
			return c.call("POST", f.path("/invitations"), f.inviteBody(e), hdr...)
		})
	}
	answers := together(t, calls)
	var id string
	created := 0
	for _, r := range answers {
		if r.Status == 201 {
			var inv invitation
			r.decode(t, &inv)
			if id != "" && inv.ID != id {
				t.Fatalf("two invitations created: %s and %s", id, inv.ID)
			}
			id = inv.ID
			created++
		}
	}
	if id == "" {
		t.Fatal("no invitation created")
	}
	for i, r := range answers {
		if r.Status == 201 {
			continue
		}
		p := r.expectProblem(t, 409, "duplicate_invitation")
		if p.InvitationID != id {
			t.Errorf("answer %d: duplicate_invitation names %q, want %s", i, p.InvitationID, id)
		}
	}
	t.Logf("%d answers 201 (one invitation), %d duplicate_invitation", created, 50-created)
	if n := sqlInt(t, `select count(*) from invitations where account_id = $1`, uuid.MustParse(f.AccountID)); n != 1 {
		t.Fatalf("%d invitations recorded, want 1", n)
	}
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	time.Sleep(time.Second)
	if n := emailsTo(email, "invited you"); n != 1 {
		t.Fatalf("%d invite emails, want 1", n)
	}
	if s := seatsOf(t, f); s.Reserved != 1 || s.consistent() != nil {
		t.Fatalf("seats %+v, want one reserved", s)
	}
}
