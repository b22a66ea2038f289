package e2e

import (
	"testing"
	"time"
)

// TestExpiryAndRenew uses the short-TTL API: the invitation expires on its own, releasing the
// seat; the invitee's link then answers 410; the administrator renews it (new link, new expiry,
// seat taken again) and the new link is accepted while the old one stays dead.
func TestExpiryAndRenew(t *testing.T) {
	f := newFixture(t, 1)
	email := unique("Late.Larry")
	var inv invitation
	short().do(t, "POST", f.path("/invitations"), f.inviteBody(email)).expect(t, 201).decode(t, &inv)
	oldToken := tokenOf(t, *inv.InviteURL)
	if d := time.Until(inv.ExpiresAt); d <= 0 || d > shortTTL+time.Second {
		t.Fatalf("expires_at %s is not within the short TTL", inv.ExpiresAt)
	}
	// Only one seat: the pending invitation holds it.
	short().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Other"))).expectProblem(t, 409, "seats_exhausted")

	// The reminder arrives before expiry, then the invitation expires.
	waitEmail(t, email, "Reminder", 1)
	eventually(t, shortTTL+15*time.Second, "the invitation to expire", func() bool {
		return f.invitation(t, short(), inv.ID).Status == "expired"
	})
	if s := f.subscription(t); s.SeatsReserved != 0 || s.SeatsAvailable != 1 {
		t.Fatalf("after expiry, subscription %+v: the seat is not released", s)
	}
	var users struct {
		Items []struct{ Email, State string }
	}
	short().do(t, "GET", f.path("/users"), nil).expect(t, 200).decode(t, &users)
	if len(users.Items) != 1 || users.Items[0].State != "invitation_expired" {
		t.Fatalf("users %+v: want one invitation_expired", users.Items)
	}

	invitee().do(t, "GET", "/v1/invitations/preview?token="+oldToken, nil).expectProblem(t, 410, "invitation_expired")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": oldToken, "password": "Correct-Horse-42", "accept_terms": true}).
		expectProblem(t, 410, "invitation_expired")
	invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": oldToken}).expectProblem(t, 410, "invitation_expired")
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/resend"), nil).expectProblem(t, 409, "invalid_state")
	short().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expectProblem(t, 409, "invalid_state")

	var renewed invitation
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	if renewed.Status != "pending" || renewed.InviteURL == nil || *renewed.InviteURL == *inv.InviteURL ||
		!renewed.ExpiresAt.After(inv.ExpiresAt) {
		t.Fatalf("renewed invitation %+v", renewed)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("after renew, subscription %+v: want the seat reserved again", s)
	}
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expectProblem(t, 409, "invalid_state")
	newToken := tokenOf(t, *renewed.InviteURL)
	waitEmail(t, email, "invited you", 2) // the new generation's invite

	invitee().do(t, "GET", "/v1/invitations/preview?token="+oldToken, nil).expectProblem(t, 410, "invitation_expired")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": oldToken, "password": "Correct-Horse-42", "accept_terms": true}).
		expectProblem(t, 410, "invitation_expired")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": newToken, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200)
	if s := f.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 0 {
		t.Fatalf("after accepting the renewal, subscription %+v", s)
	}
	if got := f.invitation(t, short(), inv.ID); !hasEvents(got, "created", "expired", "renewed", "accepted") {
		t.Fatalf("events %+v", got.Events)
	}
}

// TestRenewWithoutSeat: renewing when the freed seat was taken meanwhile answers
// seats_exhausted and leaves the invitation expired.
func TestRenewWithoutSeat(t *testing.T) {
	f := newFixture(t, 1)
	var inv invitation
	short().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("First"))).expect(t, 201).decode(t, &inv)
	eventually(t, shortTTL+15*time.Second, "the invitation to expire", func() bool {
		return f.invitation(t, short(), inv.ID).Status == "expired"
	})
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Second"))).expect(t, 201)
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expectProblem(t, 409, "seats_exhausted")
	if got := f.invitation(t, short(), inv.ID); got.Status != "expired" {
		t.Fatalf("status %s after a refused renewal, want expired", got.Status)
	}
}
