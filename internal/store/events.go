package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Events out: the rows of invitation_events that have a public type are the account's event
// feed and what its webhooks deliver. A row is written in the transaction of its change (so
// it exists exactly when the change does), with a snapshot of the invitation just after it;
// the sequencer then numbers committed rows (seq) in the order they committed, which is the
// feed's order and cursor, and owes each one to the account's endpoints that want it.

// snapshotOf is the invitation whose id is the SQL expression id as a JSON object, read
// inside the writing transaction after its change: what eventSnapshot decodes. No link and no
// token: neither is stored.
func snapshotOf(id string) string {
	return `(select jsonb_build_object(
	'id', i.id, 'account_id', i.account_id, 'subscription_id', i.subscription_id,
	'application', i.application, 'role', i.role, 'group_ids', i.group_ids, 'user_id', i.user_id,
	'email', i.email, 'first_name', i.first_name, 'last_name', i.last_name, 'phone', i.phone,
	'inviter_name', i.inviter_name, 'inviter_email', i.inviter_email, 'status', i.status,
	'generation', i.generation, 'expires_at', i.expires_at, 'sends', i.sends,
	'created_at', i.created_at, 'updated_at', i.updated_at,
	'expires_in', i.expires_in, 'send_email', i.send_email, 'message', i.message, 'metadata', i.metadata,
	'redirect_url', i.redirect_url,
	'delivery_status', coalesce((select e.status from emails e where e.invitation_id = i.id and e.kind in ('invite', 'reminder') order by e.created_at desc limit 1), ''),
	'delivery_error', coalesce((select e.error from emails e where e.invitation_id = i.id and e.kind in ('invite', 'reminder') order by e.created_at desc limit 1), ''))
	from invitations i where i.id = ` + id + `)`
}

// eventInsert writes story event $2 of invitation $1 once per dedupe key $4, with its public
// type $5 (null: story only) and, for a public one, the snapshot.
var eventInsert = `insert into invitation_events (invitation_id, type, detail, dedupe_key, account_id, public_id, public_type, data, user_id)
	select i.id, $2, $3, $4, i.account_id,
		case when $5::text is not null then 'evt_' || replace(gen_random_uuid()::text, '-', '') end,
		$5::text, case when $5::text is not null then ` + snapshotOf("$1") + ` end,
		case when $5::text = 'invitation.accepted' then i.user_id end
	from invitations i where i.id = $1
	on conflict (dedupe_key) do nothing`

// publicArg is a public type as eventInsert's $5: null when there is none.
func publicArg(t string) *string {
	if t == "" {
		return nil
	}
	return &t
}

// eventSnapshot is snapshotSQL's object.
type eventSnapshot struct {
	ID             uuid.UUID               `json:"id"`
	AccountID      uuid.UUID               `json:"account_id"`
	SubscriptionID uuid.UUID               `json:"subscription_id"`
	Application    string                  `json:"application"`
	Role           string                  `json:"role"`
	GroupIDs       []uuid.UUID             `json:"group_ids"`
	UserID         *uuid.UUID              `json:"user_id"`
	Email          string                  `json:"email"`
	FirstName      string                  `json:"first_name"`
	LastName       string                  `json:"last_name"`
	Phone          string                  `json:"phone"`
	InviterName    string                  `json:"inviter_name"`
	InviterEmail   string                  `json:"inviter_email"`
	Status         contract.Status         `json:"status"`
	Generation     int                     `json:"generation"`
	ExpiresAt      time.Time               `json:"expires_at"`
	Sends          int                     `json:"sends"`
	CreatedAt      time.Time               `json:"created_at"`
	UpdatedAt      time.Time               `json:"updated_at"`
	DeliveryStatus contract.DeliveryStatus `json:"delivery_status"`
	DeliveryError  string                  `json:"delivery_error"`
	ExpiresIn      *int64                  `json:"expires_in"`
	SendEmail      *bool                   `json:"send_email"` // absent from events written before options existed
	Message        string                  `json:"message"`
	Metadata       json.RawMessage         `json:"metadata"`
	RedirectURL    string                  `json:"redirect_url"`
}

