package faults

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// batch is the API's bulk batch, as the portal polls it.
type batch struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Total     int    `json:"total"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Items     []struct {
		Index        int     `json:"index"`
		Status       string  `json:"status"`
		InvitationID *string `json:"invitation_id"`
		Error        *struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"error"`
	} `json:"items"`
}

// TestBulkBatchOfAThousandSurvivesAWorkerKill: a batch of 1000 rows into a subscription of
// 600 seats, with 50 rows repeating earlier people and 20 invalid ones, shuffled. The worker is
// SIGKILLed mid-batch and a new one takes over. Meanwhile another account invites one person,
// whose email must not wait behind the batch's (4 emails a second, so the batch's 600 invites
// queue for minutes). The batch completes with exactly 600 created
// (the first 600 distinct valid people in row order), every other row failed with its reason,
// no row created twice, no seat oversubscribed, and one invite email per created row.
func TestBulkBatchOfAThousandSurvivesAWorkerKill(t *testing.T) {
	t.Parallel()
	svc := newService(t, "bulk", map[string]string{"EMAIL_RATE_PER_SECOND": "4"})
	first := svc.startWorker(t, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 600)
	other := newFixture(t, c, 2)

	// 930 distinct people, 50 repeats of earlier rows, 20 invalid rows, in a fixed shuffle.
	type row struct {
		body map[string]any
		kind string // person, repeat, invalid
		addr string
	}
	var rows []row
	for i := range 930 {
		addr := unique(fmt.Sprintf("Bulk.P%03d", i))
		rows = append(rows, row{f.inviteBody(addr), "person", addr})
	}
	for i := range 20 {
		b := f.inviteBody(fmt.Sprintf("not-an-address-%d", i))
		rows = append(rows, row{b, "invalid", ""})
	}
	rng := rand.New(rand.NewPCG(7, 11))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for i := range 50 { // a repeat comes after the row it repeats
		j := i * 10
		for rows[j].kind != "person" {
			j++
		}
		src := rows[j]
		at := 500 + i*9
		rows = append(rows[:at], append([]row{{src.body, "repeat", src.addr}}, rows[at:]...)...)
	}
	if len(rows) != 1000 {
		t.Fatalf("%d rows", len(rows))
	}
	items := make([]map[string]any, len(rows))
	for i, r := range rows {
		items[i] = r.body
	}

	var started batch
	c.do(t, "POST", f.path("/invitation-batches"), map[string]any{"items": items}).expect(t, 202).decode(t, &started)
	get := func() batch {
		var b batch
		c.do(t, "GET", f.path("/invitation-batches/"+started.ID), nil).expect(t, 200).decode(t, &b)
		return b
	}
	eventually(t, 2*time.Minute, "a quarter of the batch", func() bool { b := get(); return b.Succeeded+b.Failed >= 250 })
	first.signal(t, syscall.SIGKILL)
	if exited, _ := first.exitedIn(10 * time.Second); !exited {
		t.Fatal("the worker survived SIGKILL")
	}
	atKill := get()
	svc.startWorker(t, nil)

	// A single invitation of another account once the batch's invites queue: the created
	// invitations without a sent invite email.
	queued := func() int {
		return sqlInt(t, `select count(*) from invitations i where i.account_id = $1 and not exists
			(select 1 from emails e where e.invitation_id = i.id and e.kind = 'invite' and e.status = 'sent')`, uuid.MustParse(f.AccountID))
	}
	eventually(t, 3*time.Minute, "a backlog of the batch's invites", func() bool { return queued() >= 60 })
	backlog := queued()
	single := unique("Bulk.Single")
	sentAt := time.Now()
	other.invite(t, c, single)
	waitEmails(t, single, "invited you", 1, 30*time.Second)
	singleWait := time.Since(sentAt)

	var done batch
	eventually(t, 5*time.Minute, "the batch to complete", func() bool { done = get(); return done.Status == "completed" })
	t.Logf("killed after %d of 1000 rows; the single invite's email came in %s, with %d of the batch's emails still queued",
		atKill.Succeeded+atKill.Failed, singleWait.Round(100*time.Millisecond), backlog)
	// At 4 emails a second, a place behind the backlog would be backlog/4 seconds away.
	if singleWait > 10*time.Second {
		t.Errorf("the single invite's email took %s behind the batch's %d", singleWait, backlog)
	}

	if done.Total != 1000 || done.Succeeded != 600 || done.Failed != 400 || len(done.Items) != 1000 {
		t.Fatalf("batch = total %d, %d created, %d failed, %d items", done.Total, done.Succeeded, done.Failed, len(done.Items))
	}
	// The expected outcome of each row, in row order, as a run of single creates would give.
	seen := map[string]bool{}
	created := 0
	codes := map[string]int{}
	ids := map[string]bool{}
	for i, r := range rows {
		it := done.Items[i]
		want, code := "created", ""
		switch {
		case r.kind == "invalid":
			want, code = "failed", "validation_failed"
		case seen[r.addr]:
			want, code = "failed", "duplicate_invitation"
		case created == 600:
			want, code = "failed", "seats_exhausted"
		}
		if r.kind == "person" && want == "created" {
			seen[r.addr] = true
			created++
		}
		if r.kind == "person" && code == "seats_exhausted" {
			seen[r.addr] = false
		}
		if it.Index != i || it.Status != want {
			t.Fatalf("row %d (%s) = %s, want %s", i, r.kind, it.Status, want)
		}
		if want == "created" {
			if it.InvitationID == nil || ids[*it.InvitationID] {
				t.Fatalf("row %d: invitation %v missing or repeated", i, it.InvitationID)
			}
			ids[*it.InvitationID] = true
			continue
		}
		if it.Error == nil || it.Error.Code != code {
			t.Fatalf("row %d (%s): error %+v, want %s", i, r.kind, it.Error, code)
		}
		codes[code]++
	}
	if codes["validation_failed"] != 20 || codes["duplicate_invitation"] != 50 || codes["seats_exhausted"] != 330 {
		t.Errorf("failures by code = %v", codes)
	}

	// Postgres agrees: 600 invitations, each person once, the seats exactly held.
	acct := uuid.MustParse(f.AccountID)
	if n := sqlInt(t, `select count(*) from invitations where account_id = $1`, acct); n != 600 {
		t.Errorf("%d invitations in the account, want 600", n)
	}
	if n := sqlInt(t, `select count(distinct lower(email)) from invitations where account_id = $1`, acct); n != 600 {
		t.Errorf("%d distinct people invited, want 600", n)
	}
	seats := seatsOf(t, f)
	if err := seats.consistent(); err != nil || seats.Reserved != 600 {
		t.Errorf("seats %+v: %v", seats, err)
	}
	// One invite email per created row, once the queue drains, whatever the kill did.
	eventually(t, 5*time.Minute, "every created row's invite email", func() bool {
		return sqlInt(t, `select count(*) from emails e join invitations i on i.id = e.invitation_id
			where i.account_id = $1 and e.kind = 'invite' and e.status = 'sent'`, acct) == 600
	})
	for _, r := range rows {
		if r.kind == "person" && seen[r.addr] {
			if n := emailsTo(r.addr, "invited you"); n != 1 {
				t.Errorf("%d invite emails to %s, want 1", n, r.addr)
			}
		}
	}
}
