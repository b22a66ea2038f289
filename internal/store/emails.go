package store

import (
	"context"
	"errors"

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
// the invite's n-th send it also brings the invitation's send count up to n.
func (s *Store) BeginEmail(ctx context.Context, e Email, inviteSeq int) (Email, error) {
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			insert into emails (idempotency_key, invitation_id, kind, recipient, subject, html, text, status)
			values ($1, $2, $3, $4, $5, $6, $7, 'queued')
			on conflict (idempotency_key) do nothing`,
			e.IdempotencyKey, e.InvitationID, e.Kind, e.Recipient, e.Subject, e.HTML, e.Text)
		if err != nil || inviteSeq == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `update invitations set sends = greatest(sends, $2) where id = $1`, e.InvitationID, inviteSeq)
		return err
	})
	if err != nil {
		return Email{}, err
	}
	return s.GetEmail(ctx, e.IdempotencyKey)
}

// GetEmail returns an email by its idempotency key.
func (s *Store) GetEmail(ctx context.Context, key string) (Email, error) {
	var e Email
	err := s.Pool.QueryRow(ctx, `
		select idempotency_key, invitation_id, kind, recipient, subject, html, text, status, error, provider_id
		from emails where idempotency_key = $1`, key).
		Scan(&e.IdempotencyKey, &e.InvitationID, &e.Kind, &e.Recipient, &e.Subject, &e.HTML, &e.Text,
			&e.Status, &e.Error, &e.ProviderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	return e, err
}

// FinishEmail records the outcome of a send and the matching event in the invitation's story.
func (s *Store) FinishEmail(ctx context.Context, key string, status contract.DeliveryStatus, providerID, errMsg string) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		var invitationID uuid.UUID
		var kind, recipient string
		err := tx.QueryRow(ctx, `
			update emails set status = $2, provider_id = $3, error = $4,
				sent_at = case when $2 = 'sent' then now() else sent_at end
			where idempotency_key = $1 returning invitation_id, kind, recipient`,
			key, status, providerID, errMsg).Scan(&invitationID, &kind, &recipient)
		if err != nil {
			return err
		}
		typ, detail := "email_sent", kind+" email sent"
		if status == contract.DeliveryFailed {
			typ, detail = "email_failed", kind+" email failed: "+errMsg
		}
		_, err = tx.Exec(ctx, `insert into invitation_events (invitation_id, type, detail, dedupe_key)
			values ($1, $2, $3, $4) on conflict (dedupe_key) do nothing`, invitationID, typ, detail, key+":"+string(status))
		return err
	})
}
