package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserForgotPasswordResets: an existing user who forgot their password follows the
// sign-in form's "Forgot your password?" link, asks for a reset link, opens it from the email,
// sets a new password (a mismatch and a weak one are shown back at the field), cannot use the
// link again, and then accepts the invitation with the new password.
func TestBrowserForgotPasswordResets(t *testing.T) {
	first, second := newFixture(t, 2), newFixture(t, 2)
	email := unique("Page.Forgot")
	acceptNewUser(t, first, email)
	inv := second.createInvitation(t, portal(), email)
	tb := newTab(t, true)

	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "invite", "Sign in to accept", "Forgot your password?")
	if href := eval[string](tb, `document.getElementById('forgot-password').getAttribute('href')`); href != "/reset" {
		t.Fatalf("the forgot-password link goes to %q", href)
	}
	tb.expectPage(tb.submit("#forgot-password"), 200, "reset-request", "Reset your password")
	tb.audit()
	tb.shoot("09-reset-request")
	tb.typeInto("#email", email)
	tb.expectPage(tb.submit("#reset-request-button"), 200, "reset-requested", "Check your email", email)
	tb.shoot("10-reset-requested")

	token := tokenOf(t, waitEmail(t, email, "Reset your password", 1))
	link := stack.API.URL + "/reset?token=" + token
	tb.expectPage(tb.open(link), 200, "reset-form", "Choose a new password", email)
	if eval[string](tb, `document.getElementById('password').autocomplete`) != "new-password" {
		t.Fatal("the new password field is not marked new-password")
	}
	tb.audit()
	tb.shoot("11-reset-form")
	tb.typeInto("#password", "Brand-New-Pass-9")
	tb.typeInto("#password_confirm", "Brand-New-Pass-8")
	tb.expectPage(tb.submit("#reset-button"), 422, "reset-form", "The two passwords differ")
	tb.typeInto("#password", "weakpassword")
	tb.typeInto("#password_confirm", "weakpassword")
	tb.expectPage(tb.submit("#reset-button"), 422, "reset-form", "Passwords need")
	tb.typeInto("#password", "Brand-New-Pass-9")
	tb.typeInto("#password_confirm", "Brand-New-Pass-9")
	tb.expectPage(tb.submit("#reset-button"), 200, "reset-done", "Your password was changed")
	tb.shoot("12-reset-done")

	// The link worked once.
	tb.expectPage(tb.open(link), 410, "reset-expired", "no longer works", "Email me a reset link")
	tb.audit()
	tb.expectPage(tb.open(stack.API.URL+"/reset?token="+strings.Repeat("A", 71)), 404, "reset-invalid", "does not work")

	// The old password is refused; the new one accepts the invitation.
	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "invite")
	tb.typeInto("#password", "Correct-Horse-42")
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 422, "invite", "not the password of your account")
	tb.typeInto("#password", "Brand-New-Pass-9")
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 200, "accepted", "Welcome to "+second.AccountName)
}
