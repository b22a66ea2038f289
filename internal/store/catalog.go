package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrDuplicateGroup is returned when an account already has a group with the name.
var ErrDuplicateGroup = errors.New("a group with this name exists in the account")

// Account is a customer account.
type Account struct {
	ID        uuid.UUID
	Name      string
	CreatedAt time.Time
}

// Subscription is an account's subscription of one application, with its seat counts.
type Subscription struct {
	ID            uuid.UUID
	AccountID     uuid.UUID
	Application   string
	Name          string
	Seats         int
	SeatsUsed     int
	SeatsReserved int // held by pending invitations
	Roles         []string
	CreatedAt     time.Time
}

// SeatsAvailable is the number of seats neither assigned nor held by a pending invitation.
func (s Subscription) SeatsAvailable() int {
	return max(s.Seats-s.SeatsUsed-s.SeatsReserved, 0)
}

// HasRole reports whether role is one of the subscription's roles.
func (s Subscription) HasRole(role string) bool {
	for _, r := range s.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Group is a group of users inside an account.
type Group struct {
	ID        uuid.UUID
	AccountID uuid.UUID
	Name      string
	CreatedAt time.Time
}

// User is a person known to the system.
type User struct {
	ID        uuid.UUID
	Email     string
	FirstName string
	LastName  string
	Phone     string
}

// APIToken identifies a caller of the portal API.
type APIToken struct {
	ID   uuid.UUID
	Name string
	// AccountID limits the token to one account; nil means the portal itself, any account.
	AccountID *uuid.UUID
}

// Allows reports whether the token may act on account.
func (t APIToken) Allows(account uuid.UUID) bool {
	return t.AccountID == nil || *t.AccountID == account
}

// newRowID returns a time-ordered id, so new rows land at the end of their indexes.
func newRowID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// CreateAccount inserts an account.
func (s *Store) CreateAccount(ctx context.Context, name string) (Account, error) {
	a := Account{ID: newRowID(), Name: name}
	err := s.Pool.QueryRow(ctx, `insert into accounts (id, name) values ($1, $2) returning created_at`,
		a.ID, a.Name).Scan(&a.CreatedAt)
	return a, err
}

// GetAccount returns an account, or ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (Account, error) {
	a := Account{ID: id}
	err := s.Pool.QueryRow(ctx, `select name, created_at from accounts where id = $1`, id).Scan(&a.Name, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// CreateSubscription inserts a subscription with no seat taken.
func (s *Store) CreateSubscription(ctx context.Context, accountID uuid.UUID, application, name string, seats int, roles []string) (Subscription, error) {
	sub := Subscription{ID: newRowID(), AccountID: accountID, Application: application, Name: name, Seats: seats, Roles: roles}
	err := s.Pool.QueryRow(ctx, `
		insert into subscriptions (id, account_id, application, name, seats, roles)
		values ($1, $2, $3, $4, $5, $6) returning created_at`,
		sub.ID, accountID, application, name, seats, roles).Scan(&sub.CreatedAt)
	return sub, err
}

// GetSubscription returns a subscription of the account, or ErrNotFound (also when it
// belongs to another account, so callers cannot probe other accounts' ids).
func (s *Store) GetSubscription(ctx context.Context, accountID, id uuid.UUID) (Subscription, error) {
	sub := Subscription{ID: id, AccountID: accountID}
	err := s.Pool.QueryRow(ctx, `
		select application, name, seats, seats_used, seats_reserved, roles, created_at
		from subscriptions where id = $1 and account_id = $2`, id, accountID).
		Scan(&sub.Application, &sub.Name, &sub.Seats, &sub.SeatsUsed, &sub.SeatsReserved, &sub.Roles, &sub.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, ErrNotFound
	}
	return sub, err
}

// CreateGroup inserts a group, or returns ErrDuplicateGroup when the account has one with
// this name.
func (s *Store) CreateGroup(ctx context.Context, accountID uuid.UUID, name string) (Group, error) {
	g := Group{ID: newRowID(), AccountID: accountID, Name: name}
	err := s.Pool.QueryRow(ctx, `insert into groups (id, account_id, name) values ($1, $2, $3) returning created_at`,
		g.ID, accountID, name).Scan(&g.CreatedAt)
	if isCode(err, "23505") { // unique_violation on (account_id, name)
		return g, ErrDuplicateGroup
	}
	return g, err
}

// GroupsNotInAccount returns those of ids that are not groups of the account, in their order.
func (s *Store) GroupsNotInAccount(ctx context.Context, accountID uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.Pool.Query(ctx, `
		select g.id from unnest($2::uuid[]) with ordinality as g(id, n)
		where not exists (select 1 from groups where groups.id = g.id and groups.account_id = $1)
		order by g.n`, accountID, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// GetUser returns a user by id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	u := User{ID: id}
	err := s.Pool.QueryRow(ctx, `select email, first_name, last_name, phone from users where id = $1`, id).
		Scan(&u.Email, &u.FirstName, &u.LastName, &u.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

// UserExistsWithEmail reports whether a user has this email, compared case-insensitively as
// the users_email index does.
func (s *Store) UserExistsWithEmail(ctx context.Context, email string) (bool, error) {
	var exists bool
	err := s.Pool.QueryRow(ctx, `select exists(select 1 from users where lower(email) = lower($1))`, email).Scan(&exists)
	return exists, err
}

// apiTokenHash is what is stored of a token: its SHA-256. Tokens are random and long, so a
// plain hash suffices (no salt or stretching is needed against guessing).
func apiTokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// EnsureAPIToken records a token (its hash only) under name, scoped to accountID when it is
// not nil. It does nothing when the token is already recorded, revoked or not, so it can run
// at every start.
func (s *Store) EnsureAPIToken(ctx context.Context, name, token string, accountID *uuid.UUID) error {
	if token == "" {
		return errors.New("empty API token")
	}
	_, err := s.Pool.Exec(ctx, `
		insert into api_tokens (id, name, token_hash, account_id) values ($1, $2, $3, $4)
		on conflict (token_hash) do nothing`, newRowID(), name, apiTokenHash(token), accountID)
	return err
}

// LookupAPIToken returns the unrevoked token with this value, or ErrNotFound.
func (s *Store) LookupAPIToken(ctx context.Context, token string) (APIToken, error) {
	var t APIToken
	err := s.Pool.QueryRow(ctx, `select id, name, account_id from api_tokens where token_hash = $1 and revoked_at is null`,
		apiTokenHash(token)).Scan(&t.ID, &t.Name, &t.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// UserPasswordHash returns the existing user an invitation names (by id, else by address) and
// their password hash ("" when they have none).
func (s *Store) UserPasswordHash(ctx context.Context, userID *uuid.UUID, email string) (uuid.UUID, string, error) {
	var id uuid.UUID
	var hash *string
	err := s.Pool.QueryRow(ctx, `select id, password_hash from users where ($1::uuid is not null and id = $1)
		or ($1::uuid is null and lower(email) = lower($2)) limit 1`, userID, email).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, "", ErrNotFound
	}
	if err != nil || hash == nil {
		return id, "", err
	}
	return id, *hash, nil
}
