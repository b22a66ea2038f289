package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"

	"github.com/google/uuid"
)

// catalogTestStore opens a fresh, migrated database of its own on the Postgres server of
// DATABASE_URL (or the default), dropped when the test ends. Without a reachable server
// the test is skipped: `make test` starts one.
func catalogTestStore(t *testing.T) *Store {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	u.Path = "/onboarding_store_" + hex.EncodeToString(suffix)
	dbURL := u.String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := migrations.EnsureDatabase(ctx, dbURL); err != nil {
		t.Fatalf("no Postgres for store tests (make test starts it): %v", err)
	}
	t.Cleanup(func() { _ = testdb.Drop(context.Background(), dbURL) })
	if err := migrations.Apply(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestCatalog(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccount(ctx, acc.ID); err != nil || got.Name != "Acme" {
		t.Fatalf("GetAccount = %+v %v", got, err)
	}
	if _, err := s.GetAccount(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}

	sub, err := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 3, []string{"admin", "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `update subscriptions set seats_used = 1, seats_reserved = 1 where id = $1`, sub.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSubscription(ctx, acc.ID, sub.ID)
	if err != nil || got.SeatsAvailable() != 1 || !got.HasRole("viewer") || got.HasRole("owner") {
		t.Fatalf("GetSubscription = %+v %v", got, err)
	}
	other, _ := s.CreateAccount(ctx, "Other")
	if _, err := s.GetSubscription(ctx, other.ID, sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("subscription of another account: %v", err)
	}

	g, err := s.CreateGroup(ctx, acc.ID, "Ops")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, acc.ID, "Ops"); !errors.Is(err, ErrDuplicateGroup) {
		t.Fatalf("duplicate group: %v", err)
	}
	if _, err := s.CreateGroup(ctx, other.ID, "Ops"); err != nil {
		t.Fatalf("same name in another account: %v", err)
	}
	stranger, unknown := uuid.New(), uuid.New()
	theirs, _ := s.CreateGroup(ctx, other.ID, "Theirs")
	missing, err := s.GroupsNotInAccount(ctx, acc.ID, []uuid.UUID{stranger, g.ID, theirs.ID, unknown})
	if err != nil || len(missing) != 3 || missing[0] != stranger || missing[1] != theirs.ID || missing[2] != unknown {
		t.Fatalf("GroupsNotInAccount = %v %v", missing, err)
	}
}

func TestAPITokens(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	if err := s.EnsureAPIToken(ctx, "bootstrap", "tok-1", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureAPIToken(ctx, "bootstrap", "tok-1", nil); err != nil {
		t.Fatalf("not idempotent: %v", err)
	}
	if err := s.EnsureAPIToken(ctx, "acme", "tok-2", &acc.ID); err != nil {
		t.Fatal(err)
	}
	tok, err := s.LookupAPIToken(ctx, "tok-1")
	if err != nil || tok.Name != "bootstrap" || tok.AccountID != nil || !tok.Allows(acc.ID) {
		t.Fatalf("tok-1 = %+v %v", tok, err)
	}
	tok, err = s.LookupAPIToken(ctx, "tok-2")
	if err != nil || tok.AccountID == nil || *tok.AccountID != acc.ID || tok.Allows(uuid.New()) {
		t.Fatalf("tok-2 = %+v %v", tok, err)
	}
	var stored int
	_ = s.Pool.QueryRow(ctx, `select count(*) from api_tokens where token_hash = 'tok-1'::bytea`).Scan(&stored)
	if stored != 0 {
		t.Fatal("the token itself is stored")
	}
	if _, err := s.Pool.Exec(ctx, `update api_tokens set revoked_at = now() where name = 'acme'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIToken(ctx, "tok-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.LookupAPIToken(ctx, "tok-3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

// seedInvitation inserts an invitation row directly; the lifecycle writes are not under test.
func seedInvitation(t *testing.T, s *Store, accountID, subID uuid.UUID, email, status string, created time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := s.Pool.Exec(t.Context(), `
		insert into invitations (id, account_id, subscription_id, application, role, email, first_name, last_name,
			status, expires_at, created_at, updated_at)
		values ($1, $2, $3, 'analytics', 'viewer', $4, 'F', 'L', $5, $6, $7, $7)`,
		id, accountID, subID, email, status, created.Add(time.Hour), created)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestInvitationQueries(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 50, []string{"viewer"})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []uuid.UUID
	for i := range 7 {
		status := "expired"
		if i%2 == 0 {
			status = "revoked"
		}
		ids = append(ids, seedInvitation(t, s, acc.ID, sub.ID, "p@acme.test", status, start.Add(time.Duration(i)*time.Minute)))
	}
	// Two rows with one created_at: the id breaks the tie, and paging must not skip either.
	twin := seedInvitation(t, s, acc.ID, sub.ID, "twin@acme.test", "revoked", start.Add(3*time.Minute))
	pending := seedInvitation(t, s, acc.ID, sub.ID, "Jane@Acme.test", "pending", start.Add(time.Hour))

	if id, err := s.PendingInvitationID(ctx, acc.ID, "jane@acme.TEST"); err != nil || id != pending {
		t.Fatalf("PendingInvitationID = %v %v", id, err)
	}
	if _, err := s.PendingInvitationID(ctx, acc.ID, "p@acme.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no pending: %v", err)
	}

	seen := map[uuid.UUID]bool{}
	var cursor *Cursor
	var last *Invitation
	for pages := 0; ; pages++ {
		items, next, err := s.ListInvitations(ctx, acc.ID, "", "", 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for i := range items {
			inv := items[i]
			if seen[inv.ID] {
				t.Fatalf("%s listed twice", inv.ID)
			}
			seen[inv.ID] = true
			if last != nil && (inv.CreatedAt.After(last.CreatedAt) || inv.CreatedAt.Equal(last.CreatedAt) && inv.ID.String() > last.ID.String()) {
				t.Fatalf("order broken at %s", inv.ID)
			}
			last = &inv
		}
		if next == nil {
			if pages != 2 {
				t.Errorf("%d pages for 9 rows by 3", pages+1)
			}
			break
		}
		cursor = next
	}
	if len(seen) != 9 || !seen[twin] || !seen[pending] {
		t.Fatalf("listed %d of 9", len(seen))
	}

	items, next, err := s.ListInvitations(ctx, acc.ID, "expired", "P@ACME.test", 10, nil)
	if err != nil || len(items) != 3 || next != nil {
		t.Fatalf("filtered = %d %v %v", len(items), next, err)
	}
	if items[0].ID != ids[5] || items[0].AccountName != "Acme" || items[0].Subscription != "Team" {
		t.Fatalf("first = %+v", items[0])
	}
	if items, _, _ := s.ListInvitations(ctx, uuid.New(), "", "", 10, nil); len(items) != 0 || items == nil {
		t.Fatalf("other account: %v", items)
	}
}

func TestClaimIdempotencyKey(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc := uuid.New()
	hash := []byte("hash-a")

	const n = 8
	var wg sync.WaitGroup
	got := make([]uuid.UUID, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var same bool
			got[i], same, errs[i] = s.ClaimIdempotencyKey(ctx, acc, "key-1", hash, uuid.New())
			if !same {
				errs[i] = errors.New("same request reported different")
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("claim %d = %s %v, want %s", i, got[i], errs[i], got[0])
		}
	}
	id, same, err := s.ClaimIdempotencyKey(ctx, acc, "key-1", []byte("hash-b"), uuid.New())
	if err != nil || same || id != got[0] {
		t.Fatalf("different body = %s %v %v", id, same, err)
	}
	proposed := uuid.New()
	if id, same, err := s.ClaimIdempotencyKey(ctx, uuid.New(), "key-1", hash, proposed); err != nil || !same || id != proposed {
		t.Fatalf("keys are not per account: %s %v %v", id, same, err)
	}
}

func TestMembershipAndUsers(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	acc, _ := s.CreateAccount(ctx, "Acme")
	sub, _ := s.CreateSubscription(ctx, acc.ID, "analytics", "Team", 50, []string{"viewer"})
	g, _ := s.CreateGroup(ctx, acc.ID, "Ops")
	addUser := func(email string) uuid.UUID {
		id := uuid.New()
		if _, err := s.Pool.Exec(ctx, `insert into users (id, email, first_name, last_name) values ($1, $2, 'F', 'L')`, id, email); err != nil {
			t.Fatal(err)
		}
		return id
	}
	active, blocked, outsider := addUser("Active@Acme.test"), addUser("blocked@acme.test"), addUser("outsider@acme.test")
	for id, state := range map[uuid.UUID]string{active: "active", blocked: "blocked"} {
		if _, err := s.Pool.Exec(ctx, `insert into memberships (account_id, user_id, role, group_ids, state) values ($1, $2, 'viewer', $3, $4)`,
			acc.ID, id, []uuid.UUID{g.ID}, state); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		user  *uuid.UUID
		email string
		want  bool
	}{
		{&active, "", true}, {nil, "active@ACME.test", true}, {&blocked, "", false}, {nil, "blocked@acme.test", false},
		{&outsider, "outsider@acme.test", false}, {nil, "", false},
	} {
		if got, err := s.IsActiveMember(ctx, acc.ID, tc.user, tc.email); err != nil || got != tc.want {
			t.Errorf("IsActiveMember(%v, %q) = %v %v", tc.user, tc.email, got, err)
		}
	}
	if u, err := s.GetUser(ctx, active); err != nil || u.Email != "Active@Acme.test" {
		t.Fatalf("GetUser = %+v %v", u, err)
	}
	if _, err := s.GetUser(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if ok, _ := s.UserExistsWithEmail(ctx, "OUTSIDER@acme.test"); !ok {
		t.Error("UserExistsWithEmail is case-sensitive")
	}

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seedInvitation(t, s, acc.ID, sub.ID, "active@acme.test", "pending", start) // a member: listed once, as member
	seedInvitation(t, s, acc.ID, sub.ID, "new@acme.test", "expired", start)    // superseded by the next
	newInv := seedInvitation(t, s, acc.ID, sub.ID, "NEW@acme.test", "pending", start.Add(time.Minute))
	seedInvitation(t, s, acc.ID, sub.ID, "gone@acme.test", "expired", start) // latest is revoked: not listed
	seedInvitation(t, s, acc.ID, sub.ID, "gone@acme.test", "revoked", start.Add(time.Minute))
	lapsed := seedInvitation(t, s, acc.ID, sub.ID, "outsider@acme.test", "expired", start) // an existing user, not a member

	users, err := s.ListAccountUsers(ctx, acc.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		email, state string
		userID       *uuid.UUID
		invitation   *uuid.UUID
	}{
		{"Active@Acme.test", UserStateActive, &active, nil},
		{"blocked@acme.test", UserStateBlocked, &blocked, nil},
		{"NEW@acme.test", UserStateInvited, nil, &newInv},
		{"outsider@acme.test", UserStateInvitationExpired, &outsider, &lapsed},
	}
	if len(users) != len(want) {
		t.Fatalf("users = %+v", users)
	}
	for i, w := range want {
		u := users[i]
		if u.Email != w.email || u.State != w.state || !sameID(u.UserID, w.userID) || !sameID(u.InvitationID, w.invitation) {
			t.Errorf("users[%d] = %+v, want %+v", i, u, w)
		}
	}
	if len(users[0].GroupIDs) != 1 || users[0].GroupIDs[0] != g.ID || users[2].GroupIDs == nil {
		t.Errorf("groups = %v / %v", users[0].GroupIDs, users[2].GroupIDs)
	}

	// The account's own view (a scoped token) does not name the outsider it invited by email:
	// whether they have a user somewhere is not the account's to know.
	own, err := s.ListAccountUsers(ctx, acc.ID, false)
	if err != nil || len(own) != len(users) {
		t.Fatalf("own view = %+v, %v", own, err)
	}
	if own[3].Email != "outsider@acme.test" || own[3].UserID != nil || !sameID(own[0].UserID, &active) {
		t.Errorf("own view names %v for the outsider and %v for the member; want none and %s", own[3].UserID, own[0].UserID, active)
	}
	outsiderUser, _ := s.GetUser(ctx, outsider)
	if known, err := s.AccountKnowsUser(ctx, acc.ID, outsiderUser); err != nil || !known {
		t.Errorf("the account invited the outsider: it knows them (%v, %v)", known, err)
	}
	other, _ := s.CreateAccount(ctx, "Elsewhere")
	if known, err := s.AccountKnowsUser(ctx, other.ID, outsiderUser); err != nil || known {
		t.Errorf("another account knows the outsider (%v, %v)", known, err)
	}
}

func sameID(a, b *uuid.UUID) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
