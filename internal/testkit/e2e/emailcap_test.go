package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRecipientDailyCap: one address gets at most EMAIL_RECIPIENT_DAILY_CAP (10) invite and
// reminder emails in 24 hours, from every account together. The resend past the cap answers 429
// with Retry-After and sends nothing; another account's invitation of the same address is
// created, but its email is not sent: its delivery says failed, and why.
func TestRecipientDailyCap(t *testing.T) {
	t.Parallel()
	email := unique("Flooded")
	limit := stack.Cfg.EmailRecipientDailyCap
	var first invitation
	var firstAccount fixture
	for n := 1; n <= limit; n++ { // one invitation from each of as many accounts as the cap
		f := newFixture(t, 1)
		inv := f.createInvitation(t, portal(), email)
		if n == 1 {
			first, firstAccount = inv, f
		}
		waitEmail(t, email, "invited you", n)
	}
	// One more account's invitation is created, but its email is not sent: its delivery says why.
	over := newFixture(t, 1)
	capped := over.createInvitation(t, portal(), email)
	eventually(t, 20*time.Second, "the capped email's delivery to be recorded", func() bool {
		d := over.invitation(t, portal(), capped.ID).Delivery
		return d != nil && d.Status == "failed" && strings.Contains(d.Error, "EMAIL_RECIPIENT_DAILY_CAP")
	})
	// A resend past the cap is refused at once, before any workflow is asked.
	p := firstAccount.action(t, portal(), first.ID, "resend").expectProblem(t, 429, "rate_limited")
	if !strings.Contains(p.Detail, "in the last 24 hours") {
		t.Errorf("the refused resend says %q; want the cap's reason", p.Detail)
	}
	time.Sleep(time.Second) // a doubled email would arrive right behind
	if n := len(stack.Resend.EmailsTo(email)); n != limit {
		t.Fatalf("%d emails reached %s, want the cap of %d", n, email, limit)
	}
}