func (s eventSnapshot) invitation() Invitation {
	inv := Invitation{Status: s.Status, Generation: s.Generation, Sends: s.Sends, CreatedAt: s.CreatedAt,
		UpdatedAt: s.UpdatedAt, DeliveryStatus: s.DeliveryStatus, DeliveryError: s.DeliveryError}
	inv.ID, inv.AccountID, inv.SubscriptionID, inv.Application = s.ID, s.AccountID, s.SubscriptionID, s.Application
	inv.Role, inv.GroupIDs, inv.UserID, inv.Email = s.Role, s.GroupIDs, s.UserID, s.Email
	inv.FirstName, inv.LastName, inv.Phone = s.FirstName, s.LastName, s.Phone
	inv.InviterName, inv.InviterEmail, inv.ExpiresAt = s.InviterName, s.InviterEmail, s.ExpiresAt
	inv.Message, inv.Metadata, inv.RedirectURL = s.Message, s.Metadata, s.RedirectURL
	inv.HoldEmail = s.SendEmail != nil && !*s.SendEmail
	if s.ExpiresIn != nil {
		inv.ExpiresIn = time.Duration(*s.ExpiresIn) * time.Second
	}
	if inv.GroupIDs == nil {
		inv.GroupIDs = []uuid.UUID{}
	}
	return inv
}

// FeedEvent is one public event.
type FeedEvent struct {
	// RowID is the story row's id (the webhook tables' key); Seq its place in the feed.
	RowID     int64
	Seq       int64
	ID        string // evt_...
	Type      string
	CreatedAt time.Time
	AccountID uuid.UUID
	// Invitation is the invitation just after the change.
	Invitation Invitation
	// UserID is the user an acceptance provisioned.
	UserID *uuid.UUID
}

const feedColumns = `e.id, e.seq, e.public_id, e.public_type, e.at, e.account_id, e.data, e.user_id`

func scanFeedEvent(row pgx.Row) (FeedEvent, error) {
	var ev FeedEvent
	var data []byte
	if err := row.Scan(&ev.RowID, &ev.Seq, &ev.ID, &ev.Type, &ev.CreatedAt, &ev.AccountID, &data, &ev.UserID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ev, ErrNotFound
		}
		return ev, err
	}
	var snap eventSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return ev, fmt.Errorf("event %s: snapshot: %w", ev.ID, err)
	}
	ev.Invitation = snap.invitation()
	return ev, nil
}

// ListEvents returns up to limit of the account's public events after feed position after,
// oldest first, of the given types (none: every type).
func (s *Store) ListEvents(ctx context.Context, accountID uuid.UUID, after int64, limit int, types []string) ([]FeedEvent, error) {
	rows, err := s.Pool.Query(ctx, `select `+feedColumns+` from invitation_events e
		where e.account_id = $1 and e.seq > $2 and (coalesce(cardinality($4::text[]), 0) = 0 or e.public_type = any($4))
		order by e.seq limit $3`, accountID, after, limit, types)
	if err != nil {
		return nil, err
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FeedEvent, error) { return scanFeedEvent(r) })
	if events == nil {
		events = []FeedEvent{}
	}
	return events, err
}

// GetEvent returns the public event of story row rowID.
func (s *Store) GetEvent(ctx context.Context, rowID int64) (FeedEvent, error) {
	return scanFeedEvent(s.Pool.QueryRow(ctx, `select `+feedColumns+` from invitation_events e
		where e.id = $1 and e.public_type is not null and e.seq is not null`, rowID))
}

// Sequenced is a batch the sequencer numbered.
type Sequenced struct {
	Events int
	// Owed are the deliveries the batch created, (endpoint, event row) pairs.
	Owed []Delivery
}

