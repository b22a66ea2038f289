// Package pages is the hosted invitee page: what an invite link opens when the portal hosts
// none of its own. It holds the templates, the embedded stylesheet and script, the CSRF
// protection of its forms and the handlers of its routes; the API mounts them on its router
// (behind its per-address limit) and the page acts through the invitee operations
// (server/invitee), so the page and the JSON API can never disagree about an invitation.
package pages

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
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/server/passwordreset"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/internal/config"

	"github.com/google/uuid"
)

// The page is server-rendered with embedded assets and no third-party anything; it works
// without script (plain form posts, CSRF-protected, see page_csrf.go).

// Deps are what the page needs from the API that mounts it.
type Deps struct {
	Config  config.Config
	Invitee *invitee.Service
	Resets  *passwordreset.Service
	Logger  *slog.Logger
	// Now is the clock (the API's, which its tests move).
	Now func() time.Time
	// RedirectAllowed tells whether an accepted invitation's redirect_url may be followed: its
	// origin is in the account's allowed_redirect_origins as they are now. Nil: never.
	RedirectAllowed func(ctx context.Context, accountID uuid.UUID, rawURL string) bool
}

// Handlers answer the page's routes: GET /invite (Show), POST /invite/accept (Accept),
// /invite/decline (Decline) and /invite/request-renewal (RequestRenewal); Asset serves
// /invite/assets/:name.
type Handlers struct {
	cfg     config.Config
	invitee *invitee.Service
	resets  *passwordreset.Service
	log     *slog.Logger
	now     func() time.Time
	// redirectAllowed is Deps.RedirectAllowed.
	redirectAllowed func(ctx context.Context, accountID uuid.UUID, rawURL string) bool
}

// New returns the page's handlers.
func New(d Deps) *Handlers {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RedirectAllowed == nil {
		d.RedirectAllowed = func(context.Context, uuid.UUID, string) bool { return false }
	}
	return &Handlers{cfg: d.Config, invitee: d.Invitee, resets: d.Resets, log: d.Logger, now: d.Now, redirectAllowed: d.RedirectAllowed}
}

//go:embed templates/*.html
var pageFiles embed.FS

// pageTemplates holds one template set per kind of page: the layout plus that page's "main".
var pageTemplates = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(template.FuncMap{"initial": initial}).
		ParseFS(pageFiles, "templates/layout.html"))
	sets := map[string]*template.Template{}
	for _, name := range []string{tmplInvite, tmplDecline, tmplStatus, tmplReset} {
		sets[name] = template.Must(template.Must(layout.Clone()).ParseFS(pageFiles, "templates/"+name+".html"))
	}
	return sets
}()

// Template sets.
const (
	tmplInvite  = "invite"  // the pending invitation with its accept and decline forms
	tmplDecline = "decline" // "are you sure?" before declining
	tmplStatus  = "status"  // every outcome and every state the link can be in
	tmplReset   = "reset"   // the password reset's forms and outcomes (page_reset.go)
)

// Views name each distinct page; the body carries it as data-view, for tests and for support.
const (
	ViewInvite           = "invite"
	ViewDeclineConfirm   = "decline-confirm"
	ViewAccepted         = "accepted"
	ViewAlreadyAccepted  = "already-accepted"
	ViewDeclined         = "declined"
	ViewAlreadyDeclined  = "already-declined"
	ViewRevoked          = "revoked"
	ViewExpired          = "expired"
	ViewSuperseded       = "superseded"
	ViewRenewalRequested = "renewal-requested"
	ViewRenewalAlready   = "renewal-already-requested"
	ViewInvalid          = "invalid"
	ViewFormExpired      = "form-expired"
	ViewError            = "error"
)

// Codes the page records for the access log and the problem metrics, beside the problem codes,
// when it answers a form with a page rather than a problem.
const (
	codeCSRFFailed = "csrf_failed" // the form's CSRF token did not check out
	codeFormError  = "form_error"  // the form is shown again with a field to correct
)

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
	RequiresPassword bool // a new user, who creates a password; otherwise an existing user signs in
	// Actions the page offers.
	RenewalForm bool
	SignInURL   string
	RetryLink   bool
	TermsURL    string
	// Assets are the versioned URLs of the stylesheet and the script.
	Assets AssetURLs
	// Brand heads a page about no invitation (the reset pages); Foot replaces the footer.
	Brand, Foot string
	// Email prefills the reset request form.
	Email string
	// Continue is where the accepted page sends the invitee (the invitation's allowed
	// redirect_url), and ContinueHost names it on the button.
	Continue     string
	ContinueHost string
}

