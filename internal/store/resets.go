package store

import (
	"context"
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrResetLinkDead means a password-reset link was used, expired or superseded.
var ErrResetLinkDead = errors.New("password-reset link used, expired or superseded")

// PasswordReset is a user's newest reset link, with what its email needs.
type PasswordReset struct {
	UserID      uuid.UUID
	Email       string
	FirstName   string
	Generation  int
	ExpiresAt   time.Time
	Used        bool
	EmailStatus contract.DeliveryStatus
}

// Live reports whether the link of generation gen can still set a password at now.
func (r PasswordReset) Live(gen int, now time.Time) bool {
	return r.Generation == gen && !r.Used && now.Before(r.ExpiresAt)
}

// IssuePasswordReset issues the next reset link of the user with this address, valid for ttl
// from now (the database's clock), superseding any earlier one. Found is false when no user has
// the address; then nothing is written.
func (s *Store) IssuePasswordReset(ctx context.Context, email string, ttl time.Duration) (contract.PasswordResetIssued, error) {
	var out contract.PasswordResetIssued
	err := s.Pool.QueryRow(ctx, `
		insert into password_resets (user_id, generation, expires_at)
		select id, 1, now() + make_interval(secs => $2) from users where lower(email) = lower($1)
		on conflict (user_id) do update set generation = password_resets.generation + 1,
			requested_at = now(), expires_at = excluded.expires_at, used_at = null,
			email_status = 'queued', email_error = '', provider_id = ''
		returning user_id, generation, expires_at`, email, ttl.Seconds()).Scan(&out.UserID, &out.Generation, &out.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return contract.PasswordResetIssued{}, nil
	}
	out.Found = err == nil
	return out, err
}

// GetPasswordReset returns a user's newest reset link; ErrNotFound when they never asked.
func (s *Store) GetPasswordReset(ctx context.Context, userID uuid.UUID) (PasswordReset, error) {
	var r PasswordReset
	err := s.Pool.QueryRow(ctx, `
		select r.user_id, u.email, u.first_name, r.generation, r.expires_at, r.used_at is not null, r.email_status
		from password_resets r join users u on u.id = r.user_id where r.user_id = $1`, userID).
		Scan(&r.UserID, &r.Email, &r.FirstName, &r.Generation, &r.ExpiresAt, &r.Used, &r.EmailStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// ConfirmPasswordReset sets the user's password with the link of generation gen and uses the
// link up, in one statement. A link that is used, expired or superseded is ErrResetLinkDead,
// except for the same confirm again (a retry whose first answer was lost), which succeeds.
func (s *Store) ConfirmPasswordReset(ctx context.Context, userID uuid.UUID, gen int, passwordHash string) error {
	var one int
	err := s.Pool.QueryRow(ctx, `
		with link as (
			update password_resets set used_at = now()
			where user_id = $1 and generation = $2 and used_at is null and expires_at > now()
			returning user_id)
		update users set password_hash = $3 from link where users.id = link.user_id returning 1`,
		userID, gen, passwordHash).Scan(&one)
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var done bool
	err = s.Pool.QueryRow(ctx, `
		select exists(select 1 from password_resets r join users u on u.id = r.user_id
			where r.user_id = $1 and r.generation = $2 and r.used_at is not null and u.password_hash = $3)`,
		userID, gen, passwordHash).Scan(&done)
	if err == nil && !done {
		err = ErrResetLinkDead
	}
	return err
}

// FinishPasswordResetEmail records the delivery of the reset email of generation gen (a
// superseded generation's outcome is not recorded over the newer one's).
func (s *Store) FinishPasswordResetEmail(ctx context.Context, userID uuid.UUID, gen int, status contract.DeliveryStatus, providerID, errMsg string) error {
	_, err := s.Pool.Exec(ctx, `update password_resets set email_status = $3, provider_id = $4, email_error = $5
		where user_id = $1 and generation = $2`, userID, gen, string(status), providerID, errMsg)
	return err
}
