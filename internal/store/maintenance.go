package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Pruned counts what one pass of PruneRetention removed.
type Pruned struct {
	IdempotencyKeys  int64
	EmailBodies      int64
	AbandonedCreates int64
}

// PruneRetention forgets what no longer serves: Idempotency-Keys and abandoned-create
// tombstones older than keys (a create retried after that is a new create; a create attempt
// cannot outlive its run by a day), and the bodies of emails sent or failed more than bodies
// ago (the row keeps its recipient, subject, status and provider id; the body held the link).
func (s *Store) PruneRetention(ctx context.Context, keys, bodies time.Duration) (Pruned, error) {
	var p Pruned
	b := &pgx.Batch{}
	b.Queue(`delete from idempotency_keys where created_at < now() - $1::interval`, keys).Exec(func(tag pgconn.CommandTag) error {
		p.IdempotencyKeys = tag.RowsAffected()
		return nil
	})
	b.Queue(`update emails set html = '', text = '' where status <> 'queued' and (html <> '' or text <> '')
		and coalesce(sent_at, created_at) < now() - $1::interval`, bodies).Exec(func(tag pgconn.CommandTag) error {
		p.EmailBodies = tag.RowsAffected()
		return nil
	})
	b.Queue(`delete from abandoned_creates where abandoned_at < now() - $1::interval`, keys).Exec(func(tag pgconn.CommandTag) error {
		p.AbandonedCreates = tag.RowsAffected()
		return nil
	})
	// A bucket whose time has passed is full again: the same as no row.
	b.Queue(`delete from rate_limits where tat < now() - interval '1 minute'`)
	return p, s.Pool.SendBatch(ctx, b).Close()
}

// Overdue is a pending invitation whose expiry passed long ago: its workflow should have
// expired it.
type Overdue struct {
	ID         uuid.UUID
	Generation int
	ExpiresAt  time.Time
}

// OverduePending lists, oldest first, up to limit pending invitations whose expiry passed more
// than grace ago.
func (s *Store) OverduePending(ctx context.Context, grace time.Duration, limit int) ([]Overdue, error) {
	rows, err := s.Pool.Query(ctx, `select id, generation, expires_at from invitations
		where status = 'pending' and expires_at < now() - $1::interval order by expires_at limit $2`, grace, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Overdue, error) {
		var o Overdue
		return o, r.Scan(&o.ID, &o.Generation, &o.ExpiresAt)
	})
}
