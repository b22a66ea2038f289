package store

import (
	"context"
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// An account's webhook endpoints and their delivery attempts. Secrets are not stored: the
// endpoint's secret_version (and the previous one, until PreviousUntil) names them.

// WebhookEndpoint is one registered endpoint.
type WebhookEndpoint struct {
	ID          uuid.UUID
	AccountID   uuid.UUID
	URL         string
	EventTypes  []string
	Description string
	// TaskQueue is the registering deployment's TEMPORAL_TASK_QUEUE: its dispatchers start
	// this endpoint's deliveries (others do only for deliveries left unstarted for long).
	TaskQueue     string
	SecretVersion int
	// PreviousUntil is when the secret before SecretVersion stops signing; nil when none does.
	PreviousUntil *time.Time
	CreatedAt     time.Time
	Deleted       bool
}

const endpointColumns = `id, account_id, url, event_types, description, task_queue, secret_version, previous_until, created_at, deleted_at is not null`

func scanEndpoint(row pgx.Row) (WebhookEndpoint, error) {
	var w WebhookEndpoint
	err := row.Scan(&w.ID, &w.AccountID, &w.URL, &w.EventTypes, &w.Description, &w.TaskQueue, &w.SecretVersion, &w.PreviousUntil, &w.CreatedAt, &w.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, ErrNotFound
	}
	if w.EventTypes == nil {
		w.EventTypes = []string{}
	}
	return w, err
}

// CreateWebhookEndpoint registers an endpoint.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, w WebhookEndpoint) (WebhookEndpoint, error) {
	if w.EventTypes == nil {
		w.EventTypes = []string{}
	}
	created, err := scanEndpoint(s.Pool.QueryRow(ctx, `
		insert into webhook_endpoints (id, account_id, url, event_types, description, task_queue)
		values ($1, $2, $3, $4, $5, $6) returning `+endpointColumns, w.ID, w.AccountID, w.URL, w.EventTypes, w.Description, w.TaskQueue))
	if constraintOf(err) == "webhook_endpoints_account_id_fkey" {
		return created, ErrNotFound
	}
	return created, err
}

// ListWebhookEndpoints returns the account's live endpoints, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, accountID uuid.UUID) ([]WebhookEndpoint, error) {
	rows, err := s.Pool.Query(ctx, `select `+endpointColumns+` from webhook_endpoints
		where account_id = $1 and deleted_at is null order by created_at, id`, accountID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookEndpoint, error) { return scanEndpoint(r) })
	if out == nil {
		out = []WebhookEndpoint{}
	}
	return out, err
}

// GetWebhookEndpoint returns an endpoint, deleted or not (a delivery in flight learns that its
// endpoint was deleted).
func (s *Store) GetWebhookEndpoint(ctx context.Context, id uuid.UUID) (WebhookEndpoint, error) {
	return scanEndpoint(s.Pool.QueryRow(ctx, `select `+endpointColumns+` from webhook_endpoints where id = $1`, id))
}

