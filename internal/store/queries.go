package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// IsActiveMember reports whether a person is an active member of the account: the user with
// userID when it is not nil, or the user whose email matches, case-insensitively.
func (s *Store) IsActiveMember(ctx context.Context, accountID uuid.UUID, userID *uuid.UUID, email string) (bool, error) {
	var member bool
	err := s.Pool.QueryRow(ctx, `
		select exists(
			select 1 from memberships m join users u on u.id = m.user_id
			where m.account_id = $1 and m.state = 'active'
			  and (m.user_id = $2 or ($3 <> '' and lower(u.email) = lower($3))))`,
		accountID, userID, email).Scan(&member)
	return member, err
}

// PendingInvitationID returns the id of the account's pending invitation for email
// (case-insensitive), or ErrNotFound.
func (s *Store) PendingInvitationID(ctx context.Context, accountID uuid.UUID, email string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.Pool.QueryRow(ctx, `
		select id from invitations
		where account_id = $1 and lower(email) = lower($2) and status = 'pending'`, accountID, email).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, ErrNotFound
	}
	return id, err
}

// Cursor is a position in an invitation list ordered by created_at desc, id desc: the list
// goes on after the row with these values.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// ListInvitations returns up to limit invitations of the account, newest first, after
// cursor when it is not nil, and the cursor of the next page, nil at the end. A non-empty
// status or email filters (email exactly, compared case-insensitively).
func (s *Store) ListInvitations(ctx context.Context, accountID uuid.UUID, status, email string, limit int, cursor *Cursor) ([]Invitation, *Cursor, error) {
	if limit < 1 {
		return nil, nil, fmt.Errorf("list limit %d must be positive", limit)
	}
	where := []string{"i.account_id = $1"}
	args := []any{accountID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if status != "" {
		where = append(where, "i.status = "+arg(status))
	}
	if email != "" {
		where = append(where, "lower(i.email) = lower("+arg(email)+")")
	}
	if cursor != nil {
		// Row comparison matches the order and the (account_id, created_at desc, id desc) index.
		where = append(where, fmt.Sprintf("(i.created_at, i.id) < (%s, %s)", arg(cursor.CreatedAt), arg(cursor.ID)))
	}
	// One extra row tells whether a next page exists.
	query := `select ` + invitationColumns + invitationFrom + ` where ` + strings.Join(where, " and ") +
		` order by i.created_at desc, i.id desc limit ` + arg(limit+1)
	rows, err := s.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) { return scanInvitation(r) })
	if err != nil {
		return nil, nil, err
	}
	if len(items) <= limit {
		if items == nil {
			items = []Invitation{}
		}
		return items, nil, nil
	}
	items = items[:limit]
	last := items[len(items)-1]
	return items, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// ClaimIdempotencyKey binds an Idempotency-Key of the account to a request and an invitation
// id. The first caller's proposedInvitationID wins; every caller, concurrent or later, gets the
// winner's id, and sameRequest tells whether its requestHash matches the winner's. A caller is
// the first exactly when the returned id equals the one it proposed.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, accountID uuid.UUID, key string, requestHash []byte, proposedInvitationID uuid.UUID) (invitationID uuid.UUID, sameRequest bool, err error) {
	// A concurrent insert of the same key makes this one wait for it to commit and then do
	// nothing; the select that follows sees the winner (read committed takes a new snapshot
	// per statement).
	if _, err := s.Pool.Exec(ctx, `
		insert into idempotency_keys (account_id, key, request_hash, invitation_id) values ($1, $2, $3, $4)
		on conflict (account_id, key) do nothing`, accountID, key, requestHash, proposedInvitationID); err != nil {
		return uuid.Nil, false, err
	}
	var storedHash []byte
	err = s.Pool.QueryRow(ctx, `select request_hash, invitation_id from idempotency_keys where account_id = $1 and key = $2`,
		accountID, key).Scan(&storedHash, &invitationID)
	if err != nil {
		return uuid.Nil, false, err
	}
	return invitationID, bytes.Equal(storedHash, requestHash), nil
}

