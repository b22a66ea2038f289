package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/accountpolicy"
)

// An account without settings has empty lists; a put replaces both lists (an upsert), per
// account; an unknown account cannot have settings.
func TestAccountSettings(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	other, _ := s.CreateAccount(ctx, "Other")

	got, err := s.AccountSettings(ctx, acc.ID)
	if err != nil || got.AllowedEmailDomains == nil || got.AllowedRedirectOrigins == nil ||
		len(got.AllowedEmailDomains) != 0 || len(got.AllowedRedirectOrigins) != 0 {
		t.Fatalf("default settings = %#v, %v", got, err)
	}

	put := accountpolicy.Settings{
		AllowedEmailDomains:    []string{"acme.com", "xn--bcher-kva.example"},
		AllowedRedirectOrigins: []string{"https://app.acme.com", "http://localhost:3000"},
	}
	if err := s.PutAccountSettings(ctx, acc.ID, put); err != nil {
		t.Fatal(err)
	}
	got, err = s.AccountSettings(ctx, acc.ID)
	if err != nil || !slices.Equal(got.AllowedEmailDomains, put.AllowedEmailDomains) ||
		!slices.Equal(got.AllowedRedirectOrigins, put.AllowedRedirectOrigins) {
		t.Fatalf("settings = %#v, %v; want %#v", got, err, put)
	}

	// A second put replaces both lists; nil lists are stored as empty ones.
	before := updatedAt(t, s, acc.ID)
	if err := s.PutAccountSettings(ctx, acc.ID, accountpolicy.Settings{AllowedEmailDomains: []string{"globex.example"}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.AccountSettings(ctx, acc.ID)
	if err != nil || !slices.Equal(got.AllowedEmailDomains, []string{"globex.example"}) ||
		got.AllowedRedirectOrigins == nil || len(got.AllowedRedirectOrigins) != 0 {
		t.Fatalf("settings after the second put = %#v, %v", got, err)
	}
	if after := updatedAt(t, s, acc.ID); after.Before(before) {
		t.Errorf("updated_at went back: %s then %s", before, after)
	}
	var rows int
	if err := s.Pool.QueryRow(ctx, `select count(*) from account_settings where account_id = $1`, acc.ID).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows for the account, %v", rows, err)
	}

	// Settings are per account.
	if got, err := s.AccountSettings(ctx, other.ID); err != nil || len(got.AllowedEmailDomains) != 0 || len(got.AllowedRedirectOrigins) != 0 {
		t.Fatalf("the other account's settings = %#v, %v", got, err)
	}

	if err := s.PutAccountSettings(ctx, uuid.New(), put); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put for an unknown account: %v, want ErrNotFound", err)
	}
	if got, err := s.AccountSettings(ctx, uuid.New()); err != nil || got.AllowedEmailDomains == nil {
		t.Fatalf("an unknown account's settings = %#v, %v", got, err)
	}
}

func updatedAt(t *testing.T, s *Store, accountID uuid.UUID) time.Time {
	t.Helper()
	var at time.Time
	if err := s.Pool.QueryRow(t.Context(), `select updated_at from account_settings where account_id = $1`, accountID).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}
