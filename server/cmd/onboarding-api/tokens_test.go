package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

type fakeTokens struct {
	list    []store.APITokenInfo
	created map[string]uuid.UUID // token -> id
}

func (f *fakeTokens) CreateAPIToken(_ context.Context, name string, accountID *uuid.UUID) (store.APIToken, string, error) {
	if accountID != nil && *accountID == uuid.Nil {
		return store.APIToken{}, "", store.ErrNotFound
	}
	t := store.APIToken{ID: uuid.New(), Name: name, AccountID: accountID}
	token := store.NewAPITokenValue()
	f.created[token] = t.ID
	f.list = append(f.list, store.APITokenInfo{APIToken: t, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	return t, token, nil
}

func (f *fakeTokens) ListAPITokens(context.Context) ([]store.APITokenInfo, error) { return f.list, nil }

func (f *fakeTokens) RevokeAPIToken(_ context.Context, id uuid.UUID) (store.APITokenInfo, error) {
	for i, t := range f.list {
		if t.ID == id {
			if t.RevokedAt != nil {
				return t, store.ErrAlreadyRevoked
			}
			now := time.Now()
			f.list[i].RevokedAt = &now
			return f.list[i], nil
		}
	}
	return store.APITokenInfo{}, store.ErrNotFound
}

func tokens(t *testing.T, st tokenStore, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runTokens(context.Background(), st, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestTokensCommands(t *testing.T) {
	st := &fakeTokens{created: map[string]uuid.UUID{}}
	out, msg, err := tokens(t, st, "create", "--name", "portal")
	token := strings.TrimSpace(out)
	if err != nil || !store.LooksLikeAPIToken(token) || strings.Count(out, "\n") != 1 {
		t.Fatalf("create: stdout %q, err %v", out, err)
	}
	if strings.Contains(msg, token) || !strings.Contains(msg, "only this once") || !strings.Contains(msg, "all accounts") {
		t.Fatalf("create: stderr %q", msg)
	}
	account := uuid.New()
	out, msg, err = tokens(t, st, "create", "--name=acme-admin", "--account", account.String())
	if err != nil || !strings.Contains(msg, "account "+account.String()) || !store.LooksLikeAPIToken(strings.TrimSpace(out)) {
		t.Fatalf("scoped create: %q %q %v", out, msg, err)
	}
	if _, _, err := tokens(t, st, "create", "--name", "x", "--account", uuid.Nil.String()); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("unknown account: %v", err)
	}
	if _, _, err := tokens(t, st, "create", "--name", "x", "--account", "acme"); err == nil {
		t.Fatal("a malformed account id was taken")
	}

	out, _, err = tokens(t, st, "list")
	if err != nil || !strings.Contains(out, "portal") || !strings.Contains(out, "all accounts") ||
		!strings.Contains(out, "account "+account.String()) || !strings.Contains(out, "2026-01-02T03:04:05Z") {
		t.Fatalf("list: %q %v", out, err)
	}
	if strings.Contains(out, token) || strings.Contains(out, "onb_") {
		t.Fatalf("list shows a token: %s", out)
	}

	id := st.created[token]
	if _, msg, err = tokens(t, st, "revoke", id.String()); err != nil || !strings.Contains(msg, "Revoked") {
		t.Fatalf("revoke: %q %v", msg, err)
	}
	if _, msg, err = tokens(t, st, "revoke", id.String()); err != nil || !strings.Contains(msg, "already revoked") {
		t.Fatalf("second revoke: %q %v", msg, err)
	}
	out, _, _ = tokens(t, st, "list")
	if !strings.Contains(out, "portal") || strings.Count(out, "\n") != 3 {
		t.Fatalf("list after revoke: %s", out)
	}
	if _, _, err := tokens(t, st, "revoke", uuid.NewString()); err == nil || !strings.Contains(err.Error(), "no API token") {
		t.Fatalf("unknown id: %v", err)
	}

	for _, bad := range [][]string{nil, {"mint"}, {"create"}, {"create", "--name"}, {"create", "--name", "a", "extra"},
		{"list", "x"}, {"revoke"}, {"revoke", "a", "b"}} {
		if _, _, err := tokens(t, st, bad...); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want usage", bad, err)
		}
	}
}