// Delivery is an event owed to an endpoint.
type Delivery struct {
	EndpointID uuid.UUID
	EventRowID int64
	EventID    string // evt_...
	// TaskQueue is the endpoint's deployment (WebhookEndpoint.TaskQueue).
	TaskQueue string
	CreatedAt time.Time
}

// SequenceEvents numbers up to max committed, unnumbered public events in the order of their
// ids and, in the same transaction, owes each to every live endpoint of its account that wants
// its type. The counter's row lock makes one batch at a time across every worker, so a later
// batch's numbers are all above an earlier one's: a reader's cursor never passes an event that
// is numbered later. An event's rows are written after the lock on its invitation, so the
// events of one invitation are numbered in the order they happened.
func (s *Store) SequenceEvents(ctx context.Context, max int) (Sequenced, error) {
	var out Sequenced
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		out = Sequenced{}
		var base int64
		if err := tx.QueryRow(ctx, `select last_seq from event_sequence for update`).Scan(&base); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			with batch as (
				select id, row_number() over (order by id) as n from invitation_events
				where seq is null and public_type is not null order by id limit $1)
			update invitation_events e set seq = $2 + batch.n from batch where e.id = batch.id
			returning e.id, e.seq`, max, base)
		if err != nil {
			return err
		}
		var last int64
		ids := []int64{}
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			last = max64(last, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		out.Events = len(ids)
		if _, err := tx.Exec(ctx, `update event_sequence set last_seq = $1`, last); err != nil {
			return err
		}
		owed, err := tx.Query(ctx, `
			with owed as (
				insert into webhook_deliveries (endpoint_id, event_id)
				select w.id, e.id from invitation_events e
				join webhook_endpoints w on w.account_id = e.account_id and w.deleted_at is null
					and (cardinality(w.event_types) = 0 or e.public_type = any(w.event_types))
				where e.id = any($1)
				on conflict do nothing
				returning endpoint_id, event_id, created_at)
			select o.endpoint_id, o.event_id, e.public_id, w.task_queue, o.created_at from owed o
			join invitation_events e on e.id = o.event_id join webhook_endpoints w on w.id = o.endpoint_id`, ids)
		if err != nil {
			return err
		}
		out.Owed, err = pgx.CollectRows(owed, func(r pgx.CollectableRow) (Delivery, error) {
			var d Delivery
			return d, r.Scan(&d.EndpointID, &d.EventRowID, &d.EventID, &d.TaskQueue, &d.CreatedAt)
		})
		return err
	})
	return out, err
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// UnstartedDeliveries returns up to limit owed deliveries whose workflow is not known to be
// started, oldest first: the dispatcher's catch-up after a crash between the two, or after
// another deployment's dispatcher numbered the event. A dispatcher of task queue queue takes
// its own endpoints' after own, and any endpoint's after orphaned (its deployment is gone).
func (s *Store) UnstartedDeliveries(ctx context.Context, queue string, own, orphaned time.Duration, limit int) ([]Delivery, error) {
	rows, err := s.Pool.Query(ctx, `select d.endpoint_id, d.event_id, e.public_id, w.task_queue, d.created_at from webhook_deliveries d
		join invitation_events e on e.id = d.event_id
		join webhook_endpoints w on w.id = d.endpoint_id and w.deleted_at is null
		where d.started_at is null and (
			(w.task_queue in ($1, '') and d.created_at < now() - $2::interval) or d.created_at < now() - $3::interval)
		order by d.created_at limit $4`, queue, own.String(), orphaned.String(), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		return d, r.Scan(&d.EndpointID, &d.EventRowID, &d.EventID, &d.TaskQueue, &d.CreatedAt)
	})
}

// MarkDeliveryStarted records that the delivery's workflow exists.
func (s *Store) MarkDeliveryStarted(ctx context.Context, d Delivery) error {
	_, err := s.Pool.Exec(ctx, `update webhook_deliveries set started_at = coalesce(started_at, now())
		where endpoint_id = $1 and event_id = $2`, d.EndpointID, d.EventRowID)
	return err
}
