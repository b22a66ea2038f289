package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// APITokenPrefix starts every generated API token, so a leaked one is recognisable (secret
// scanners, log reviews) and cannot be mistaken for an invite token.
const APITokenPrefix = "onb_"

// apiTokenRandomBytes is the randomness of a generated token: 256 bits.
const apiTokenRandomBytes = 32

// ErrAlreadyRevoked is returned when revoking a token that is already revoked.
var ErrAlreadyRevoked = errors.New("the API token is already revoked")

// APITokenInfo describes a stored API token; the token itself is never stored, so never shown.
type APITokenInfo struct {
	APIToken
	CreatedAt time.Time
	RevokedAt *time.Time
}

// NewAPITokenValue returns a fresh token: the prefix and 256 random bits in hex.
func NewAPITokenValue() string {
	b := make([]byte, apiTokenRandomBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return APITokenPrefix + hex.EncodeToString(b)
}

// LooksLikeAPIToken reports whether s has the shape of a generated token (not whether it is
// valid): tooling uses it to flag a token pasted where it does not belong.
func LooksLikeAPIToken(s string) bool {
	rest, ok := strings.CutPrefix(s, APITokenPrefix)
	if !ok || len(rest) != 2*apiTokenRandomBytes {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// CreateAPIToken generates a token named name, scoped to accountID when it is not nil (the
// account must exist), records its hash and returns it with the token. The token is returned
// here only: the caller shows it once.
func (s *Store) CreateAPIToken(ctx context.Context, name string, accountID *uuid.UUID) (APIToken, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return APIToken{}, "", errors.New("an API token needs a name")
	}
	if accountID != nil {
		if _, err := s.GetAccount(ctx, *accountID); err != nil {
			return APIToken{}, "", err
		}
	}
	token := NewAPITokenValue()
	t := APIToken{ID: newRowID(), Name: name, AccountID: accountID}
	_, err := s.Pool.Exec(ctx, `insert into api_tokens (id, name, token_hash, account_id) values ($1, $2, $3, $4)`,
		t.ID, t.Name, apiTokenHash(token), accountID)
	if err != nil {
		return APIToken{}, "", err
	}
	return t, token, nil
}

// ListAPITokens returns every token, revoked ones included, oldest first.
func (s *Store) ListAPITokens(ctx context.Context) ([]APITokenInfo, error) {
	rows, err := s.Pool.Query(ctx, `select id, name, account_id, created_at, revoked_at from api_tokens order by created_at, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (APITokenInfo, error) {
		var t APITokenInfo
		err := row.Scan(&t.ID, &t.Name, &t.AccountID, &t.CreatedAt, &t.RevokedAt)
		return t, err
	})
}

// RevokeAPIToken revokes a token by id, at once for every API replica (each request looks the
// token up). It returns ErrNotFound for an unknown id and ErrAlreadyRevoked when it was revoked.
func (s *Store) RevokeAPIToken(ctx context.Context, id uuid.UUID) (APITokenInfo, error) {
	var t APITokenInfo
	var wasRevoked bool
	err := s.Pool.QueryRow(ctx, `
		with before as (select id, revoked_at from api_tokens where id = $1 for update)
		update api_tokens t set revoked_at = coalesce(t.revoked_at, now()) from before where t.id = before.id
		returning t.id, t.name, t.account_id, t.created_at, t.revoked_at, before.revoked_at is not null`, id).
		Scan(&t.ID, &t.Name, &t.AccountID, &t.CreatedAt, &t.RevokedAt, &wasRevoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	if err == nil && wasRevoked {
		err = ErrAlreadyRevoked
	}
	return t, err
}
