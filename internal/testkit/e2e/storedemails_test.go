package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/activities"
)

// TestStoredEmailsHoldNoLink: the invite and its resend reach the invitee with the link, but
// the emails table, which outlives them and is read by more people, holds the placeholder in
// its place: no token at rest.
func TestStoredEmailsHoldNoLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	email := unique("At.Rest")
	inv := f.createInvitation(t, portal(), email)
	token := tokenOf(t, *inv.InviteURL)
	text := waitEmail(t, email, "invited you", 1)
	if !strings.Contains(text, *inv.InviteURL) {
		t.Fatalf("the invite that went out lacks its link:\n%s", text)
	}
	for _, e := range stack.Resend.EmailsTo(email) {
		if !strings.Contains(e.HTML, token) {
			t.Errorf("the HTML part that went out lacks the link")
		}
	}
	rows, err := stack.Store.Pool.Query(context.Background(), `select kind, html, text from emails where invitation_id = $1`, uuid.MustParse(inv.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var kind, html, text string
		if err := rows.Scan(&kind, &html, &text); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(html, token) || strings.Contains(text, token) {
			t.Errorf("the stored %s email holds the invite token", kind)
		}
		if !strings.Contains(html, activities.LinkPlaceholder) || !strings.Contains(text, activities.LinkPlaceholder) {
			t.Errorf("the stored %s email lacks the link's placeholder", kind)
		}
	}
	if n != 1 {
		t.Fatalf("%d stored emails, want the invite", n)
	}
}
