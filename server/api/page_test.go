package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/pages"
)

// pageBrowser is a cookie jar over the harness: it keeps the CSRF cookie between requests.
type pageBrowser struct {
	h      *harness
	cookie string
}

func (b *pageBrowser) get(path string) *httptest.ResponseRecorder {
	b.h.t.Helper()
	w := b.h.do("GET", path, "", b.headers()...)
	b.keep(w)
	return w
}

func (b *pageBrowser) post(path string, form url.Values, extra ...string) *httptest.ResponseRecorder {
	b.h.t.Helper()
	w := b.h.do("POST", path, form.Encode(), append(b.headers("Content-Type", "application/x-www-form-urlencoded"), extra...)...)
	b.keep(w)
	return w
}

func (b *pageBrowser) headers(kv ...string) []string {
	if b.cookie != "" {
		kv = append(kv, "Cookie", b.cookie)
	}
	return kv
}

func (b *pageBrowser) keep(w *httptest.ResponseRecorder) {
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if c.Name == pages.CSRFCookie {
			b.cookie = c.Name + "=" + c.Value
		}
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the CSRF token of the page's first form.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page: %s", page)
	}
	return m[1]
}

// expectView asserts a page's status, view and security headers, and that it says text.
func expectView(t *testing.T, w *httptest.ResponseRecorder, status int, view string, text ...string) string {
	t.Helper()
	body := w.Body.String()
	if w.Code != status || !strings.Contains(body, `data-view="`+view+`"`) {
		t.Fatalf("page: %d, want %d with view %s: %s", w.Code, status, view, body)
	}
	h := w.Header()
	if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Content-Security-Policy") != pages.CSP ||
		h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers of the %s page: %v", view, h)
	}
	for _, want := range text {
		if !strings.Contains(body, want) {
			t.Errorf("%s page lacks %q", view, want)
		}
	}
	return body
}

// newPageHarness is the harness with the portal's address set, for the sign-in and terms links.
func newPageHarness(t *testing.T, opts ...harnessOption) *harness {
	return newHarness(t, append(opts, withConfig(func(c *config.Config) {
		c.PublicBaseURL, c.TermsURL = "https://portal.example", "https://portal.example/terms"
	}))...)
}

func TestInvitePage(t *testing.T) {
	t.Parallel()
	h := newPageHarness(t, withAccountName(`<script>alert(1)</script> & Co`))
	email := uniqueEmail("page")
	inv := h.row(h.create(h.inviteBody(email, `,"inviter":{"name":"Ada Admin","email":"ada@acme.test"}`)).ID)
	token := h.token(inv)
	b := &pageBrowser{h: h}

	w := b.get("/invite?token=" + token)
	page := expectView(t, w, 200, pages.ViewInvite, `action="/invite/accept"`, `action="/invite/decline"`, `name="password"`,
		`name="password_confirm"`, `name="accept_terms"`, `name="csrf"`, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co",
		"analytics", "editor", "Ada Admin", "UTC", "Terms of Service", `href="https://portal.example/terms"`, `lang="en"`, pages.Assets.CSS, pages.Assets.JS)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "style=") || strings.Contains(page, "<style") ||
		regexp.MustCompile(`<script>`).MatchString(page) || strings.Contains(page, "https://") && strings.Contains(page, "src=\"https") {
		t.Error("the page has inline or third-party code, or a value unescaped")
	}
	if b.cookie == "" {
		t.Fatal("no CSRF cookie set")
	}
	if c := w.Header().Get("Set-Cookie"); !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") || !strings.Contains(c, "Path=/invite") || !strings.Contains(c, "Secure") {
		t.Errorf("cookie %q", c)
	}
	// A second visit keeps the browser's cookie.
	if w := b.get("/invite?token=" + token); w.Header().Get("Set-Cookie") != "" {
		t.Error("the CSRF cookie was replaced")
	}

	// An existing user is asked to sign in (their current password), not to create one: the
	// same person accepts an invitation to another account first.
	other := newHarness(t)
	decodeJSON[acceptView](t, other.accept(other.token(other.pending(strings.ToUpper(email)))), 200)
	if page := b.get("/invite?token=" + token).Body.String(); !strings.Contains(page, `id="sign-in"`) ||
		!strings.Contains(page, `autocomplete="current-password"`) || strings.Contains(page, `name="password_confirm"`) || !strings.Contains(page, `data-view="invite"`) {
		t.Error("an existing user's page does not ask them to sign in with their password")
	}

	expectView(t, b.get("/invite?token=forged"), 404, pages.ViewInvalid, "does not work")
	expectView(t, b.get("/invite"), 404, pages.ViewInvalid)
}