// DeleteWebhookEndpoint deletes the account's endpoint: nothing more is owed to it, and its
// deliveries in flight stop. ErrNotFound when the account has no such live endpoint.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, accountID, id uuid.UUID) error {
	tag, err := s.Pool.Exec(ctx, `update webhook_endpoints set deleted_at = now()
		where id = $1 and account_id = $2 and deleted_at is null`, id, accountID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// RotateWebhookSecret moves the endpoint to its next secret version; the current one keeps
// signing beside it for overlap.
func (s *Store) RotateWebhookSecret(ctx context.Context, accountID, id uuid.UUID, overlap time.Duration) (WebhookEndpoint, error) {
	return scanEndpoint(s.Pool.QueryRow(ctx, `
		update webhook_endpoints set secret_version = secret_version + 1, previous_until = now() + $3::interval
		where id = $1 and account_id = $2 and deleted_at is null returning `+endpointColumns, id, accountID, overlap.String()))
}

// WebhookAttempt is one delivery attempt.
type WebhookAttempt struct {
	ID            int64
	EndpointID    uuid.UUID
	EventRowID    int64
	EventID       string // evt_...
	EventType     string
	Attempt       int
	StatusCode    *int
	Error         string
	At            time.Time
	NextAttemptAt *time.Time
}

// RecordWebhookAttempt records an attempt once (a retried record of the same attempt number
// keeps the first), and the delivery's outcome when it is final.
func (s *Store) RecordWebhookAttempt(ctx context.Context, a WebhookAttempt, delivered bool) error {
	b := &pgx.Batch{}
	b.Queue(`insert into webhook_attempts (endpoint_id, event_id, attempt, status_code, error, next_attempt_at)
		values ($1, $2, $3, $4, $5, $6) on conflict (endpoint_id, event_id, attempt) do nothing`,
		a.EndpointID, a.EventRowID, a.Attempt, a.StatusCode, a.Error, a.NextAttemptAt)
	switch {
	case delivered:
		b.Queue(`update webhook_deliveries set delivered_at = coalesce(delivered_at, now()), failed_at = null
			where endpoint_id = $1 and event_id = $2`, a.EndpointID, a.EventRowID)
	case a.NextAttemptAt == nil:
		b.Queue(`update webhook_deliveries set failed_at = coalesce(failed_at, now())
			where endpoint_id = $1 and event_id = $2 and delivered_at is null`, a.EndpointID, a.EventRowID)
	}
	return s.Pool.SendBatch(ctx, b).Close()
}

// ListWebhookAttempts returns the endpoint's attempts, newest first, before attempt id before
// (0: from the newest).
func (s *Store) ListWebhookAttempts(ctx context.Context, accountID, endpointID uuid.UUID, before int64, limit int) ([]WebhookAttempt, error) {
	rows, err := s.Pool.Query(ctx, `
		select a.id, a.endpoint_id, a.event_id, e.public_id, e.public_type, a.attempt, a.status_code, a.error, a.at, a.next_attempt_at
		from webhook_attempts a
		join webhook_endpoints w on w.id = a.endpoint_id and w.account_id = $1
		join invitation_events e on e.id = a.event_id
		where a.endpoint_id = $2 and ($3 = 0 or a.id < $3)
		order by a.id desc limit $4`, accountID, endpointID, before, limit)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookAttempt, error) {
		var a WebhookAttempt
		return a, r.Scan(&a.ID, &a.EndpointID, &a.EventRowID, &a.EventID, &a.EventType, &a.Attempt, &a.StatusCode, &a.Error, &a.At, &a.NextAttemptAt)
	})
	if out == nil {
		out = []WebhookAttempt{}
	}
	return out, err
}

// FailingEndpoints counts live endpoints whose oldest undelivered delivery has had a failed
// attempt, and how long ago the oldest such delivery was owed: what the endpoint-failing
// alert reads.
func (s *Store) FailingEndpoints(ctx context.Context) (n int, oldest time.Duration, err error) {
	var secs float64
	err = s.Pool.QueryRow(ctx, `
		select count(distinct d.endpoint_id), coalesce(extract(epoch from now() - min(d.created_at)), 0)
		from webhook_deliveries d join webhook_endpoints w on w.id = d.endpoint_id and w.deleted_at is null
		where d.delivered_at is null and d.failed_at is null
			and exists (select 1 from webhook_attempts a where a.endpoint_id = d.endpoint_id and a.event_id = d.event_id)`).Scan(&n, &secs)
	return n, time.Duration(secs * float64(time.Second)), err
}

// ProviderDelivery applies a provider's delivery report (Resend's webhook) to the email it
// sent as providerEmailID, once per provider event id: the email's status, the invitation's
// story and, for a bounce or complaint of an invite or reminder, invitation.delivery_failed.
// applied is false for a replayed event or an email this service did not send (both are
// accepted and ignored); invitationID names the invitation when there is one.
func (s *Store) ProviderDelivery(ctx context.Context, eventID, eventType, providerEmailID string, status contract.DeliveryStatus, reason string) (applied bool, invitationID *uuid.UUID, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `insert into provider_events (id, type) values ($1, $2) on conflict do nothing`, eventID, eventType)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if status == "" {
			applied = true
			return nil
		}
		var key, kind string
		err = tx.QueryRow(ctx, `update emails set status = $2, error = $3 where provider_id = $1
			returning idempotency_key, kind, invitation_id`, providerEmailID, string(status), reason).Scan(&key, &kind, &invitationID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil || invitationID == nil {
			return err
		}
		applied = true
		public := ""
		if (status == contract.DeliveryBounced || status == contract.DeliveryComplained) && (kind == string(contract.KindInvite) || kind == string(contract.KindReminder)) {
			public = contract.PublicDeliveryFailed
		}
		detail := kind + " email " + string(status)
		if reason != "" {
			detail += ": " + reason
		}
		_, err = tx.Exec(ctx, eventInsert, *invitationID, "email_"+string(status), detail, key+":"+string(status), publicArg(public))
		return err
	})
	return applied, invitationID, err
}