// Show answers GET /invite?token=: the page of whatever state the link is in.
func (h *Handlers) Show(c *gin.Context) {
	token := c.Query("token")
	link, err := h.invitee.Resolve(c.Request.Context(), token)
	if err != nil {
		h.renderPageProblem(c, token, err)
		return
	}
	h.renderLinkState(c, token, link, 0)
}

// renderLinkState shows the page of the link's current state: the form while the invitation
// is pending, else a page that says what happened and what to do. status overrides the state's
// own HTTP status when non-zero (a refused POST answers 409 or 410, as the API would).
func (h *Handlers) renderLinkState(c *gin.Context, token string, link invitee.Link, status int) {
	inv := link.Invitation
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, Inv: pi, Token: token}
	code := http.StatusOK
	switch {
	case inv.Status == contract.StatusAccepted:
		d.View, d.Tone, d.Title = ViewAlreadyAccepted, "success", "This invitation was already accepted"
		d.Lead = fmt.Sprintf("The invitation to join %s on %s has been accepted, and the access is set up.", pi.Account, pi.Application)
		d.Next = fmt.Sprintf("Sign in with your email address, %s. If you did not accept it yourself, tell %s right away.", pi.Email, pi.contact())
		d.SignInURL = h.signInURL()
	case inv.Status == contract.StatusDeclined:
		h.declinedPage(&d, false)
	case inv.Status == contract.StatusRevoked:
		d.View, d.Tone, d.Title = ViewRevoked, "warning", "This invitation was withdrawn"
		d.Lead = fmt.Sprintf("%s withdrew the invitation to join %s on %s, so it can no longer be accepted.",
			pi.inviter("The account's administrator"), pi.Account, pi.Application)
		d.Next = fmt.Sprintf("If you think this is a mistake, contact %s.", pi.contact())
	case link.Superseded():
		d.View, d.Tone, d.Title = ViewSuperseded, "info", "This link was replaced by a newer invitation"
		d.Lead = fmt.Sprintf("A newer invitation to join %s on %s was sent to %s, and it replaced the link you used.", pi.Account, pi.Application, pi.Email)
		d.Next = fmt.Sprintf("Look in your inbox for the most recent invitation email and use its link. If you cannot find it, ask %s to send it again.", pi.contact())
		code = http.StatusGone
	case link.Expired(h.now()):
		h.expiredPage(c, &d)
		code = http.StatusGone
	default:
		d = h.invitePageData(c, token, link)
	}
	h.renderPage(c, cmp.Or(status, code), d)
}

// invitePageData is the pending invitation's page with its forms.
func (h *Handlers) invitePageData(c *gin.Context, token string, link invitee.Link) pageData {
	pi := newPageInvitation(link.Invitation)
	pi.ExpiryLabel = "Valid until"
	d := pageData{
		Template: tmplInvite, View: ViewInvite, Tone: "info", Inv: pi, Token: token,
		Title: fmt.Sprintf("Join %s on %s", pi.Account, pi.Application),
		CSRF:  h.csrfToken(c, token), TermsURL: h.termsURL(),
	}
	requires, err := h.invitee.RequiresPassword(c.Request.Context(), link.Invitation)
	if err != nil {
		// Asking for a password that is then not needed is harmless; the server decides.
		h.log.Warn("invite page could not tell whether the user exists", "error", err)
		requires = true
	}
	d.RequiresPassword = requires
	return d
}

