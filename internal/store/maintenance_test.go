package store

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// Retention forgets old Idempotency-Keys, old tombstones and the bodies of emails sent long
// enough ago, and nothing younger; the reconciler's query finds pending invitations long past
// their expiry, and only those.
func TestRetentionAndOverdue(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 5, []string{"viewer"})
	now := time.Now()
	recent := seedInvitation(t, s, acc.ID, sub.ID, "recent@acme.test", "pending", now.Add(-30*time.Minute)) // expires in 30 min
	overdue := seedInvitation(t, s, acc.ID, sub.ID, "overdue@acme.test", "pending", now.Add(-3*time.Hour))  // expired 2 h ago
	expired := seedInvitation(t, s, acc.ID, sub.ID, "done@acme.test", "expired", now.Add(-3*time.Hour))

	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	for key, age := range map[string]time.Duration{"old": 25 * time.Hour, "young": time.Hour} {
		exec(`insert into idempotency_keys (account_id, key, request_hash, invitation_id, created_at) values ($1, $2, 'h', $3, $4)`,
			acc.ID, key, recent, now.Add(-age))
	}
	for _, e := range []struct {
		status string
		age    time.Duration
	}{{"sent", 25 * time.Hour}, {"failed", 25 * time.Hour}, {"sent", time.Hour}, {"queued", 25 * time.Hour}} {
		exec(`insert into emails (idempotency_key, invitation_id, kind, recipient, subject, html, text, status, created_at, sent_at)
			values ($1, $2, 'invite', 'x@acme.test', 'Hi', '<p>link</p>', 'link', $3, $4, $4)`,
			uuid.NewString(), recent, e.status, now.Add(-e.age))
	}
	exec(`insert into abandoned_creates (invitation_id, run_id, abandoned_at) values ($1, 'old', $2), ($1, 'young', $3)`,
		uuid.New(), now.Add(-25*time.Hour), now.Add(-time.Hour))

	p, err := s.PruneRetention(ctx, 24*time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Pruned{IdempotencyKeys: 1, EmailBodies: 2, AbandonedCreates: 1}) {
		t.Fatalf("pruned %+v, want 1 key, 2 bodies (the old sent and the old failed email), 1 tombstone", p)
	}
	var keys, bodies, rows int
	if err := s.Pool.QueryRow(ctx, `select (select count(*) from idempotency_keys where account_id = $1),
		(select count(*) from emails where invitation_id = $2 and html <> ''), (select count(*) from emails where invitation_id = $2)`,
		acc.ID, recent).Scan(&keys, &bodies, &rows); err != nil {
		t.Fatal(err)
	}
	if keys != 1 || bodies != 2 || rows != 4 {
		t.Fatalf("after pruning: %d keys, %d emails with a body of %d; want the young key, the young and the queued email's bodies, every row", keys, bodies, rows)
	}
	if p, err := s.PruneRetention(ctx, 24*time.Hour, 24*time.Hour); err != nil || p != (Pruned{}) {
		t.Fatalf("a second pass pruned %+v (%v), want nothing", p, err)
	}

	got, err := s.OverduePending(ctx, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != overdue || got[0].Generation != 1 {
		t.Fatalf("overdue = %+v, want only %s (not %s, still valid, nor %s, already expired)", got, overdue, recent, expired)
	}
	if got, _ := s.OverduePending(ctx, 3*time.Hour, 10); len(got) != 0 {
		t.Fatalf("with a 3 h grace, overdue = %+v, want none", got)
	}
}
