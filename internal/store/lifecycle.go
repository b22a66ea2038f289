package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The invitation lifecycle's writes, called by the workflow's activities. Each one is a single
// transaction that is safe to retry: run twice, it leaves the same rows as run once.

// Lifecycle errors. The activities turn them into non-retryable errors named by the API codes.
var (
	ErrSeatsExhausted = errors.New("the subscription has no free seat")
	ErrAlreadyMember  = errors.New("the person is already an active user of the account")
	ErrInvalidState   = errors.New("the invitation is not in a state that allows this")
	ErrSuperseded     = errors.New("the invitation has a newer link")
	// ErrAbandoned refuses a create whose workflow run gave up on it (AbandonCreate).
	ErrAbandoned = errors.New("the create was abandoned by its workflow run")
)

// ClosedError refuses a change to an invitation that Postgres holds as closed (accepted,
// declined, revoked or expired); errors.Is(err, ErrInvalidState) holds for it. It names the
// status and the accepted user, so that a workflow run whose state is behind Postgres (it lost
// the workflow task that recorded a close its step had committed) can learn the outcome.
type ClosedError struct {
	Status contract.Status
	UserID *uuid.UUID
}

func (e *ClosedError) Error() string { return fmt.Sprintf("the invitation is already %s", e.Status) }

// Is makes a ClosedError an ErrInvalidState.
func (e *ClosedError) Is(target error) bool { return target == ErrInvalidState }

// DuplicateInvitationError says a pending invitation for the email already exists.
type DuplicateInvitationError struct{ ExistingID uuid.UUID }

func (e *DuplicateInvitationError) Error() string {
	return fmt.Sprintf("a pending invitation for this email and account exists: %s", e.ExistingID)
}

