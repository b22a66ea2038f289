package faults

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// TestTemporalRestart stops the Temporal dev server (its own, on a SQLite file) with
// invitations pending, keeps it down past one invitation's expiry, and starts it again on the
// same file and ports. The worker and the API ride it out and reconnect by themselves; every
// invitation survives; the one whose expiry fell in the outage expires as soon as the server is
// back, the other expires on time after the restart; an accept sent during the outage answers
// 200 or a retry-safe 503 and succeeds on retry; a create sent during the outage answers 503 and
// its retry under the same Idempotency-Key creates it once.
func TestTemporalRestart(t *testing.T) {
	t.Parallel()
	need(t)
	opts := devstack.TemporalOptions{
		Binary:  env.cliBin,
		DBFile:  filepath.Join(t.TempDir(), "temporal.db"),
		LogFile: filepath.Join(env.artifacts, "TestTemporalRestart-temporal-1.log"),
	}
	for _, p := range []*int{&opts.Port, &opts.HTTPPort, &opts.MetricsPort} {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*p = port
	}
	server, err := devstack.StartTemporal(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop() })
	tc, err := dialTemporal(t.Context(), server.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)

	// Two APIs on one worker: invitations from `short` expire 8 s after creation, from `long` 45 s.
	short := newService(t, "restart-short", map[string]string{
		"TEMPORAL_ADDRESS": server.Address(), "INVITATION_TTL": "8s", "INVITATION_REMINDER_BEFORE": "0s",
	})
	long := newService(t, "restart-long", map[string]string{
		"TEMPORAL_ADDRESS": server.Address(), "INVITATION_TTL": "45s", "INVITATION_REMINDER_BEFORE": "0s",
		"TEMPORAL_TASK_QUEUE": short.taskQueue(),
	})
	worker := short.startWorker(t, nil)
	shortAPI := short.startAPI(t)
	longAPI := long.startAPI(t)
	f := newFixture(t, long.client(), 5)

	emailA, emailB, emailC, emailD := unique("Outage.A"), unique("Outage.B"), unique("Outage.C"), unique("Outage.D")
	a := f.invite(t, short.client(), emailA) // expires during the outage
	b := f.invite(t, long.client(), emailB)  // expires after the restart
	cInv := f.invite(t, long.client(), emailC)
	for _, addr := range []string{emailA, emailB, emailC} {
		waitEmails(t, addr, "invited you", 1, 30*time.Second)
	}

	if err := server.Stop(); err != nil {
		t.Fatalf("stopping the dev server: %v", err)
	}
	stoppedAt := time.Now()
	t.Logf("dev server stopped %s before A's expiry", time.Until(a.ExpiresAt).Round(100*time.Millisecond))

	// During the outage: readiness says so, reads from Postgres still work, an accept and a
	// create wait for Temporal and answer 200/201 or a retry-safe 503.
	ready, err := long.client().call("GET", "/readyz", nil)
	if err != nil || ready.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %v %d %s; want 503", err, ready.Status, ready.Body)
	}
	if got := f.invitation(t, long.client(), b.ID); got.Status != "pending" {
		t.Errorf("invitation B reads %s during the outage", got.Status)
	}
	acceptC := acceptInBackground(long.invitee(), tokenOf(t, *cInv.InviteURL))
	createKey := "outage-" + randomHex(6)
	createD := make(chan acceptAnswer, 1)
	go func() {
		r, err := long.client().call("POST", f.path("/invitations"), f.inviteBody(emailD), "Idempotency-Key", createKey)
		createD <- acceptAnswer{r: r, err: err, at: time.Now()}
	}()

	// Down past A's expiry, then up again on the same file and ports.
	time.Sleep(time.Until(a.ExpiresAt.Add(4 * time.Second)))
	opts.LogFile = filepath.Join(env.artifacts, "TestTemporalRestart-temporal-2.log")
	server, err = devstack.StartTemporal(t.Context(), opts)
	if err != nil {
		t.Fatalf("restarting the dev server on its file: %v", err)
	}
	t.Cleanup(func() { _ = server.Stop() })
	restartedAt := time.Now()
	t.Logf("dev server down for %s", restartedAt.Sub(stoppedAt).Round(100*time.Millisecond))
	eventually(t, 30*time.Second, "the API to be ready again", func() bool {
		r, err := long.client().call("GET", "/readyz", nil)
		return err == nil && r.Status == 200
	})

	// A expired as soon as the server was back, B on time.
	eventually(t, 30*time.Second, "A to expire after the restart", func() bool {
		return f.invitation(t, long.client(), a.ID).Status == "expired"
	})
	checkExpiredAt(t, f, long.client(), a, a.ExpiresAt, restartedAt.Add(20*time.Second))

	// C: accepted, once.
	answers := settleAccept(t, long.invitee(), tokenOf(t, *cInv.InviteURL), <-acceptC, 60*time.Second)
	t.Logf("accept during the outage: %s", statuses(answers))
	checkProvisionedOnce(t, long, f, cInv.ID, emailC)

	// D: created once, by the outage's request or its retry.
	d := <-createD
	if d.err != nil {
		t.Fatalf("create during the outage: %v", d.err)
	}
	t.Logf("create during the outage answered %d %s", d.r.Status, d.r.code())
	if d.r.Status != 201 {
		if !d.r.retrySafe() {
			t.Fatalf("create during the outage answered %d %s; want 201 or a retry-safe 503", d.r.Status, d.r.Body)
		}
		long.client().do(t, "POST", f.path("/invitations"), f.inviteBody(emailD), "Idempotency-Key", createKey).expect(t, 201)
	}
	waitEmails(t, emailD, "invited you", 1, 30*time.Second)
	if n := sqlInt(t, `select count(*) from invitations where lower(email) = lower($1)`, emailD); n != 1 {
		t.Fatalf("%d invitations for %s, want 1", n, emailD)
	}

	// B expires on time, after the restart.
	eventually(t, time.Until(b.ExpiresAt)+20*time.Second, "B to expire", func() bool {
		return f.invitation(t, long.client(), b.ID).Status == "expired"
	})
	checkExpiredAt(t, f, long.client(), b, b.ExpiresAt, b.ExpiresAt.Add(10*time.Second))
	long.invitee().do(t, "GET", "/v1/invitations/preview?token="+tokenOf(t, *b.InviteURL), nil).expectProblem(t, 410, "invitation_expired")

	// Every workflow survived and ended in the state Postgres shows (an expired invitation's
	// run completes with its expiry, an accepted one's with the accept).
	for id, want := range map[string]contract.Status{a.ID: contract.StatusExpired, b.ID: contract.StatusExpired, cInv.ID: contract.StatusAccepted} {
		// The row is closed first, then the run completes once its emails and handlers settle.
		eventually(t, 10*time.Second, "the run of "+id+" to complete", func() bool {
			return describe(t, tc, wfID(id)).GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		})
		eventually(t, 10*time.Second, "search attribute of "+id, func() bool {
			return searchKeyword(t, tc, wfID(id), contract.SearchStatus) == string(want)
		})
	}
	if err := seatsOf(t, f).consistent(); err != nil {
		t.Fatal(err)
	}
	if s := seatsOf(t, f); s.Used != 1 || s.Reserved != 1 {
		t.Fatalf("seats %+v: want C's used seat and D's reserved one", s)
	}
	// The processes rode the outage out.
	for _, p := range []*proc{worker, shortAPI, longAPI} {
		select {
		case <-p.Done():
			t.Errorf("%s exited during the outage: %v\n%s", p.name, p.Wait(), p.logTail())
		default:
		}
	}
}

// checkExpiredAt checks that inv's expiry was recorded once, no earlier than its expires_at and
// no later than latest, and that its seat went back.
func checkExpiredAt(t *testing.T, f fixture, c apiClient, inv invitation, due, latest time.Time) {
	t.Helper()
	got := f.invitation(t, c, inv.ID)
	if got.count("expired") != 1 {
		t.Fatalf("invitation %s has %d expired events, want 1: %+v", inv.ID, got.count("expired"), got.Events)
	}
	for _, e := range got.Events {
		if e.Type != "expired" {
			continue
		}
		// Postgres' clock and the workflow's timer: allow a little skew on the early side.
		if e.At.Before(due.Add(-500*time.Millisecond)) || e.At.After(latest) {
			t.Fatalf("invitation %s expired at %s; due %s, latest acceptable %s", inv.ID, e.At, due, latest)
		}
		t.Logf("invitation %s expired %s after its expires_at", inv.ID, e.At.Sub(due).Round(10*time.Millisecond))
	}
}
