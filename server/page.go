package server

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/internal/store"
)

// The hosted acceptance page: what an invite link opens when the portal hosts none of its own.
// Server-rendered with embedded assets and no third-party anything; it works without script
// (plain form posts, CSRF-protected, see page_csrf.go) and shares the invitee API's logic, so
// the page and the API can never disagree about an invitation.

//go:embed templates/*.html
var pageFiles embed.FS

// pageTemplates holds one template set per kind of page: the layout plus that page's "main".
var pageTemplates = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(template.FuncMap{"initial": initial}).
		ParseFS(pageFiles, "templates/layout.html"))
	sets := map[string]*template.Template{}
	for _, name := range []string{tmplInvite, tmplDecline, tmplStatus} {
		sets[name] = template.Must(template.Must(layout.Clone()).ParseFS(pageFiles, "templates/"+name+".html"))
	}
	return sets
}()

// Template sets.
const (
	tmplInvite  = "invite"  // the pending invitation with its accept and decline forms
	tmplDecline = "decline" // "are you sure?" before declining
	tmplStatus  = "status"  // every outcome and every state the link can be in
)

// Views name each distinct page; the body carries it as data-view, for tests and for support.
const (
	viewInvite           = "invite"
	viewDeclineConfirm   = "decline-confirm"
	viewAccepted         = "accepted"
	viewAlreadyAccepted  = "already-accepted"
	viewDeclined         = "declined"
	viewAlreadyDeclined  = "already-declined"
	viewRevoked          = "revoked"
	viewExpired          = "expired"
	viewSuperseded       = "superseded"
	viewRenewalRequested = "renewal-requested"
	viewRenewalAlready   = "renewal-already-requested"
	viewInvalid          = "invalid"
	viewFormExpired      = "form-expired"
	viewError            = "error"
)

// pageExpiryLayout spells expiry dates out in UTC, as the emails do.
const pageExpiryLayout = "Monday, 2 January 2006 at 15:04 UTC"

// pageData is what a page template sees. html/template escapes every value for its context.
type pageData struct {
	Template string
	View     string
	Title    string
	// Tone colours the page: success, info, warning or danger.
	Tone string
	Lead string
	Next string
	// Error is the form's error summary; FieldErrors name the fields to correct.
	Error       string
	FieldErrors map[string]string
	// Token and CSRF go into the page's forms.
	Token            string
	CSRF             string
	Inv              *pageInvitation
	RequiresPassword bool
	// Actions the page offers.
	RenewalForm bool
	SignInURL   string
	RetryLink   bool
	TermsURL    string
	// Assets are the versioned URLs of the stylesheet and the script.
	Assets assetURLs
}

// pageInvitation is what the page says about an invitation.
type pageInvitation struct {
	Account      string
	Application  string
	Plan         string
	Role         string
	Email        string
	FirstName    string
	InviterName  string
	InviterEmail string
	Expires      string
	ExpiresISO   string
	// ExpiryLabel heads the expiry line ("Valid until", "Expired on"); empty hides it.
	ExpiryLabel string
}

func newPageInvitation(inv store.Invitation) *pageInvitation {
	exp := inv.ExpiresAt.UTC()
	return &pageInvitation{
		Account: inv.AccountName, Application: inv.Application, Plan: inv.Subscription, Role: inv.Role,
		Email: inv.Email, FirstName: inv.FirstName,
		InviterName: inv.InviterName, InviterEmail: inv.InviterEmail,
		Expires: exp.Format(pageExpiryLayout), ExpiresISO: exp.Format(time.RFC3339),
	}
}

// initial is the first letter of a name, for the page's monogram.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		return strings.ToUpper(string(r))
	}
	return "?"
}

// inviter names who invited, for sentences: "Ada Admin" or a fallback such as "the person who
// invited you".
func (p *pageInvitation) inviter(fallback string) string {
	return cmp.Or(p.InviterName, fallback)
}

// contact says how to reach the inviter: "Ada Admin (ada@acme.test)".
func (p *pageInvitation) contact() string {
	switch {
	case p.InviterName != "" && p.InviterEmail != "":
		return p.InviterName + " (" + p.InviterEmail + ")"
	case p.InviterEmail != "":
		return p.InviterEmail
	}
	return p.inviter("the person who invited you")
}

