package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The invitee's page in a real browser, on the real stack: each test drives Chromium through a
// person's path and then checks what Postgres and the workflow hold. Screenshots of every page
// go to test-artifacts/screenshots.

const strongPassword = "Correct-Horse-42"

// TestBrowserNewUserAccepts: a new person opens the link, sees the invitation, meets the
// password policy (a weak password first), ticks the terms and is provisioned.
func TestBrowserNewUserAccepts(t *testing.T) {
	f := newFixture(t, 3)
	email := unique("Page.New")
	inv := f.createInvitation(t, portal(), email)
	tb := newTab(t, true)

	resp := tb.open(pageURL(t, stack.API.URL, *inv.InviteURL))
	tb.expectPage(resp, 200, "invite", "Join "+f.AccountName+" on Adobe Creative Cloud", "Hello Jane", "Ada Admin",
		"editor", "Design Team", email, "Valid until", inv.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC"),
		"Create your password", "at least 10 characters", "Terms of Service", "Decline invitation")
	tb.audit()
	// The accept button waits for the terms; the policy is shown before anything is typed.
	if !eval[bool](tb, `document.getElementById('accept-button').disabled`) {
		t.Error("the accept button is enabled before the terms are accepted")
	}
	tb.shoot("01-invite-new-user")
	order := tb.focusOrder(7)
	if want := []string{"password", "Show password", "password_confirm", "Show password", "accept_terms", "Terms of Service (opens in a new tab)", "decline-button"}; !slices.Equal(order, want) {
		t.Errorf("focus order %q, want %q", order, want)
	}

	// A weak password: the policy says what is missing as it is typed, and the form is not sent.
	tb.typeInto("#password", "password123")
	tb.typeInto("#password_confirm", "password123")
	rules := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('#policy li')].map(li => [li.dataset.rule, li.className]))`)
	if rules["length"] != "met" || rules["lower"] != "met" || rules["digit"] != "met" || rules["upper"] != "unmet" {
		t.Errorf("policy as typed: %v, want all met but upper", rules)
	}
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	if eval[bool](tb, `document.getElementById('accept-button').disabled`) {
		t.Fatal("the accept button stays disabled after the terms are ticked")
	}
	tb.do(chromedp.Click(chromedp.CSS("#accept-button"), chromedp.NodeVisible))
	if msg := tb.visibleText("#password-error"); !strings.Contains(msg, "upper-case letter") {
		t.Fatalf("policy error %q", msg)
	}
	if tb.view() != "invite" || eval[string](tb, `document.activeElement.id`) != "password" ||
		eval[string](tb, `document.getElementById('password').getAttribute('aria-invalid')`) != "true" {
		t.Error("the weak password did not stay on the form with the password field focused and marked invalid")
	}
	tb.shoot("02-invite-weak-password")
	if db := dbState(t, inv.ID); db.Status != "pending" || db.Users != 0 {
		t.Fatalf("after a weak password, Postgres holds %+v", db)
	}

	// A strong one, twice: accepted and provisioned.
	tb.typeInto("#password", strongPassword)
	tb.typeInto("#password_confirm", strongPassword)
	if msg := tb.visibleText("#password-error"); msg != "" {
		t.Errorf("the policy error stays after a good password: %q", msg)
	}
	resp = tb.submit("#accept-button")
	tb.expectPage(resp, 200, "accepted", "Welcome to "+f.AccountName, "Your access is ready", "editor", "Continue to sign in")
	tb.audit()
	tb.shoot("03-accepted")

	db := dbState(t, inv.ID)
	if db.Status != "accepted" || db.UserID == nil || db.Users != 1 || !strings.HasPrefix(db.PasswordHash, "$argon2id$") ||
		db.Memberships != 1 || db.Role != "editor" || db.GroupIDs != 1 || db.Seats != 1 || db.SeatsUsed != 1 || db.SeatsReserved != 0 {
		t.Fatalf("after accepting, Postgres holds %+v", db)
	}
	st := workflowState(t, inv.ID)
	if st.Status != contract.StatusAccepted || st.UserID == nil || st.UserID.String() != *db.UserID {
		t.Fatalf("workflow state %+v, want accepted by %s", st, *db.UserID)
	}
	if types := eventTypes(t, inv.ID); !slices.Contains(types, "accepted") {
		t.Errorf("events %v lack accepted", types)
	}
	tb.shootEmail("email-invite", email, "invited you")
	tb.shootEmail("email-welcome", email, "Welcome")

	// The link again: it says the invitation is accepted, and offers to sign in.
	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "already-accepted", "already accepted", "Continue to sign in")
	tb.shoot("04-already-accepted")
}

// TestBrowserNoScript: with JavaScript off the page still works, and the server checks what
// the script would have: the policy, then the terms, then accepts.
func TestBrowserNoScript(t *testing.T) {
	f := newFixture(t, 2)
	email := unique("Page.NoScript")
	inv := f.createInvitation(t, portal(), email)
	tb := newTab(t, false)
	url := pageURL(t, stack.API.URL, *inv.InviteURL)

	tb.expectPage(tb.open(url), 200, "invite", "Create your password", "at least 10 characters")
	tb.typeInto("#password", "alllowercase1")
	tb.typeInto("#password_confirm", "alllowercase1")
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 422, "invite", "Please correct the highlighted field", "upper-case letter")
	tb.shoot("05-noscript-policy-error")

	// Terms unticked (the browser's own check removed, as a script-less client might): refused.
	tb.typeInto("#password", strongPassword)
	tb.typeInto("#password_confirm", strongPassword)
	tb.do(chromedp.RemoveAttribute(chromedp.CSS("#accept_terms"), "required"))
	tb.expectPage(tb.submit("#accept-button"), 422, "invite", "Tick the box to accept the Terms of Service")
	tb.shoot("06-noscript-terms-error")
	if db := dbState(t, inv.ID); db.Status != "pending" || db.Users != 0 {
		t.Fatalf("after refused forms, Postgres holds %+v", db)
	}

	tb.typeInto("#password", strongPassword)
	tb.typeInto("#password_confirm", strongPassword)
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 200, "accepted", "Welcome to "+f.AccountName)
	db := dbState(t, inv.ID)
	if db.Status != "accepted" || db.Users != 1 || !strings.HasPrefix(db.PasswordHash, "$argon2id$") || db.Seats != 1 {
		t.Fatalf("after accepting without script, Postgres holds %+v", db)
	}
	if st := workflowState(t, inv.ID); st.Status != contract.StatusAccepted {
		t.Fatalf("workflow state %+v", st)
	}
}

// TestBrowserExistingUserAccepts: a person who already has a user is asked to sign in with
// their password, not to create one; a wrong one is refused on the form; with theirs the same
// user joins a second account.
func TestBrowserExistingUserAccepts(t *testing.T) {
	first, second := newFixture(t, 2), newFixture(t, 2)
	email := unique("Page.Existing")
	userID := acceptNewUser(t, first, email)
	var inv invitation
	portal().do(t, "POST", second.path("/invitations"), map[string]any{
		"user_id": userID, "subscription_id": second.SubscriptionID, "role": "viewer",
		"inviter": map[string]any{"name": "Ada Admin", "email": "ada@acme.test"},
	}).expect(t, 201).decode(t, &inv)
	tb := newTab(t, true)

	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "invite", "Join "+second.AccountName, "viewer", "Accept invitation")
	if eval[int](tb, `document.querySelectorAll('input[type=password]').length`) != 1 ||
		eval[string](tb, `document.getElementById('password').autocomplete`) != "current-password" {
		t.Fatal("an existing user is not asked for their current password (and only it)")
	}
	tb.audit()
	tb.shoot("07-invite-existing-user")
	tb.typeInto("#password", "Wrong-Horse-42")
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 422, "invite", "not the password of your account")
	tb.typeInto("#password", "Correct-Horse-42")
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
	tb.expectPage(tb.submit("#accept-button"), 200, "accepted", "Welcome to "+second.AccountName, "viewer")
	tb.shoot("08-accepted-existing-user")

	db := dbState(t, inv.ID)
	if db.Status != "accepted" || db.UserID == nil || *db.UserID != userID || db.Users != 1 || db.Memberships != 1 ||
		db.Role != "viewer" || db.Seats != 1 || db.SeatsUsed != 1 {
		t.Fatalf("after accepting, Postgres holds %+v", db)
	}
	var memberships int
	if err := stack.Store.Pool.QueryRow(t.Context(), `select count(*) from memberships where user_id = $1`, userID).Scan(&memberships); err != nil || memberships != 2 {
		t.Fatalf("the user has %d memberships (err %v), want one per account", memberships, err)
	}
	if st := workflowState(t, inv.ID); st.Status != contract.StatusAccepted || st.UserID == nil || st.UserID.String() != userID {
		t.Fatalf("workflow state %+v", st)
	}
}

// TestBrowserDecline: the decline button asks first; going back keeps the invitation; confirmed,
// it is declined and its seat released.
func TestBrowserDecline(t *testing.T) {
	f := newFixture(t, 2)
	email := unique("Page.Decline")
	inv := f.createInvitation(t, portal(), email)
	tb := newTab(t, true)
	url := pageURL(t, stack.API.URL, *inv.InviteURL)

	tb.expectPage(tb.open(url), 200, "invite")
	tb.expectPage(tb.submit("#decline-button"), 200, "decline-confirm", "Decline the invitation to "+f.AccountName+"?",
		"Ada Admin will see that you declined", "Yes, decline", "No, go back")
	tb.audit()
	tb.shoot("09-decline-confirm")
	tb.expectPage(tb.submit("a.button.secondary"), 200, "invite")
	if db := dbState(t, inv.ID); db.Status != "pending" || db.SeatsReserved != 1 {
		t.Fatalf("after going back, Postgres holds %+v", db)
	}

	tb.submit("#decline-button")
	tb.expectPage(tb.submit("#confirm-decline"), 200, "declined", "You declined the invitation", "Ask Ada Admin (ada@acme.test) to invite you again")
	tb.shoot("10-declined")
	db := dbState(t, inv.ID)
	if db.Status != "declined" || db.Users != 0 || db.SeatsReserved != 0 || db.SeatsUsed != 0 {
		t.Fatalf("after declining, Postgres holds %+v", db)
	}
	if st := workflowState(t, inv.ID); st.Status != contract.StatusDeclined {
		t.Fatalf("workflow state %+v", st)
	}
	if types := eventTypes(t, inv.ID); !slices.Contains(types, "declined") {
		t.Errorf("events %v lack declined", types)
	}
	tb.expectPage(tb.open(url), 200, "already-declined", "You declined this invitation")
	tb.shoot("11-already-declined")
}

// TestBrowserExpiredRequestsRenewal: an expired link (short TTL) shows the expired page; asking
// for a new invitation emails the inviter once and records the event; asking again the same day
// is politely refused; after the administrator renews, the old link says it was replaced.
func TestBrowserExpiredRequestsRenewal(t *testing.T) {
	f := newFixture(t, 2)
	email, inviterEmail := unique("Page.Late"), unique("Ada.Inviter")
	body := f.inviteBody(email)
	body["inviter"] = map[string]any{"name": "Ada Admin", "email": inviterEmail}
	var inv invitation
	short().do(t, "POST", f.path("/invitations"), body).expect(t, 201).decode(t, &inv)
	eventually(t, shortTTL+15*time.Second, "the invitation to expire", func() bool {
		return f.invitation(t, short(), inv.ID).Status == "expired"
	})
	tb := newTab(t, true)
	url := pageURL(t, stack.Short.URL, *inv.InviteURL)

	tb.expectPage(tb.open(url), 410, "expired", "This invitation has expired", "Expired on",
		inv.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC"), "Ask for a new invitation", "we will let Ada Admin know")
	tb.audit()
	tb.shoot("12-expired")

	tb.expectPage(tb.submit("#request-renewal"), 200, "renewal-requested", "We asked for a new invitation", "We let Ada Admin know", email)
	tb.audit()
	tb.shoot("13-renewal-requested")
	text := waitEmail(t, inviterEmail, "asked for a new invitation", 1)
	for _, want := range []string{"Jane Doe (" + email + ")", f.AccountName, "Adobe Creative Cloud", "editor", "UTC", "Send new invitation"} {
		if !strings.Contains(text, want) {
			t.Errorf("the inviter's email lacks %q:\n%s", want, text)
		}
	}
	tb.shootEmail("email-renewal-request", inviterEmail, "asked for a new invitation")
	if types := eventTypes(t, inv.ID); !slices.Contains(types, "renewal_requested") {
		t.Errorf("events %v lack renewal_requested", types)
	}
	st := workflowState(t, inv.ID)
	if st.Status != contract.StatusExpired || st.RenewalRequestedAt.IsZero() {
		t.Fatalf("workflow state %+v: want expired with the request's time", st)
	}

	// The same day again: a polite refusal, and no second email.
	tb.expectPage(tb.open(url), 410, "expired")
	tb.expectPage(tb.submit("#request-renewal"), 429, "renewal-already-requested", "You already asked for a new invitation today",
		"Ada Admin has been told", inviterEmail)
	tb.audit()
	tb.shoot("14-renewal-already-requested")
	time.Sleep(time.Second)
	if n := len(stack.Resend.EmailsTo(inviterEmail)); n != 1 {
		t.Errorf("the inviter got %d emails, want 1", n)
	}
	if db := dbState(t, inv.ID); db.Status != "expired" || db.SeatsReserved != 0 {
		t.Fatalf("after the requests, Postgres holds %+v", db)
	}
	// The portal hears of the request once, through the events feed (and its webhooks).
	eventually(t, 10*time.Second, "invitation.renewal_requested in the feed", func() bool {
		return len(f.feed(t, "&type=invitation.renewal_requested")) > 0
	})
	if got := typesByInvitation(f.feed(t, ""))[inv.ID]; !slices.Equal(got, []string{"invitation.created", "invitation.sent",
		"invitation.reminded", "invitation.expired", "invitation.renewal_requested"}) && !slices.Equal(got, []string{
		"invitation.created", "invitation.sent", "invitation.expired", "invitation.renewal_requested"}) {
		t.Errorf("the feed of the expired invitation = %v", got)
	}

	// The administrator renews: the old link says it was replaced, the new one works.
	var renewed invitation
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	tb.expectPage(tb.open(url), 410, "superseded", "replaced by a newer invitation", "most recent invitation email")
	tb.audit()
	tb.shoot("15-superseded")
	tb.expectPage(tb.open(pageURL(t, stack.Short.URL, *renewed.InviteURL)), 200, "invite")
}

// TestBrowserPageStates: a revoked invitation, a broken link and a form sent without this
// browser's cookie each get a page of their own.
func TestBrowserPageStates(t *testing.T) {
	f := newFixture(t, 2)
	inv := f.createInvitation(t, portal(), unique("Page.Revoked"))
	portal().do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200)
	tb := newTab(t, true)

	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "revoked", "withdrawn", "Ada Admin withdrew", "ada@acme.test")
	tb.audit()
	tb.shoot("16-revoked")
	if db := dbState(t, inv.ID); db.Status != "revoked" || db.SeatsReserved != 0 {
		t.Fatalf("Postgres holds %+v", db)
	}

	tb.expectPage(tb.open(stack.API.URL+"/invite?token=not-a-real-token"), 404, "invalid", "does not work", "copy the whole link")
	tb.audit()
	tb.shoot("17-invalid-link")

	// The CSRF cookie gone (another browser, cookies cleared): the form is refused, nothing happens.
	pending := f.createInvitation(t, portal(), unique("Page.Csrf"))
	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *pending.InviteURL)), 200, "invite")
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return err
	}))
	tb.expectPage(tb.submit("#decline-button"), 403, "form-expired", "This page has expired", "Open the invitation again")
	tb.shoot("18-form-expired")
	if db := dbState(t, pending.ID); db.Status != "pending" {
		t.Fatalf("a refused form changed the invitation: %+v", db)
	}
}
