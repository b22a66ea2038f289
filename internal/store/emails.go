package store

import (
	"context"
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Email is one message the service sends, keyed by its idempotency key.
type Email struct {
	IdempotencyKey string
	InvitationID   uuid.UUID
	Kind           contract.EmailKind
	Recipient      string
	Subject        string
	HTML           string
	Text           string
	Status         contract.DeliveryStatus
	Error          string
	ProviderID     string
}

// BeginEmail records an email as queued, unless one with its key exists; it returns the stored
// row either way, so a retried send learns whether the first attempt already got through. For
// the invite's n-th send it also brings the invitation's send count up to n. The statements
// go in one batch, which Postgres runs as one implicit transaction in one round trip.
func (s *Store) BeginEmail(ctx context.Context, e Email, inviteSeq int) (Email, error) {
	b := &pgx.Batch{}
	b.Queue(`
		insert into emails (idempotency_key, invitation_id, kind, recipient, subject, html, text, status)
		values ($1, $2, $3, $4, $5, $6, $7, 'queued')
		on conflict (idempotency_key) do nothing`,
		e.IdempotencyKey, e.InvitationID, e.Kind, e.Recipient, e.Subject, e.HTML, e.Text)
	if inviteSeq > 0 {
		b.Queue(`update invitations set sends = greatest(sends, $2) where id = $1`, e.InvitationID, inviteSeq)
	}
	var stored Email
	b.Queue(emailSelect+` where idempotency_key = $1`, e.IdempotencyKey).QueryRow(func(row pgx.Row) error {
		var err error
		stored, err = scanEmail(row)
		return err
	})
	if err := s.Pool.SendBatch(ctx, b).Close(); err != nil {
		return Email{}, err
	}
	return stored, nil
}

// GetEmail returns an email by its idempotency key.
func (s *Store) GetEmail(ctx context.Context, key string) (Email, error) {
	return scanEmail(s.Pool.QueryRow(ctx, emailSelect+` where idempotency_key = $1`, key))
}

const emailSelect = `select idempotency_key, invitation_id, kind, recipient, subject, html, text, status, error, provider_id from emails`

func scanEmail(row pgx.Row) (Email, error) {
	var e Email
	err := row.Scan(&e.IdempotencyKey, &e.InvitationID, &e.Kind, &e.Recipient, &e.Subject, &e.HTML, &e.Text,
		&e.Status, &e.Error, &e.ProviderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	return e, err
}

// FinishEmail records the outcome of a send and the matching event in the invitation's story,
// in one batch (one round trip, one implicit transaction). An invite or reminder also gets its
// public event: invitation.sent for a generation's first invite, invitation.resent for a later
// one, invitation.reminded, or invitation.delivery_failed. An unknown key is ErrNotFound.
func (s *Store) FinishEmail(ctx context.Context, key string, status contract.DeliveryStatus, providerID, errMsg string) error {
	b := &pgx.Batch{}
	found := false
	b.Queue(`update emails set status = $2, provider_id = $3, error = $4,
			sent_at = case when $2 = 'sent' then now() else sent_at end
		where idempotency_key = $1 returning true`, key, string(status), providerID, errMsg).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	b.Queue(`
		insert into invitation_events (invitation_id, type, detail, dedupe_key, account_id, public_id, public_type, data)
		select m.invitation_id,
			case when $2 = 'failed' then 'email_failed' else 'email_sent' end,
			m.kind || case when $2 = 'failed' then ' email failed: ' || $3 else ' email sent' end,
			$1 || ':' || $2, i.account_id,
			case when m.pt is not null then 'evt_' || replace(gen_random_uuid()::text, '-', '') end,
			m.pt, case when m.pt is not null then `+snapshotOf("m.invitation_id")+` end
		from (select e.invitation_id, e.kind, case
				when $2 = 'failed' and e.kind in ('invite', 'reminder') then 'invitation.delivery_failed'
				when $2 = 'sent' and e.kind = 'reminder' then 'invitation.reminded'
				when $2 = 'sent' and e.kind = 'invite' then case when exists (
					select 1 from invitation_events x join invitations xi on xi.id = x.invitation_id
					where x.invitation_id = e.invitation_id and x.public_type = 'invitation.sent'
						and (x.data->>'generation')::int = xi.generation)
					then 'invitation.resent' else 'invitation.sent' end
				end as pt
			from emails e where e.idempotency_key = $1 and e.invitation_id is not null) m
		join invitations i on i.id = m.invitation_id
		on conflict (dedupe_key) do nothing`, key, string(status), errMsg)
	if err := s.Pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if !found {
		return ErrNotFound
	}
	return nil
}

// RecentInviteEmails counts the invite and reminder emails to an address, from every account,
// begun since (and not refused), with when the oldest of them was.
func (s *Store) RecentInviteEmails(ctx context.Context, recipient string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest *time.Time
	err := s.Pool.QueryRow(ctx, `select count(*), min(created_at) from emails
		where lower(recipient) = lower($1) and kind in ('invite', 'reminder') and status <> 'failed' and created_at > $2`,
		recipient, since).Scan(&n, &oldest)
	if err != nil || oldest == nil {
		return n, time.Time{}, err
	}
	return n, *oldest, nil
}