// invitePage answers GET /invite?token=: the page of whatever state the link is in.
func (s *Server) invitePage(c *gin.Context) {
	token := c.Query("token")
	link, err := s.resolveLink(c.Request.Context(), token)
	if err != nil {
		s.renderPageProblem(c, token, err)
		return
	}
	s.renderLinkState(c, token, link, 0)
}

// renderLinkState shows the page of the link's current state: the form while the invitation
// is pending, else a page that says what happened and what to do. status overrides the state's
// own HTTP status when non-zero (a refused POST answers 409 or 410, as the API would).
func (s *Server) renderLinkState(c *gin.Context, token string, link inviteLink, status int) {
	inv := link.inv
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, Inv: pi, Token: token}
	code := http.StatusOK
	switch {
	case inv.Status == contract.StatusAccepted:
		d.View, d.Tone, d.Title = viewAlreadyAccepted, "success", "This invitation was already accepted"
		d.Lead = fmt.Sprintf("The invitation to join %s on %s has been accepted, and the access is set up.", pi.Account, pi.Application)
		d.Next = fmt.Sprintf("Sign in with your email address, %s. If you did not accept it yourself, tell %s right away.", pi.Email, pi.contact())
		d.SignInURL = s.signInURL()
	case inv.Status == contract.StatusDeclined:
		s.declinedPage(&d, false)
	case inv.Status == contract.StatusRevoked:
		d.View, d.Tone, d.Title = viewRevoked, "warning", "This invitation was withdrawn"
		d.Lead = fmt.Sprintf("%s withdrew the invitation to join %s on %s, so it can no longer be accepted.",
			pi.inviter("The account's administrator"), pi.Account, pi.Application)
		d.Next = fmt.Sprintf("If you think this is a mistake, contact %s.", pi.contact())
	case link.generation < inv.Generation:
		d.View, d.Tone, d.Title = viewSuperseded, "info", "This link was replaced by a newer invitation"
		d.Lead = fmt.Sprintf("A newer invitation to join %s on %s was sent to %s, and it replaced the link you used.", pi.Account, pi.Application, pi.Email)
		d.Next = fmt.Sprintf("Look in your inbox for the most recent invitation email and use its link. If you cannot find it, ask %s to send it again.", pi.contact())
		code = http.StatusGone
	case link.expired(s.now()):
		s.expiredPage(c, &d)
		code = http.StatusGone
	default:
		d = s.invitePageData(c, token, link)
	}
	s.renderPage(c, cmp.Or(status, code), d)
}

// invitePageData is the pending invitation's page with its forms.
func (s *Server) invitePageData(c *gin.Context, token string, link inviteLink) pageData {
	pi := newPageInvitation(link.inv)
	pi.ExpiryLabel = "Valid until"
	d := pageData{
		Template: tmplInvite, View: viewInvite, Tone: "info", Inv: pi, Token: token,
		Title: fmt.Sprintf("Join %s on %s", pi.Account, pi.Application),
		CSRF:  s.csrfToken(c, token), TermsURL: s.termsURL(),
	}
	requires, err := s.requiresPassword(c.Request.Context(), link.inv)
	if err != nil {
		// Asking for a password that is then not needed is harmless; the server decides.
		s.log.Warn("invite page could not tell whether the user exists", "error", err)
		requires = true
	}
	d.RequiresPassword = requires
	return d
}

func (s *Server) expiredPage(c *gin.Context, d *pageData) {
	pi := d.Inv
	pi.ExpiryLabel = "Expired on"
	d.View, d.Tone, d.Title = viewExpired, "warning", "This invitation has expired"
	d.Lead = fmt.Sprintf("Your invitation to join %s on %s expired on %s.", pi.Account, pi.Application, pi.Expires)
	if pi.InviterEmail != "" {
		d.Next = fmt.Sprintf("Ask for a new invitation and we will let %s know. The new invitation will come by email to %s, with a new link.", pi.inviter("the person who invited you"), pi.Email)
	} else {
		d.Next = fmt.Sprintf("Ask for a new invitation and the administrators of %s will see your request. The new invitation will come by email to %s, with a new link.", pi.Account, pi.Email)
	}
	d.RenewalForm = true
	d.CSRF = s.csrfToken(c, d.Token)
}

