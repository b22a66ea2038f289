package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAPITokenCommands(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}

	portal, portalToken, err := s.CreateAPIToken(ctx, " portal ", nil)
	if err != nil {
		t.Fatal(err)
	}
	scoped, scopedToken, err := s.CreateAPIToken(ctx, "acme-admin", &acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{portalToken, scopedToken} {
		if !LooksLikeAPIToken(tok) || !strings.HasPrefix(tok, "onb_") || len(tok) != 4+64 {
			t.Fatalf("token %q has not the documented shape", tok)
		}
	}
	if portalToken == scopedToken || portal.Name != "portal" {
		t.Fatalf("tokens %+v %+v", portal, scoped)
	}
	if got, err := s.LookupAPIToken(ctx, scopedToken); err != nil || got.ID != scoped.ID || got.AccountID == nil || *got.AccountID != acc.ID {
		t.Fatalf("lookup = %+v %v", got, err)
	}
	// Only the hash is stored.
	var stored int
	if err := s.Pool.QueryRow(ctx, `select count(*) from api_tokens where position($1::bytea in token_hash) > 0 or name = $2`,
		[]byte(portalToken), portalToken).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the token is stored in clear (%d rows, %v)", stored, err)
	}

	if _, _, err := s.CreateAPIToken(ctx, "ghost", new(uuid.New())); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a token for an unknown account: %v", err)
	}
	if _, _, err := s.CreateAPIToken(ctx, "  ", nil); err == nil {
		t.Fatal("a nameless token was created")
	}

	list, err := s.ListAPITokens(ctx)
	if err != nil || len(list) != 2 || list[0].ID != portal.ID || list[1].AccountID == nil || list[0].RevokedAt != nil {
		t.Fatalf("list = %+v %v", list, err)
	}

	revoked, err := s.RevokeAPIToken(ctx, portal.ID)
	if err != nil || revoked.RevokedAt == nil || revoked.Name != "portal" {
		t.Fatalf("revoke = %+v %v", revoked, err)
	}
	if _, err := s.LookupAPIToken(ctx, portalToken); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a revoked token still works: %v", err)
	}
	again, err := s.RevokeAPIToken(ctx, portal.ID)
	if !errors.Is(err, ErrAlreadyRevoked) || again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("second revoke = %+v %v", again, err)
	}
	if _, err := s.RevokeAPIToken(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	// Ensuring the bootstrap token again does not bring a revoked token back.
	if err := s.EnsureAPIToken(ctx, "bootstrap", portalToken, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIToken(ctx, portalToken); !errors.Is(err, ErrNotFound) {
		t.Fatal("EnsureAPIToken revived a revoked token")
	}
	if _, err := s.LookupAPIToken(ctx, scopedToken); err != nil {
		t.Fatalf("revoking one token touched another: %v", err)
	}
}