// lockInvitee serialises, for one person (by address) in one account, the transactions that
// create a pending invitation (create, renew) with those that make the person a member
// (accept): a re-invite racing an accept then sees the membership, and is refused, instead of
// reading the account before the accept commits and leaving a pending invitation for a member.
// Under Read Committed every statement after the lock sees what committed before it.
func lockInvitee(ctx context.Context, tx pgx.Tx, accountID uuid.UUID, email string) error {
	_, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtextextended($1::text || ':' || lower($2), 2))`, accountID, email)
	return err
}

// lockInviteeOf takes lockInvitee for invitation id's person, read first (account and address
// never change): the lock comes before the row's lock, in the order a create takes them.
func lockInviteeOf(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	var accountID uuid.UUID
	var email string
	err := tx.QueryRow(ctx, `select account_id, email from invitations where id = $1`, id).Scan(&accountID, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return lockInvitee(ctx, tx, accountID, email)
}

// refuseMember returns ErrAlreadyMember when the person (by user id or email) is an active
// member of the account.
func refuseMember(ctx context.Context, tx pgx.Tx, accountID uuid.UUID, userID *uuid.UUID, email string) error {
	var member bool
	err := tx.QueryRow(ctx, `
		select exists(select 1 from memberships m join users u on u.id = m.user_id
		where m.account_id = $1 and m.state = 'active' and (u.id = $2 or lower(u.email) = lower($3)))`,
		accountID, userID, email).Scan(&member)
	if err != nil {
		return err
	}
	if member {
		return ErrAlreadyMember
	}
	return nil
}

func reserveSeat(ctx context.Context, tx pgx.Tx, subscriptionID uuid.UUID) error {
	tag, err := tx.Exec(ctx, `update subscriptions set seats_reserved = seats_reserved + 1 where id = $1`, subscriptionID)
	if constraintOf(err) == "seats_not_oversubscribed" {
		return ErrSeatsExhausted
	}
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

func releaseSeat(ctx context.Context, tx pgx.Tx, subscriptionID uuid.UUID) error {
	_, err := tx.Exec(ctx, `update subscriptions set seats_reserved = seats_reserved - 1 where id = $1`, subscriptionID)
	return err
}

type lockedInvitation struct {
	status         contract.Status
	generation     int
	accountID      uuid.UUID
	subscriptionID uuid.UUID
	userID         *uuid.UUID
	email          string
	firstName      string
	lastName       string
	phone          string
	role           string
	groupIDs       []uuid.UUID
}

func lockInvitation(ctx context.Context, tx pgx.Tx, id uuid.UUID) (lockedInvitation, error) {
	var l lockedInvitation
	err := tx.QueryRow(ctx, `
		select status, generation, account_id, subscription_id, user_id, email, first_name, last_name, phone, role, group_ids
		from invitations where id = $1 for update`, id).
		Scan(&l.status, &l.generation, &l.accountID, &l.subscriptionID, &l.userID, &l.email, &l.firstName,
			&l.lastName, &l.phone, &l.role, &l.groupIDs)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, ErrNotFound
	}
	return l, err
}

// CloseInvitation moves generation's invitation to expired, revoked or declined, releasing the
// seat a pending invitation held. Repeating a close that already happened is not an error;
// changed says whether this call made the change.
func (s *Store) CloseInvitation(ctx context.Context, id uuid.UUID, generation int, to contract.Status, detail string) (changed bool, err error) {
	allowed := map[contract.Status][]contract.Status{
		contract.StatusExpired:  {contract.StatusPending},
		contract.StatusDeclined: {contract.StatusPending},
		contract.StatusRevoked:  {contract.StatusPending, contract.StatusExpired},
	}[to]
	if allowed == nil {
		return false, fmt.Errorf("close to %q: not a closing status", to)
	}
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		inv, err := lockInvitation(ctx, tx, id)
		if err != nil {
			return err
		}
		if inv.generation != generation {
			return ErrSuperseded
		}
		if inv.status == to {
			return nil
		}
		if !slices.Contains(allowed, inv.status) {
			return &ClosedError{Status: inv.status, UserID: inv.userID}
		}
		if inv.status == contract.StatusPending {
			if err := releaseSeat(ctx, tx, inv.subscriptionID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `update invitations set status = $2, updated_at = now() where id = $1`, id, to); err != nil {
			return err
		}
		changed = true
		return addEvent(ctx, tx, id, string(to), generation, detail)
	})
	return changed && err == nil, err
}

// RenewInvitation turns an expired invitation into a pending one of the next generation, with
// a new expiry and a seat reserved again.
func (s *Store) RenewInvitation(ctx context.Context, id uuid.UUID, generation int, expiresAt time.Time) error {
	var inv lockedInvitation
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockInviteeOf(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if inv, err = lockInvitation(ctx, tx, id); err != nil {
			return err
		}
		if inv.generation == generation && inv.status == contract.StatusPending {
			return nil // a retry of a renewal that committed
		}
		if inv.generation != generation-1 || inv.status != contract.StatusExpired {
			return ErrInvalidState
		}
		// The person may have joined through another invitation since this one expired.
		if err := refuseMember(ctx, tx, inv.accountID, inv.userID, inv.email); err != nil {
			return err
		}
		if err := reserveSeat(ctx, tx, inv.subscriptionID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update invitations set status = 'pending', generation = $2, expires_at = $3,
			sends = sends + case when send_email or sends > 0 then 1 else 0 end, updated_at = now() where id = $1`,
			id, generation, expiresAt)
		if constraintOf(err) == "invitations_one_pending" {
			return errPendingExists
		}
		if err != nil {
			return err
		}
		return addEvent(ctx, tx, id, contract.EventRenewed, generation, "new link valid until "+expiresAt.UTC().Format(time.RFC3339))
	})
	if errors.Is(err, errPendingExists) {
		return s.duplicateOf(ctx, inv.accountID, inv.email)
	}
	return err
}