func (h *Handlers) expiredPage(c *gin.Context, d *pageData) {
	pi := d.Inv
	pi.ExpiryLabel = "Expired on"
	d.View, d.Tone, d.Title = ViewExpired, "warning", "This invitation has expired"
	d.Lead = fmt.Sprintf("Your invitation to join %s on %s expired on %s.", pi.Account, pi.Application, pi.Expires)
	if pi.InviterEmail != "" {
		d.Next = fmt.Sprintf("Ask for a new invitation and we will let %s know. The new invitation will come by email to %s, with a new link.", pi.inviter("the person who invited you"), pi.Email)
	} else {
		d.Next = fmt.Sprintf("Ask for a new invitation and the administrators of %s will see your request. The new invitation will come by email to %s, with a new link.", pi.Account, pi.Email)
	}
	d.RenewalForm = true
	d.CSRF = h.csrfToken(c, d.Token)
}

func (h *Handlers) declinedPage(d *pageData, justNow bool) {
	pi := d.Inv
	d.View, d.Tone, d.Title = ViewAlreadyDeclined, "info", "You declined this invitation"
	if justNow {
		d.View, d.Title = ViewDeclined, "You declined the invitation"
	}
	d.Lead = fmt.Sprintf("You will not get access to %s in %s. %s can see that you declined.", pi.Application, pi.Account, pi.inviter("The person who invited you"))
	d.Next = fmt.Sprintf("Changed your mind? Ask %s to invite you again.", pi.contact())
}

// Refuse shows a problem as a page, for middleware that refuses a page request (rate limits)
// before its handler runs; the token comes from the query or an already parsed form.
func (h *Handlers) Refuse(c *gin.Context, p *problem.Problem) {
	if strings.HasPrefix(c.Request.URL.Path, "/reset") {
		h.renderResetProblem(c, p)
		c.Abort()
		return
	}
	token := c.Query("token")
	if token == "" && c.Request.PostForm != nil {
		token = c.Request.PostForm.Get("token")
	}
	h.renderPageProblem(c, token, p)
	c.Abort()
}

// renderPageProblem shows a problem as a page: a link in a state that refuses the action gets
// that state's page; anything else a page that says what to do.
func (h *Handlers) renderPageProblem(c *gin.Context, token string, err error) {
	p := problem.Log(h.log, c, "invite page failed", err)
	problem.Record(c, string(p.Code))
	switch p.Code {
	case contract.CodeTokenInvalid:
		d := pageData{Template: tmplStatus, View: ViewInvalid, Tone: "danger", Title: "This invitation link does not work"}
		d.Lead = "The link is incomplete or was changed. Some email programs break long links across lines."
		d.Next = "Open the link straight from the invitation email, or copy the whole link into the address bar. If it still does not work, ask the person who invited you to send the invitation again."
		h.renderPage(c, p.Status, d)
		return
	case contract.CodeInvitationExpired, contract.CodeInvalidState:
		if link, lerr := h.invitee.Lookup(c.Request.Context(), token); lerr == nil {
			h.renderLinkState(c, token, link, p.Status)
			return
		}
	}
	p.SetRetryAfter(c)
	d := pageData{Template: tmplStatus, View: ViewError, Tone: "danger", Token: token}
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
	h.renderPage(c, p.Status, d)
}

func (h *Handlers) signInURL() string { return h.cfg.PublicBaseURL }

// termsURL is the Terms of Service the invitee accepts (TERMS_URL).
func (h *Handlers) termsURL() string { return h.cfg.TermsURL }

// CSP is the page's Content-Security-Policy: its own stylesheet and script and nothing
// else; forms post only to this origin; no framing, no <base>.
const CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// setPageHeaders keeps a token-bearing page out of caches, referrers and frames.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// renderPage renders into a buffer first, so a template failure cannot send half a page.
func (h *Handlers) renderPage(c *gin.Context, status int, d pageData) {
	d.Assets = Assets
	if d.TermsURL == "" {
		d.TermsURL = h.termsURL()
	}
	var buf bytes.Buffer
	t, ok := pageTemplates[d.Template]
	err := errors.New("no such page template: " + d.Template)
	if ok {
		err = t.ExecuteTemplate(&buf, "page", d)
	}
	if err != nil {
		h.log.Error("invite page template failed", "view", d.View, "error", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Error</title><p>Something went wrong. Please try again.</p></html>`)
	}
	setPageHeaders(c.Writer.Header())
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}
