package store

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/onboarding-service/onboarding/internal/accountpolicy"
)

// An account's settings (table account_settings): the email domains it may invite and the
// origins its invitations may redirect to. The store keeps the lists as given; the API
// normalises them (internal/accountpolicy) before they are put.

// AccountSettings returns the account's settings; an account that never put any has both
// lists empty (never nil).
func (s *Store) AccountSettings(ctx context.Context, accountID uuid.UUID) (accountpolicy.Settings, error) {
	var st accountpolicy.Settings
	err := s.Pool.QueryRow(ctx, `select allowed_email_domains, allowed_redirect_origins from account_settings
		where account_id = $1`, accountID).Scan(&st.AllowedEmailDomains, &st.AllowedRedirectOrigins)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return accountpolicy.Settings{}, err
	}
	return nonNilSettings(st), nil
}

// PutAccountSettings replaces the account's settings; ErrNotFound when the account does not
// exist.
func (s *Store) PutAccountSettings(ctx context.Context, accountID uuid.UUID, st accountpolicy.Settings) error {
	st = nonNilSettings(st)
	_, err := s.Pool.Exec(ctx, `
		insert into account_settings (account_id, allowed_email_domains, allowed_redirect_origins)
		values ($1, $2, $3)
		on conflict (account_id) do update set allowed_email_domains = excluded.allowed_email_domains,
			allowed_redirect_origins = excluded.allowed_redirect_origins, updated_at = now()`,
		accountID, st.AllowedEmailDomains, st.AllowedRedirectOrigins)
	if constraintOf(err) == "account_settings_account_id_fkey" {
		return ErrNotFound
	}
	return err
}

// nonNilSettings gives the settings empty lists where they have none (a nil slice is SQL
// null, and JSON null).
func nonNilSettings(st accountpolicy.Settings) accountpolicy.Settings {
	if st.AllowedEmailDomains == nil {
		st.AllowedEmailDomains = []string{}
	}
	if st.AllowedRedirectOrigins == nil {
		st.AllowedRedirectOrigins = []string{}
	}
	return st
}
