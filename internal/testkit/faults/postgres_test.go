package faults

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
)

// killer terminates, from an admin connection, Postgres backends of the test database that
// serve the given application names while they run a query or sit in a transaction: the
// connections of a service's processes in the middle of their work. Every interval it kills one
// such backend, picked at random, if there is one.
type killer struct {
	stop   chan struct{}
	done   chan struct{}
	killed sync.Map // application_name -> *atomic.Int64
	err    error
}

func startKiller(t *testing.T, interval time.Duration, appNames ...string) *killer {
	t.Helper()
	u, err := url.Parse(env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	k := &killer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-tick.C:
			}
			// The victim is chosen in a subquery: pg_terminate_backend in the select list of the
			// sorting query itself would run on every candidate before the limit.
			rows, err := env.admin.Query(context.Background(), `
				select application_name, pg_terminate_backend(pid) from (
					select pid, application_name from pg_stat_activity
					where datname = $1 and application_name = any($2) and state <> 'idle' and pid <> pg_backend_pid()
					order by random() limit 1) victim`,
				dbName, appNames)
			if err != nil {
				k.err = err
				return
			}
			for rows.Next() {
				var app string
				var ok bool
				if err := rows.Scan(&app, &ok); err == nil && ok {
					n, _ := k.killed.LoadOrStore(app, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
			rows.Close()
		}
	}()
	t.Cleanup(k.finish)
	return k
}

// finish stops the killer; it can be called more than once.
func (k *killer) finish() {
	if k.stop == nil {
		return // never started
	}
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
}

// count returns how many backends of app were terminated.
func (k *killer) count(app string) int64 {
	n, ok := k.killed.Load(app)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// retrying calls the API until it answers something other than a retry-safe 503 (or a
// connection error), for up to a minute, and returns the final answer and how many 503s it met.
func retrying(t *testing.T, call func() (response, error)) (response, int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	unavailable := 0
	for {
		r, err := call()
		switch {
		case err == nil && !r.retrySafe():
			return r, unavailable
		case err == nil:
			unavailable++
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after a minute of retries: %v %d %s", err, r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPostgresConnectionsKilled terminates (pg_terminate_backend, from an admin connection)
// a busy Postgres backend of the service's worker every 20 ms, and in a second phase one of its
// API's every 5 ms too, while 28 invitations are created, emailed, resent, accepted, declined
// and revoked. The workflows' activities retry and succeed; the API answers retry-safe 503s at
// worst, never a 500, and the clients' retries succeed; nothing is doubled: one invitation, one
// created event, one email and one email_sent event per send, one user, membership, seat and
// welcome email per acceptance, seat counters equal to the rows.
//
// It runs alone, before the suite's parallel tests: the killer's 20 ms period is measured
// against how long a transaction stays open, and with the other tests' processes on the same
// two cores every transaction stretches until the test measures the machine's load rather
// than the service.
func TestPostgresConnectionsKilled(t *testing.T) {
	svc := newService(t, "pgkill", map[string]string{"RESEND_MIN_INTERVAL": "0s"}).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 40)
	workerApp, apiApp := "faults-pgkill-worker", "faults-pgkill-api"

	type person struct {
		email string
		inv   invitation
		fate  string // accept, decline, revoke, resend, keep
		// retried says the action met a 503 and was retried: a resend may then have gone out
		// twice (resend has no idempotency key; RESEND_MIN_INTERVAL is what stops a double
		// click in service, and it is 0 here).
		retried bool
	}
	fates := []string{"accept", "accept", "accept", "decline", "revoke", "resend", "keep"}
	var people []*person
	for phase := range 2 {
		// Phase 1 kills the worker's busy connections; phase 2 the API's too, with a killer of
		// its own polling faster (the API's queries are short, so it is rarely caught busy).
		k := startKiller(t, 20*time.Millisecond, workerApp)
		kAPI := &killer{}
		if phase == 1 {
			kAPI = startKiller(t, 5*time.Millisecond, apiApp)
		}
		var group []*person
		for i := range 2 * len(fates) {
			fate := fates[i%len(fates)]
			group = append(group, &person{email: unique(fmt.Sprintf("Pg%d.%d.%s", phase, i, fate)), fate: fate})
		}
		var wg sync.WaitGroup
		var fivehundreds atomic.Int32
		for _, p := range group {
			wg.Go(func() {
				// Create under an Idempotency-Key, so that a retry after a 503 cannot double it.
				key := "pg-" + p.email
				r, n := retrying(t, func() (response, error) {
					return c.call("POST", f.path("/invitations"), f.inviteBody(p.email), "Idempotency-Key", key)
				})
				if r.Status != 201 {
					if r.Status >= 500 {
						fivehundreds.Add(1)
					}
					t.Errorf("create %s: %d %s after %d 503s", p.email, r.Status, r.Body, n)
					return
				}
				r.decode(t, &p.inv)
				eventually(t, 60*time.Second, "the invite email to "+p.email, func() bool { return emailsTo(p.email, "invited you") >= 1 })
				var path string
				var body any
				switch p.fate {
				case "accept":
					path, body = "/v1/invitations/accept", acceptBody(tokenOf(t, *p.inv.InviteURL))
				case "decline":
					path, body = "/v1/invitations/decline", map[string]any{"token": tokenOf(t, *p.inv.InviteURL)}
				case "revoke":
					path = f.path("/invitations/" + p.inv.ID + "/revoke")
				case "resend":
					path = f.path("/invitations/" + p.inv.ID + "/resend")
				default:
					return
				}
				r, n = retrying(t, func() (response, error) { return c.call("POST", path, body) })
				p.retried = n > 0
				// A retry after a 503 may find the first attempt done: 409 invalid_state.
				if r.Status != 200 && !(n > 0 && r.Status == 409 && p.fate != "resend") {
					if r.Status >= 500 {
						fivehundreds.Add(1)
					}
					t.Errorf("%s %s: %d %s after %d 503s", p.fate, p.email, r.Status, r.Body, n)
				}
				// The portal reads the outcome, through the same faults.
				for range 5 {
					r, _ = retrying(t, func() (response, error) { return c.call("GET", f.path("/invitations/"+p.inv.ID), nil) })
					if r.Status != 200 {
						if r.Status >= 500 {
							fivehundreds.Add(1)
						}
						t.Errorf("GET invitation of %s: %d %s", p.email, r.Status, r.Body)
					}
				}
			})
		}
		wg.Wait()
		k.finish()
		if phase == 1 {
			kAPI.finish()
		}
		if k.err != nil || kAPI.err != nil {
			t.Fatalf("killer: %v %v", k.err, kAPI.err)
		}
		t.Logf("phase %d: terminated %d worker and %d API backends mid-work; %d answers were 5xx other than 503",
			phase+1, k.count(workerApp), kAPI.count(apiApp), fivehundreds.Load())
		if k.count(workerApp) == 0 {
			t.Errorf("phase %d terminated no worker backend: the test proved nothing", phase+1)
		}
		// The API's side is certain in TestAPIConnectionKilledAnswers503; here it is a bonus.
		people = append(people, group...)
	}

	// Everything settles, and nothing is doubled.
	want := map[string]string{"accept": "accepted", "decline": "declined", "revoke": "revoked", "resend": "pending", "keep": "pending"}
	retried := 0
	for _, p := range people {
		if p.inv.ID == "" {
			continue // its create failed, already reported
		}
		eventually(t, 60*time.Second, p.email+" to be "+want[p.fate], func() bool {
			return f.invitation(t, c, p.inv.ID).Status == want[p.fate]
		})
		sends := 1
		if p.fate == "resend" {
			sends = 2
		}
		inv := f.invitation(t, c, p.inv.ID)
		if p.retried && inv.Sends > sends {
			t.Logf("%s: a resend answered 503 and its retry sent again: %d sends", p.email, inv.Sends)
			sends = inv.Sends
		}
		waitEmails(t, p.email, "invited you", sends, 60*time.Second)
		if !within(60*time.Second, func() bool {
			return sqlInt(t, `select count(*) from emails where invitation_id = $1 and kind = 'invite' and status = 'sent'`,
				uuid.MustParse(p.inv.ID)) == sends
		}) {
			t.Errorf("%s (%s): %d invite emails delivered, but the emails table holds %s",
				p.email, f.invitation(t, c, p.inv.ID).Status, emailsTo(p.email, "invited you"), emailRows(t, p.inv.ID))
		}
		inv = f.invitation(t, c, p.inv.ID)
		if n := sqlInt(t, `select count(*) from invitations where lower(email) = lower($1)`, p.email); n != 1 {
			t.Errorf("%d invitations for %s, want 1", n, p.email)
		}
		if inv.count("created") != 1 || inv.Sends != sends || inv.countDetail("email_sent", "invite ") != sends {
			t.Errorf("invitation of %s: sends %d, events %+v; want one created event and %d sends, each sent once", p.email, inv.Sends, inv.Events, sends)
		}
		if n := emailsTo(p.email, "invited you"); n != sends {
			t.Errorf("%d invite emails delivered to %s, want %d", n, p.email, sends)
		}
		wantProv := provisioned{}
		if p.fate == "accept" {
			wantProv = provisioned{1, 1, 1}
			if inv.count("accepted") != 1 {
				t.Errorf("invitation of %s has %d accepted events", p.email, inv.count("accepted"))
			}
			waitEmails(t, p.email, "Welcome", 1, 60*time.Second)
			if n := emailsTo(p.email, "Welcome"); n != 1 {
				t.Errorf("%d welcome emails to %s", n, p.email)
			}
		}
		if got := provisionedFor(t, f, p.email); got != wantProv {
			t.Errorf("Postgres holds %+v for %s, want %+v", got, p.email, wantProv)
		}
		for _, r := range runs(t, env.tc, wfID(p.inv.ID)) {
			for _, typ := range []string{"CreateInvitation", "SendEmail", "ProvisionUser", "CloseInvitation"} {
				for _, a := range activityRuns(r.Events, typ) {
					if a.Attempt > 1 {
						retried++
					}
				}
			}
		}
	}
	t.Logf("%d activities needed more than one attempt", retried)
	if retried == 0 {
		t.Error("no activity was retried: the terminations never hit one")
	}
	s := seatsOf(t, f)
	if err := s.consistent(); err != nil {
		t.Fatal(err)
	}
	wantUsed, wantReserved := 0, 0
	for _, p := range people {
		switch {
		case p.inv.ID == "":
		case p.fate == "accept":
			wantUsed++
		case p.fate == "resend" || p.fate == "keep":
			wantReserved++
		}
	}
	if s.Used != wantUsed || s.Reserved != wantReserved {
		t.Fatalf("seats %+v: want %d used (accepted) and %d reserved (pending)", s, wantUsed, wantReserved)
	}
}

// within polls cond every 100 ms for up to timeout and reports whether it came to hold.
func within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// emailRows describes the emails recorded for an invitation.
func emailRows(t *testing.T, id string) string {
	t.Helper()
	rows, err := env.db.Query(context.Background(), `select idempotency_key, status, error from emails where invitation_id = $1 order by created_at`, uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var key, status, msg string
		if err := rows.Scan(&key, &status, &msg); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "[%s %s %q] ", key[strings.LastIndex(key, "-g"):], status, msg)
	}
	return b.String()
}

// TestAPIConnectionKilledAnswers503: the API's own Postgres connection is terminated while it
// serves a request (held on a row lock, so the termination is certain to land mid-query). The
// API must answer a retry-safe 503, as for any other lost dependency, and the retried request
// must succeed; a 500 would tell the portal that retrying is pointless.
func TestAPIConnectionKilledAnswers503(t *testing.T) {
	t.Parallel()
	svc := newService(t, "apiconnkill", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	dbName := strings.TrimPrefix(mustURL(t, env.dbURL).Path, "/")
	app := "faults-" + svc.name + "-api"

	// An uncommitted claim of the same Idempotency-Key makes the API's claim wait on its lock.
	key := "held-" + randomHex(6)
	tx, err := env.db.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `insert into idempotency_keys (account_id, key, request_hash, invitation_id)
		values ($1, $2, '\x00', $3)`, uuid.MustParse(f.AccountID), key, uuid.New()); err != nil {
		t.Fatal(err)
	}
	email := unique("Conn.Killed")
	answer := make(chan acceptAnswer, 1)
	go func() {
		r, err := c.call("POST", f.path("/invitations"), f.inviteBody(email), "Idempotency-Key", key)
		answer <- acceptAnswer{r: r, err: err}
	}()
	var killed bool
	eventually(t, 20*time.Second, "the API's query to wait on the lock, then its termination", func() bool {
		err := env.admin.QueryRow(context.Background(), `
			select coalesce(bool_or(pg_terminate_backend(pid)), false) from pg_stat_activity
			where datname = $1 and application_name = $2 and wait_event_type = 'Lock'`, dbName, app).Scan(&killed)
		return err == nil && killed
	})
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := <-answer
	if got.err != nil {
		t.Fatal(got.err)
	}
	if !got.r.retrySafe() {
		t.Errorf("a request whose Postgres connection was terminated answered %d %s; want 503 unavailable with Retry-After",
			got.r.Status, got.r.Body)
	}
	c.do(t, "POST", f.path("/invitations"), f.inviteBody(email), "Idempotency-Key", key).expect(t, 201)
	if n := sqlInt(t, `select count(*) from invitations where lower(email) = lower($1)`, email); n != 1 {
		t.Fatalf("%d invitations for %s, want 1", n, email)
	}
}

// TestEmailRecordedWhenFinishFails: the invite email reaches Resend, then the worker's write
// that records it as sent fails once (a trigger on the test database refuses it, as a lost
// connection would), and the invitee declines before the email activity's retry. The email
// went out, exactly once; the emails table and the invitation's story must say so.
func TestEmailRecordedWhenFinishFails(t *testing.T) {
	t.Parallel()
	svc := newService(t, "finishfail", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := "finish.fails+" + randomHex(4) + "@example.test"
	seq := "faults_finish_fail_" + randomHex(4)
	fn := "faults_finish_fail_fn_" + randomHex(4)
	ctx := context.Background()
	for _, q := range []string{
		`create sequence ` + seq,
		`create function ` + fn + `() returns trigger language plpgsql as $$
		begin
			if new.status = 'sent' and new.recipient = '` + email + `' and nextval('` + seq + `') = 1 then
				raise exception 'injected: connection lost while recording the email' using errcode = '08006';
			end if;
			return new;
		end $$`,
		`create trigger ` + fn + ` before update on emails for each row execute function ` + fn + `()`,
	} {
		if _, err := env.db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = env.db.Exec(ctx, `drop trigger `+fn+` on emails`)
		_, _ = env.db.Exec(ctx, `drop function `+fn+`()`)
		_, _ = env.db.Exec(ctx, `drop sequence `+seq)
	})

	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	svc.invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": tokenOf(t, *inv.InviteURL)}).expect(t, 200)
	eventually(t, 30*time.Second, "the workflow to close", func() bool {
		return describe(t, env.tc, wfID(inv.ID)).GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	time.Sleep(3 * time.Second) // past the email activity's first retry (2 s)
	if n := emailsTo(email, "invited you"); n != 1 {
		t.Fatalf("%d invite emails delivered, want 1", n)
	}
	got := f.invitation(t, c, inv.ID)
	if n := sqlInt(t, `select count(*) from emails where invitation_id = $1 and kind = 'invite' and status = 'sent'`, uuid.MustParse(inv.ID)); n != 1 ||
		got.countDetail("email_sent", "invite ") != 1 {
		t.Fatalf("the delivered invite email is recorded as %s, and the invitation's story has %d invite email_sent events; want sent and 1",
			emailRows(t, inv.ID), got.countDetail("email_sent", "invite "))
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
