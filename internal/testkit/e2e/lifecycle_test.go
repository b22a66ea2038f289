package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestLifecycleNewUser walks a new person from invitation to provisioned user, as the portal and
// the invitee see it, and checks what Postgres then holds.
func TestLifecycleNewUser(t *testing.T) {
	f := newFixture(t, 5)
	email := unique("Jane.Doe")

	var inv invitation
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(email)).expect(t, 201).decode(t, &inv)
	if inv.Status != "pending" || inv.InviteURL == nil || inv.UserID != nil || inv.Role != "editor" ||
		inv.Application != "Adobe Creative Cloud" || len(inv.GroupIDs) != 1 || inv.GroupIDs[0] != f.GroupID {
		t.Fatalf("created invitation %+v", inv)
	}
	if d := time.Until(inv.ExpiresAt); d < 167*time.Hour || d > 169*time.Hour {
		t.Fatalf("expires_at %s is not 7 days away", inv.ExpiresAt)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 || s.SeatsUsed != 0 || s.SeatsAvailable != 4 {
		t.Fatalf("after invite, subscription %+v: want 1 reserved, 4 available", s)
	}

	// The email names the inviter, account, application, role and expiry, and carries the link.
	text := waitEmail(t, email, "invited you", 1)
	for _, want := range []string{"Ada Admin", f.AccountName, "Adobe Creative Cloud", "editor", "UTC", *inv.InviteURL} {
		if !strings.Contains(text, want) {
			t.Errorf("invite email lacks %q:\n%s", want, text)
		}
	}
	token := tokenOf(t, *inv.InviteURL)

	var preview struct {
		AccountName      string `json:"account_name"`
		Application      string `json:"application"`
		Role             string `json:"role"`
		Email            string `json:"email"`
		Status           string `json:"status"`
		RequiresPassword bool   `json:"requires_password"`
		Inviter          *struct{ Name string }
	}
	invitee().do(t, "GET", "/v1/invitations/preview?token="+token, nil).expect(t, 200).decode(t, &preview)
	if preview.AccountName != f.AccountName || preview.Role != "editor" || preview.Status != "pending" ||
		!preview.RequiresPassword || preview.Inviter == nil || preview.Inviter.Name != "Ada Admin" {
		t.Fatalf("preview %+v", preview)
	}

	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "short", "accept_terms": true}).
		expectProblem(t, 422, "password_policy")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": false}).
		expectProblem(t, 422, "terms_not_accepted")

	var accepted struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200).decode(t, &accepted)
	if accepted.Status != "accepted" || accepted.UserID == "" {
		t.Fatalf("accept answered %+v", accepted)
	}
	// The same accept again (its answer lost, say) gets the first answer: the same user, no second one.
	var again struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200).decode(t, &again)
	if again != accepted {
		t.Fatalf("the repeated accept answered %+v, want the first answer %+v", again, accepted)
	}

	got := f.invitation(t, portal(), inv.ID)
	if got.Status != "accepted" || got.UserID == nil || *got.UserID != accepted.UserID || got.InviteURL != nil {
		t.Fatalf("after accept, invitation %+v", got)
	}
	if !hasEvents(got, "created", "email_sent", "accepted") {
		t.Errorf("events %+v lack created, email_sent, accepted", got.Events)
	}
	if s := f.subscription(t); s.SeatsReserved != 0 || s.SeatsUsed != 1 || s.SeatsAvailable != 4 {
		t.Fatalf("after accept, subscription %+v: want 1 used", s)
	}
	waitEmail(t, email, "Welcome", 1)

	var users struct {
		Items []struct {
			UserID   *string  `json:"user_id"`
			Email    string   `json:"email"`
			Role     string   `json:"role"`
			GroupIDs []string `json:"group_ids"`
			State    string   `json:"state"`
		} `json:"items"`
	}
	portal().do(t, "GET", f.path("/users"), nil).expect(t, 200).decode(t, &users)
	if len(users.Items) != 1 || users.Items[0].State != "active" || users.Items[0].Role != "editor" ||
		users.Items[0].UserID == nil || *users.Items[0].UserID != accepted.UserID || len(users.Items[0].GroupIDs) != 1 {
		t.Fatalf("account users %+v", users.Items)
	}

	// Exactly one user, membership and seat, with the password stored as an argon2id hash.
	db := stack.Store.Pool
	var users1, members, seats int
	var hash string
	ctx := context.Background()
	uid := uuid.MustParse(accepted.UserID)
	if err := db.QueryRow(ctx, `select count(*), max(password_hash) from users where lower(email) = lower($1)`, email).Scan(&users1, &hash); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from memberships where user_id = $1`, uid).Scan(&members); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from seats where user_id = $1`, uid).Scan(&seats); err != nil {
		t.Fatal(err)
	}
	if users1 != 1 || members != 1 || seats != 1 || !strings.HasPrefix(hash, "$argon2id$") {
		t.Fatalf("users=%d memberships=%d seats=%d hash=%.12q", users1, members, seats, hash)
	}
}

// TestLifecycleExistingUser invites a user who already exists (provisioned through another
// account): no new password is asked, the user signs in with their own instead, and the same
// user joins the second account.
func TestLifecycleExistingUser(t *testing.T) {
	first, second := newFixture(t, 2), newFixture(t, 2)
	email := unique("Sam.Existing")
	userID := acceptNewUser(t, first, email)

	var inv invitation
	portal().do(t, "POST", second.path("/invitations"), map[string]any{
		"user_id": userID, "subscription_id": second.SubscriptionID, "role": "viewer",
	}).expect(t, 201).decode(t, &inv)
	if inv.UserID == nil || *inv.UserID != userID || !strings.EqualFold(inv.Email, email) || inv.FirstName != "Jane" {
		t.Fatalf("invitation of an existing user %+v", inv)
	}
	token := tokenOf(t, *inv.InviteURL)
	var preview struct {
		RequiresPassword bool `json:"requires_password"`
		RequiresSignIn   bool `json:"requires_sign_in"`
	}
	invitee().do(t, "GET", "/v1/invitations/preview?token="+token, nil).expect(t, 200).decode(t, &preview)
	if preview.RequiresPassword || !preview.RequiresSignIn {
		t.Fatalf("preview of an existing user's invitation %+v: want a sign-in, no new password", preview)
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "accept_terms": true}).
		expectProblem(t, 422, "credentials_invalid")
	var accepted struct {
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200).decode(t, &accepted)
	if accepted.UserID != userID {
		t.Fatalf("accepted as %s, want the existing user %s", accepted.UserID, userID)
	}
	var n int
	if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from users where lower(email) = lower($1)`, email).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d users with the email (err %v), want 1", n, err)
	}
	if s := second.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 0 {
		t.Fatalf("second subscription %+v", s)
	}
	// Inviting them again to the second account: they are already a member.
	portal().do(t, "POST", second.path("/invitations"), map[string]any{
		"user_id": userID, "subscription_id": second.SubscriptionID, "role": "viewer",
	}).expectProblem(t, 409, "already_member")
}

// acceptNewUser invites email into f and accepts as a new user; it returns the user id.
func acceptNewUser(t *testing.T, f fixture, email string) string {
	t.Helper()
	inv := f.createInvitation(t, portal(), email)
	var accepted struct {
		UserID string `json:"user_id"`
	}
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200).decode(t, &accepted)
	return accepted.UserID
}

func hasEvents(inv invitation, types ...string) bool {
	seen := map[string]bool{}
	for _, e := range inv.Events {
		seen[e.Type] = true
	}
	for _, typ := range types {
		if !seen[typ] {
			return false
		}
	}
	return true
}
