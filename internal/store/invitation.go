package store

import (
	"context"
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Invitation is one row of the invitation read model, joined with what the portal and the
// emails show about it.
type Invitation struct {
	// NewInvitation is what the create recorded; ExpiresAt is the current generation's.
	NewInvitation
	AccountName  string
	Subscription string // the subscription's name
	Status       contract.Status
	Generation   int
	Sends        int
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Delivery of the latest email; DeliveryStatus is "" when none was attempted yet.
	DeliveryStatus contract.DeliveryStatus
	DeliveryError  string
	// Edits counts the PATCHes the invitation has had.
	Edits int
}

// Event is one entry of an invitation's story.
type Event struct {
	At     time.Time
	Type   string
	Detail string
}

// invitationColumns selects an Invitation; use with scanInvitation.
const invitationColumns = `
	i.id, i.account_id, a.name, i.subscription_id, s.name, i.application, i.role, i.group_ids,
	i.user_id, i.email, i.first_name, i.last_name, i.phone, i.inviter_name, i.inviter_email,
	i.status, i.generation, i.expires_at,
	i.sends,
	i.created_at, i.updated_at,
	coalesce((select e.status from emails e where e.invitation_id = i.id and e.kind in ('invite', 'reminder') order by e.created_at desc limit 1), ''),
	coalesce((select e.error from emails e where e.invitation_id = i.id and e.kind in ('invite', 'reminder') order by e.created_at desc limit 1), ''),
	i.expires_in, i.send_email, i.message, i.metadata, i.redirect_url, i.edits`

const invitationFrom = `
	from invitations i
	join accounts a on a.id = i.account_id
	join subscriptions s on s.id = i.subscription_id`

func scanInvitation(row pgx.Row) (Invitation, error) {
	var inv Invitation
	var expiresIn *int64
	var sendEmail bool
	err := row.Scan(&inv.ID, &inv.AccountID, &inv.AccountName, &inv.SubscriptionID, &inv.Subscription,
		&inv.Application, &inv.Role, &inv.GroupIDs, &inv.UserID, &inv.Email, &inv.FirstName, &inv.LastName,
		&inv.Phone, &inv.InviterName, &inv.InviterEmail, &inv.Status, &inv.Generation, &inv.ExpiresAt,
		&inv.Sends, &inv.CreatedAt, &inv.UpdatedAt, &inv.DeliveryStatus, &inv.DeliveryError,
		&expiresIn, &sendEmail, &inv.Message, &inv.Metadata, &inv.RedirectURL, &inv.Edits)
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, ErrNotFound
	}
	if inv.GroupIDs == nil {
		inv.GroupIDs = []uuid.UUID{}
	}
	if expiresIn != nil {
		inv.ExpiresIn = time.Duration(*expiresIn) * time.Second
	}
	inv.HoldEmail = !sendEmail
	return inv, err
}

// GetInvitation returns one invitation by id.
func (s *Store) GetInvitation(ctx context.Context, id uuid.UUID) (Invitation, error) {
	return scanInvitation(s.Pool.QueryRow(ctx, `select `+invitationColumns+invitationFrom+` where i.id = $1`, id))
}

// InvitationEvents returns an invitation's story, oldest first.
func (s *Store) InvitationEvents(ctx context.Context, id uuid.UUID) ([]Event, error) {
	rows, err := s.Pool.Query(ctx, `select at, type, detail from invitation_events where invitation_id = $1 order by id`, id)
	if err != nil {
		return nil, err
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		return e, r.Scan(&e.At, &e.Type, &e.Detail)
	})
	if events == nil {
		events = []Event{}
	}
	return events, err
}

// CountPending returns how many invitations are pending now.
func (s *Store) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `select count(*) from invitations where status = 'pending'`).Scan(&n)
	return n, err
}

// LastEventAt is when an invitation's story last recorded an event of typ; zero if never.
func (s *Store) LastEventAt(ctx context.Context, id uuid.UUID, typ string) (time.Time, error) {
	var at *time.Time
	err := s.Pool.QueryRow(ctx, `select max(at) from invitation_events where invitation_id = $1 and type = $2`, id, typ).Scan(&at)
	if err != nil || at == nil {
		return time.Time{}, err
	}
	return *at, nil
}
