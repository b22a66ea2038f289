package e2e

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestAccountCannotTakeOverAnotherAccountsUser is the attack of issue 11 on the real stack.
// Account A invites victim@…, reads its own invitation's link and accepts it with a password it
// chooses. Account B then invites the same person: B's link now needs the person's own password
// (preview says requires_sign_in); accepting without it, or with a wrong one, is refused with
// credentials_invalid and changes nothing. Repeated failures for the user are limited (429 with
// Retry-After) even for a correct password, until the limit refills.
func TestAccountCannotTakeOverAnotherAccountsUser(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t, 2), newFixture(t, 2)
	victim := unique("Victim")

	// A pre-accepts with a password of its choosing.
	invA := a.createInvitation(t, portal(), victim)
	accept(t, tokenOf(t, *invA.InviteURL)).expect(t, 200)

	// B's invitation of the same person asks them to sign in.
	invB := b.createInvitation(t, portal(), victim)
	tokenB := tokenOf(t, *invB.InviteURL)
	var preview struct {
		RequiresPassword bool `json:"requires_password"`
		RequiresSignIn   bool `json:"requires_sign_in"`
	}
	invitee().do(t, "GET", "/v1/invitations/preview?token="+tokenB, nil).expect(t, 200).decode(t, &preview)
	if !preview.RequiresSignIn || preview.RequiresPassword {
		t.Fatalf("preview of B's invitation of an existing user = %+v; want requires_sign_in and no new password", preview)
	}
	for _, pw := range []string{"", "Not-The-Password-1"} {
		p := invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tokenB, "password": pw, "accept_terms": true}).
			expectProblem(t, 422, "credentials_invalid")
		if len(p.Errors) != 1 || p.Errors[0].Field != "password" {
			t.Errorf("credentials_invalid names %+v; want the password field", p.Errors)
		}
	}
	if got := b.invitation(t, portal(), invB.ID); got.Status != "pending" || got.UserID != nil {
		t.Fatalf("after refused sign-ins, B's invitation is %+v", got)
	}
	if s := b.subscription(t); s.SeatsUsed != 0 || s.SeatsReserved != 1 {
		t.Fatalf("after refused sign-ins, B's subscription %+v", s)
	}

	// RATE_LIMIT_SIGN_IN_USER (5 failures per 15 minutes by default): three more failures spend
	// it; then even the right password waits.
	for range 3 {
		invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tokenB, "password": "Still-Wrong-2", "accept_terms": true}).
			expectProblem(t, 422, "credentials_invalid")
	}
	r := invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tokenB, "password": "Correct-Horse-42", "accept_terms": true})
	r.expectProblem(t, 429, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if got := b.invitation(t, portal(), invB.ID); got.Status != "pending" {
		t.Fatalf("B's invitation is %s after the limited sign-in", got.Status)
	}
}

// TestExistingUserSignsInToAccept: an existing user accepts with their current password; their
// password stays theirs (the accept does not set a new one), and the membership is created once.
func TestExistingUserSignsInToAccept(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t, 2), newFixture(t, 2)
	person := unique("Member.Mia")
	first := a.createInvitation(t, portal(), person)
	var joined struct {
		UserID string `json:"user_id"`
	}
	accept(t, tokenOf(t, *first.InviteURL)).expect(t, 200).decode(t, &joined)

	second := b.createInvitation(t, portal(), person)
	var out struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{
		"token": tokenOf(t, *second.InviteURL), "password": "Correct-Horse-42", "accept_terms": true,
	}).expect(t, 200).decode(t, &out)
	if out.Status != "accepted" || out.UserID != joined.UserID {
		t.Fatalf("the existing user's accept answered %+v; want accepted as %s", out, joined.UserID)
	}
	var memberships int
	if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from memberships where user_id = $1`,
		uuid.MustParse(joined.UserID)).Scan(&memberships); err != nil || memberships != 2 {
		t.Fatalf("%d memberships (%v), want one per account", memberships, err)
	}
}

// TestScopedTokenSeesOnlyItsPeople: a token scoped to account A cannot invite a user of account
// B by user_id (404, as an unknown user), and A's users list names no user id for a person A
// invited by email who has a user elsewhere; the portal's token keeps its reach.
func TestScopedTokenSeesOnlyItsPeople(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t, 3), newFixture(t, 3)
	scoped := scopedClient(t, a)

	// A user of B only.
	email := unique("Bob.Of.B")
	invB := b.createInvitation(t, portal(), email)
	var joined struct {
		UserID string `json:"user_id"`
	}
	accept(t, tokenOf(t, *invB.InviteURL)).expect(t, 200).decode(t, &joined)

	body := map[string]any{"user_id": joined.UserID, "subscription_id": a.SubscriptionID, "role": "editor", "group_ids": []string{a.GroupID}}
	// Refused exactly as a user that does not exist is: the answer tells A nothing about B.
	p := scoped.do(t, "POST", a.path("/invitations"), body).expectProblem(t, 404, "not_found")
	nobody := uuid.NewString()
	unknown := scoped.do(t, "POST", a.path("/invitations"), map[string]any{
		"user_id": nobody, "subscription_id": a.SubscriptionID, "role": "editor", "group_ids": []string{a.GroupID},
	}).expectProblem(t, 404, "not_found")
	if p.Detail != "No user "+joined.UserID+"." || unknown.Detail != "No user "+nobody+"." {
		t.Errorf("another account's user answered %q and no user at all %q: they must read alike", p.Detail, unknown.Detail)
	}

	// A invites the same person by email: its list shows them invited, with no user id.
	scoped.do(t, "POST", a.path("/invitations"), a.inviteBody(email)).expect(t, 201)
	var users struct {
		Items []struct {
			Email  string  `json:"email"`
			UserID *string `json:"user_id"`
			State  string  `json:"state"`
		}
	}
	scoped.do(t, "GET", a.path("/users"), nil).expect(t, 200).decode(t, &users)
	if len(users.Items) != 1 || users.Items[0].State != "invited" || users.Items[0].UserID != nil {
		t.Fatalf("A's users through its own token: %+v; want the invited person without a user id", users.Items)
	}
	portal().do(t, "GET", a.path("/users"), nil).expect(t, 200).decode(t, &users)
	if len(users.Items) != 1 || users.Items[0].UserID == nil || *users.Items[0].UserID != joined.UserID {
		t.Fatalf("A's users through the portal's token: %+v; want the user id", users.Items)
	}
	// Once A knows them (it invited them), it may name them by user id too.
	portal().do(t, "POST", a.path("/invitations/"+a.list(t, "").Items[0].ID+"/revoke"), nil).expect(t, 200)
	scoped.do(t, "POST", a.path("/invitations"), body).expect(t, 201)
}