func (s *Server) declinedPage(d *pageData, justNow bool) {
	pi := d.Inv
	d.View, d.Tone, d.Title = viewAlreadyDeclined, "info", "You declined this invitation"
	if justNow {
		d.View, d.Title = viewDeclined, "You declined the invitation"
	}
	d.Lead = fmt.Sprintf("You will not get access to %s in %s. %s can see that you declined.", pi.Application, pi.Account, pi.inviter("The person who invited you"))
	d.Next = fmt.Sprintf("Changed your mind? Ask %s to invite you again.", pi.contact())
}

// renderPageError shows a problem as a page, for middleware that refuses a page request (rate
// limits) before its handler runs; the token comes from the query or an already parsed form.
func (s *Server) renderPageError(c *gin.Context, err error) {
	token := c.Query("token")
	if token == "" && c.Request.PostForm != nil {
		token = c.Request.PostForm.Get("token")
	}
	s.renderPageProblem(c, token, err)
}

// renderPageProblem shows a problem as a page: a link in a state that refuses the action gets
// that state's page; anything else a page that says what to do.
func (s *Server) renderPageProblem(c *gin.Context, token string, err error) {
	p := classify(err)
	c.Set(ctxProblemCode, string(p.Code))
	switch p.Code {
	case contract.CodeTokenInvalid:
		d := pageData{Template: tmplStatus, View: viewInvalid, Tone: "danger", Title: "This invitation link does not work"}
		d.Lead = "The link is incomplete or was changed. Some email programs break long links across lines."
		d.Next = "Open the link straight from the invitation email, or copy the whole link into the address bar. If it still does not work, ask the person who invited you to send the invitation again."
		s.renderPage(c, p.Status, d)
		return
	case contract.CodeInvitationExpired, contract.CodeInvalidState:
		if link, lerr := s.resolveLink(c.Request.Context(), token); lerr == nil {
			s.renderLinkState(c, token, link, p.Status)
			return
		}
	}
	if p.Status >= 500 {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) {
			level = slog.LevelInfo
		}
		s.log.Log(c.Request.Context(), level, "invite page failed", "route", c.FullPath(),
			"request_id", c.GetString(ctxRequestID), "code", p.Code, "error", errString(p.cause))
	}
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
	}
	d := pageData{Template: tmplStatus, View: viewError, Tone: "danger", Token: token}
	switch {
	case p.Status >= 500:
		d.Title = "Something went wrong on our side"
		d.Lead = "We could not complete this just now."
		d.Next = "Please try again in a moment. If it keeps failing, contact the person who invited you."
	case p.Code == contract.CodeRateLimited:
		d.Title, d.Tone = "Too many attempts", "warning"
		d.Lead = "We received more requests from here than we accept in a short time."
		d.Next = "Please wait a minute, then open the invitation again."
	case p.Code == contract.CodePayloadTooLarge:
		d.Title, d.Lead = "The form was too large", "What you sent was larger than this page accepts."
		d.Next = "Open the invitation again and retry."
	default:
		d.Title, d.Lead = "This did not work", p.Detail
		d.Next = "Open the invitation again and retry."
	}
	d.RetryLink = token != "" && len(token) <= maxPageTokenLen
	s.renderPage(c, p.Status, d)
}

func (s *Server) signInURL() string { return s.cfg.PublicBaseURL }

// termsURL is the Terms of Service the invitee accepts (TERMS_URL).
func (s *Server) termsURL() string { return s.cfg.TermsURL }

// pageCSP is the page's Content-Security-Policy: its own stylesheet and script and nothing
// else; forms post only to this origin; no framing, no <base>.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// setPageHeaders keeps a token-bearing page out of caches, referrers and frames.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// renderPage renders into a buffer first, so a template failure cannot send half a page.
func (s *Server) renderPage(c *gin.Context, status int, d pageData) {
	d.Assets = assets
	if d.TermsURL == "" {
		d.TermsURL = s.termsURL()
	}
	var buf bytes.Buffer
	t, ok := pageTemplates[d.Template]
	err := errors.New("no such page template: " + d.Template)
	if ok {
		err = t.ExecuteTemplate(&buf, "page", d)
	}
	if err != nil {
		s.log.Error("invite page template failed", "view", d.View, "error", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Error</title><p>Something went wrong. Please try again.</p></html>`)
	}
	setPageHeaders(c.Writer.Header())
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}