// TestPageStates: each state of a link has a page of its own that says what to do. Each state
// is reached for real: by the expiry timer (short TTL), a renewal, the API's actions and the
// invitee's answers.
func TestPageStates(t *testing.T) {
	t.Parallel()
	h := newPageHarness(t, shortTTL())
	b := &pageBrowser{h: h}
	base := func(inv store.Invitation) string { return h.accountPath("/invitations/" + inv.ID.String()) }
	expired := h.pending(uniqueEmail("expired"))
	superseded := h.pending(uniqueEmail("superseded"))
	revoked := h.pending(uniqueEmail("revoked"))
	decodeJSON[invitationView](t, h.api("POST", base(revoked)+"/revoke", ""), 200)
	declined := h.pending(uniqueEmail("declined"))
	decodeJSON[declineView](t, h.do("POST", "/v1/invitations/decline", `{"token":"`+h.token(declined)+`"}`), 200)
	accepted := h.pending(uniqueEmail("accepted"))
	decodeJSON[acceptView](t, h.accept(h.token(accepted)), 200)
	h.waitStatus(expired.ID, "expired", h.cfg.InvitationTTL+20*time.Second)
	h.waitStatus(superseded.ID, "expired", h.cfg.InvitationTTL+20*time.Second)
	decodeJSON[invitationView](t, h.api("POST", base(superseded)+"/renew", ""), 200)

	cases := []struct {
		name   string
		inv    store.Invitation
		gen    int
		status int
		view   string
		text   string
	}{
		{"expired", expired, 1, 410, pages.ViewExpired, "Ask for a new invitation"},
		{"superseded", superseded, 1, 410, pages.ViewSuperseded, "most recent invitation email"},
		{"revoked", revoked, 1, 200, pages.ViewRevoked, "withdrew"},
		{"declined", declined, 1, 200, pages.ViewAlreadyDeclined, "You declined"},
		{"accepted", accepted, 1, 200, pages.ViewAlreadyAccepted, "Continue to sign in"},
		{"future generation", accepted, 3, 404, pages.ViewInvalid, "does not work"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page := expectView(t, b.get("/invite?token="+h.srv.signer.Sign(tc.inv.ID, tc.gen)), tc.status, tc.view, tc.text)
			if strings.Contains(page, `action="/invite/accept"`) {
				t.Error("a link that cannot be accepted shows the accept form")
			}
		})
	}
	// Past its expiry, before the workflow's timer has recorded it, the page already says
	// expired: the API's clock decides.
	t.Run("past expiry", func(t *testing.T) {
		inv := h.pending(uniqueEmail("late"))
		h.srv.now = func() time.Time { return time.Now().Add(h.cfg.InvitationTTL + time.Minute) }
		defer func() { h.srv.now = time.Now }()
		page := expectView(t, b.get("/invite?token="+h.token(inv)), 410, pages.ViewExpired, `action="/invite/request-renewal"`)
		if strings.Contains(page, `action="/invite/accept"`) {
			t.Error("a link that cannot be accepted shows the accept form")
		}
	})
}