// Account user states, as GET /v1/accounts/{id}/users shows them.
const (
	UserStateActive            = "active"
	UserStateBlocked           = "blocked"
	UserStateInvited           = "invited"
	UserStateInvitationExpired = "invitation_expired"
)

// AccountUser is one entry of an account's user list: a member, or a person whose latest
// invitation to the account is pending or expired.
type AccountUser struct {
	UserID    *uuid.UUID // nil for a new person not provisioned yet
	Email     string
	FirstName string
	LastName  string
	Role      string
	GroupIDs  []uuid.UUID
	State     string
	// InvitationID is the invitation behind an invited or invitation_expired entry.
	InvitationID *uuid.UUID
	// Metadata is the membership's (copied from the invitation that provisioned it), or the
	// invitation's for an invited person: a JSON object.
	Metadata json.RawMessage
}

// AccountKnowsUser reports whether the account knows the user: a member (of any state), or a
// person it invited before (by user id or by the user's address).
func (s *Store) AccountKnowsUser(ctx context.Context, accountID uuid.UUID, u User) (bool, error) {
	var known bool
	err := s.Pool.QueryRow(ctx, `select exists(select 1 from memberships where account_id = $1 and user_id = $2)
		or exists(select 1 from invitations where account_id = $1 and (user_id = $2 or lower(email) = lower($3)))`,
		accountID, u.ID, u.Email).Scan(&known)
	return known, err
}

// ListAccountUsers returns the account's members and invited people, ordered by email.
// A person with a membership appears once, as a member, whatever their invitations; anyone
// else appears by their latest invitation when it is pending or expired (a revoked or
// declined latest invitation is not listed).
//
// A person invited by email who has not joined has a user id only when reach is set (the
// portal's own view, which may name any user): an account's own view names only people it knows
// (its members, and those it invited by user id), so it cannot learn who has a user elsewhere.
func (s *Store) ListAccountUsers(ctx context.Context, accountID uuid.UUID, reach bool) ([]AccountUser, error) {
	rows, err := s.Pool.Query(ctx, `
		with members as (
			select m.user_id, u.email, u.first_name, u.last_name, m.role, m.group_ids, m.state, m.metadata
			from memberships m join users u on u.id = m.user_id
			where m.account_id = $1
		), latest as (
			select distinct on (lower(i.email)) i.id, i.user_id, i.email, i.first_name, i.last_name,
			       i.role, i.group_ids, i.status, i.metadata
			from invitations i
			where i.account_id = $1
			-- the live invitation first: a renewed older one can be pending behind a newer closed one
			order by lower(i.email), (i.status = 'pending') desc, i.updated_at desc, i.id desc
		)
		select * from (
			select user_id, email, first_name, last_name, role, group_ids, state, null::uuid as invitation_id, metadata
			from members
			union all
			select coalesce(l.user_id, (select u.id from users u where $2 and lower(u.email) = lower(l.email))),
			       l.email, l.first_name, l.last_name, l.role, l.group_ids,
			       case l.status when 'pending' then 'invited' else 'invitation_expired' end, l.id, l.metadata
			from latest l
			where l.status in ('pending', 'expired')
			  and not exists (select 1 from members m where m.user_id = l.user_id or lower(m.email) = lower(l.email))
		) listed
		order by lower(email), email, state`, accountID, reach)
	if err != nil {
		return nil, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccountUser, error) {
		var u AccountUser
		err := r.Scan(&u.UserID, &u.Email, &u.FirstName, &u.LastName, &u.Role, &u.GroupIDs, &u.State, &u.InvitationID, &u.Metadata)
		if u.GroupIDs == nil {
			u.GroupIDs = []uuid.UUID{}
		}
		return u, err
	})
	if users == nil {
		users = []AccountUser{}
	}
	return users, err
}