// ProvisionUser accepts a pending invitation: it creates the user (or reuses the invited or an
// existing one with that email), the membership with role and groups, and turns the reserved
// seat into a used one. A repeat returns the same user with New false.
func (s *Store) ProvisionUser(ctx context.Context, id uuid.UUID, generation int, passwordHash string) (Provisioned, error) {
	var p Provisioned
	var userID uuid.UUID
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockInviteeOf(ctx, tx, id); err != nil {
			return err
		}
		inv, err := lockInvitation(ctx, tx, id)
		if err != nil {
			return err
		}
		if inv.status == contract.StatusAccepted && inv.userID != nil {
			userID = *inv.userID
			return nil
		}
		if inv.generation != generation {
			return ErrSuperseded
		}
		if inv.status != contract.StatusPending {
			return &ClosedError{Status: inv.status, UserID: inv.userID}
		}
		if userID, err = ensureUser(ctx, tx, id, inv, passwordHash); err != nil {
			return err
		}
		// The rest goes to Postgres in one round trip: a transaction that stays open across many
		// round trips is the one a failing connection catches, again and again.
		b := &pgx.Batch{}
		// An active membership that came another way is never overwritten (its role and groups
		// stay): the accept is refused, and the transaction rolls back.
		member := false
		b.Queue(`
			insert into memberships (account_id, user_id, role, group_ids, state, invitation_id, metadata)
			values ($1, $2, $3, $4, 'active', $5, (select metadata from invitations where id = $5))
			on conflict (account_id, user_id) do update
			set role = excluded.role, group_ids = excluded.group_ids, state = 'active', invitation_id = excluded.invitation_id,
				metadata = excluded.metadata
			where memberships.state <> 'active' or memberships.invitation_id = excluded.invitation_id
			returning true`,
			inv.accountID, userID, inv.role, inv.groupIDs, id).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&member)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		// The reserved seat becomes a used one; if the user already held a seat, it is just freed.
		b.Queue(`
			with seat as (
				insert into seats (subscription_id, user_id, invitation_id) values ($1, $2, $3)
				on conflict (subscription_id, user_id) do nothing returning 1)
			update subscriptions set seats_reserved = seats_reserved - 1, seats_used = seats_used + (select count(*) from seat)
			where id = $1`, inv.subscriptionID, userID, id)
		b.Queue(`update invitations set status = 'accepted', user_id = $2, updated_at = now() where id = $1`, id, userID)
		b.Queue(`select coalesce(min(e.sent_at), i.created_at) from invitations i
			left join emails e on e.invitation_id = i.id and e.kind = 'invite' and e.sent_at is not null
			where i.id = $1 group by i.created_at`, id).QueryRow(func(row pgx.Row) error { return row.Scan(&p.FirstSentAt) })
		queueEvent(b, id, string(contract.StatusAccepted), generation, "user "+userID.String()+" joined as "+inv.role)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if !member {
			return ErrAlreadyMember
		}
		p.New = true
		return nil
	})
	p.UserID = userID
	if err != nil {
		return Provisioned{}, err
	}
	return p, nil
}

// Provisioned is the outcome of ProvisionUser.
type Provisioned struct {
	UserID uuid.UUID
	// New is false when an earlier attempt had already provisioned the user.
	New bool
	// FirstSentAt is when the first invite email went out (the invitation's creation if none did).
	FirstSentAt time.Time
}

func ensureUser(ctx context.Context, tx pgx.Tx, invitationID uuid.UUID, inv lockedInvitation, passwordHash string) (uuid.UUID, error) {
	if inv.userID != nil {
		return *inv.userID, nil
	}
	var hash *string
	if passwordHash != "" {
		hash = &passwordHash
	}
	// The new user's id derives from the invitation, so the row is the same whoever inserts it.
	// One statement: the inserted row, or the one that already has the address.
	newID := uuid.NewSHA1(invitationID, []byte("user"))
	var id uuid.UUID
	err := tx.QueryRow(ctx, `
		with inserted as (
			insert into users (id, email, first_name, last_name, phone, password_hash)
			values ($1, $2, $3, $4, $5, $6) on conflict (lower(email)) do nothing returning id)
		select id from inserted
		union all
		select id from users where lower(email) = lower($2)
		limit 1`,
		newID, inv.email, inv.firstName, inv.lastName, inv.phone, hash).Scan(&id)
	return id, err
}

// AddEvent appends an entry to an invitation's story once per dedupe key.
func (s *Store) AddEvent(ctx context.Context, invitationID uuid.UUID, typ, dedupeKey, detail string) error {
	_, err := s.Pool.Exec(ctx, eventInsert, invitationID, typ, detail, dedupeKey, publicArg(contract.PublicTypeOf(typ)))
	return err
}

func addEvent(ctx context.Context, tx pgx.Tx, id uuid.UUID, typ string, generation int, detail string) error {
	_, err := tx.Exec(ctx, eventInsert, id, typ, detail, eventKey(id, generation, typ), publicArg(contract.PublicTypeOf(typ)))
	return err
}

// queueEvent is addEvent as part of a batch.
func queueEvent(b *pgx.Batch, id uuid.UUID, typ string, generation int, detail string) {
	b.Queue(eventInsert, id, typ, detail, eventKey(id, generation, typ), publicArg(contract.PublicTypeOf(typ)))
}

// eventKey makes a lifecycle event appear once per invitation generation however often its
// transaction is retried.
func eventKey(id uuid.UUID, generation int, typ string) string {
	return fmt.Sprintf("%s:g%d:%s", id, generation, typ)
}