func TestInvitePageForms(t *testing.T) {
	t.Parallel()
	h := newPageHarness(t)
	email := uniqueEmail("form")
	inv := h.pending(email)
	token := h.token(inv)
	b := &pageBrowser{h: h}
	csrf := csrfOf(t, b.get("/invite?token="+token).Body.String())
	form := func(kv ...string) url.Values {
		v := url.Values{"token": {token}, "csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	expectView(t, b.post("/invite/accept", form("password", "Str0ng-Password", "password_confirm", "Str0ng-Passw0rd", "accept_terms", "on")),
		422, pages.ViewInvite, "passwords differ", `name="password"`, `aria-invalid="true"`, `role="alert"`)
	expectView(t, b.post("/invite/accept", form("password", "weakweakweak", "password_confirm", "weakweakweak", "accept_terms", "on")),
		422, pages.ViewInvite, "upper-case")
	expectView(t, b.post("/invite/accept", form("password", "Str0ng-Password", "password_confirm", "Str0ng-Password")),
		422, pages.ViewInvite, "Tick the box to accept the Terms of Service")
	if got := h.row(inv.ID); got.Status != "pending" {
		t.Fatalf("refused forms changed the invitation: %s", got.Status)
	}
	if exists, err := stack.Store.UserExistsWithEmail(t.Context(), email); err != nil || exists {
		t.Fatalf("refused forms made a user (%v)", err)
	}
	expectView(t, b.post("/invite/accept", form("password", "Str0ng-Password", "password_confirm", "Str0ng-Password", "accept_terms", "on")),
		200, pages.ViewAccepted, "Welcome to Acme", "Continue to sign in")
	if got := h.row(inv.ID); got.Status != "accepted" || got.UserID == nil {
		t.Fatalf("after the accept form: %+v", got)
	} else if ok, err := password.Verify(passwordHash(t, *got.UserID), "Str0ng-Password"); !ok || err != nil {
		t.Errorf("the user's password is not the form's (%v)", err)
	}

	// Decline asks first, then declines.
	dec := h.pending(uniqueEmail("decline"))
	token = h.token(dec)
	csrf = csrfOf(t, b.get("/invite?token="+token).Body.String())
	page := expectView(t, b.post("/invite/decline", form()), 200, pages.ViewDeclineConfirm, "Yes, decline", `name="confirm" value="yes"`)
	if got := h.row(dec.ID); got.Status != "pending" {
		t.Fatalf("the decline button declined without confirmation: %s", got.Status)
	}
	csrf = csrfOf(t, page)
	expectView(t, b.post("/invite/decline", form("confirm", "yes")), 200, pages.ViewDeclined, "You declined the invitation")
	if got := h.row(dec.ID); got.Status != "declined" {
		t.Fatalf("after the confirmed decline: %s", got.Status)
	}
	expectView(t, b.post("/invite/decline", url.Values{"token": {"nope"}, "csrf": {csrf}}), 404, pages.ViewInvalid)
}

// TestPageCSRF: a form counts only with this browser's cookie, for the token it was made for,
// from this site, and fresh.
func TestPageCSRF(t *testing.T) {
	t.Parallel()
	h := newPageHarness(t)
	inv, other := h.pending(uniqueEmail("csrf")), h.pending(uniqueEmail("other"))
	token, otherToken := h.token(inv), h.token(other)
	b := &pageBrowser{h: h}
	csrf := csrfOf(t, b.get("/invite?token="+token).Body.String())
	decline := url.Values{"token": {token}, "csrf": {csrf}, "confirm": {"yes"}}

	stranger := &pageBrowser{h: h}
	stranger.get("/invite?token=" + otherToken) // a cookie of its own
	expectView(t, stranger.post("/invite/decline", decline), 403, pages.ViewFormExpired, "Open the invitation again")
	expectView(t, (&pageBrowser{h: h}).post("/invite/decline", decline), 403, pages.ViewFormExpired)
	expectView(t, b.post("/invite/decline", url.Values{"token": {otherToken}, "csrf": {csrf}, "confirm": {"yes"}}), 403, pages.ViewFormExpired)
	expectView(t, b.post("/invite/decline", url.Values{"token": {token}, "confirm": {"yes"}}), 403, pages.ViewFormExpired)
	expectView(t, b.post("/invite/decline", url.Values{"token": {token}, "csrf": {tamper(csrf)}, "confirm": {"yes"}}), 403, pages.ViewFormExpired)
	expectView(t, b.post("/invite/decline", decline, "Sec-Fetch-Site", "cross-site"), 403, pages.ViewFormExpired)
	h.srv.now = func() time.Time { return time.Now().Add(pages.CSRFMaxAge + time.Minute) }
	expectView(t, b.post("/invite/decline", decline), 403, pages.ViewFormExpired)
	h.srv.now = time.Now
	if a, o := h.row(inv.ID), h.row(other.ID); a.Status != "pending" || o.Status != "pending" {
		t.Fatalf("forged forms changed the invitations: %s, %s", a.Status, o.Status)
	}
	expectView(t, b.post("/invite/decline", decline, "Sec-Fetch-Site", "same-origin"), 200, pages.ViewDeclined)
	if a, o := h.row(inv.ID), h.row(other.ID); a.Status != "declined" || o.Status != "pending" {
		t.Fatalf("after the decline: %s, %s", a.Status, o.Status)
	}
}

// tamper changes one character of the tag part of a CSRF token.
func tamper(csrf string) string {
	i := len(csrf) - 5
	c := byte('A')
	if csrf[i] == 'A' {
		c = 'B'
	}
	return csrf[:i] + string(c) + csrf[i+1:]
}

func TestPageRequestRenewal(t *testing.T) {
	t.Parallel()
	h := newPageHarness(t, shortTTL())
	// Addresses without "+", which the page would show escaped.
	email, ada := "late."+randomHex(4)+"@acme.test", "ada."+randomHex(4)+"@acme.test"
	created := h.create(h.inviteBody(email, `,"inviter":{"name":"Ada Admin","email":"`+ada+`"}`))
	inv := h.waitStatus(created.ID, "expired", h.cfg.InvitationTTL+20*time.Second)
	token := h.token(inv)
	b := &pageBrowser{h: h}
	csrf := csrfOf(t, expectView(t, b.get("/invite?token="+token), 410, pages.ViewExpired, "Ada Admin"))
	form := url.Values{"token": {token}, "csrf": {csrf}}
	expectView(t, b.post("/invite/request-renewal", form), 200, pages.ViewRenewalRequested, "We let Ada Admin know", email)
	// The workflow recorded the request and emails the inviter.
	events := decodeJSON[invitationDetailView](t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()), ""), 200).Events
	if !slices.ContainsFunc(events, func(e eventView) bool { return e.Type == "renewal_requested" }) {
		t.Errorf("events %+v lack renewal_requested", events)
	}
	eventually(t, 20*time.Second, "the renewal request email to the inviter", func() bool { return len(stack.Resend.EmailsTo(ada)) == 1 })

	// Once a day: the workflow refuses the second request until a day has passed.
	w := b.post("/invite/request-renewal", form)
	expectView(t, w, 429, pages.ViewRenewalAlready, "already asked", ada)
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 86000 || ra > 86400 {
		t.Errorf("Retry-After %q, want about a day", w.Header().Get("Retry-After"))
	}
	if n := len(stack.Resend.EmailsTo(ada)); n != 1 {
		t.Errorf("%d emails to the inviter", n)
	}

	// A pending link has nothing to ask for: the form shows the invitation instead.
	pending := h.pending(uniqueEmail("early"))
	ptoken := h.token(pending)
	pcsrf := csrfOf(t, b.get("/invite?token="+ptoken).Body.String())
	expectView(t, b.post("/invite/request-renewal", url.Values{"token": {ptoken}, "csrf": {pcsrf}}), 200, pages.ViewInvite)
	events = decodeJSON[invitationDetailView](t, h.api("GET", h.accountPath("/invitations/"+pending.ID.String()), ""), 200).Events
	if slices.ContainsFunc(events, func(e eventView) bool { return e.Type == "renewal_requested" }) {
		t.Error("a pending invitation's renewal was requested")
	}
}

func TestPageAssets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, u := range []string{pages.Assets.CSS, pages.Assets.JS} {
		w := h.do("GET", u, "")
		if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Body.Len() == 0 {
			t.Errorf("%s: %d %v", u, w.Code, w.Header())
		}
	}
	if ct := h.do("GET", pages.Assets.CSS, "").Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("css content type %q", ct)
	}
	if w := h.do("GET", "/invite/assets/nope.js", ""); w.Code != 404 {
		t.Errorf("unknown asset: %d", w.Code)
	}
}
