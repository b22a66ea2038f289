package pages

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
)

// The page's forms: accept, decline (with a confirmation first) and, on the expired page, ask
// for a new invitation. Each is a plain form post with a CSRF token (page_csrf.go), answered
// with a page.

// Accept answers the accept form.
func (h *Handlers) Accept(c *gin.Context) {
	form, token, link, ok := h.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pw := form.Get("password")
	// The page asks twice so a typo does not lock the invitee out; API clients do their own.
	if form.Has("password_confirm") && form.Get("password_confirm") != pw {
		h.renderFormAgain(c, token, link, http.StatusUnprocessableEntity, "password_confirm", "The two passwords differ. Type the same password twice.")
		return
	}
	terms := form.Get("accept_terms")
	accepted := terms == "true" || terms == "on" || terms == "1"
	if _, err := h.invitee.Accept(ctx, link, pw, accepted, c.ClientIP()); err != nil {
		var p *problem.Problem
		switch {
		case errors.As(err, &p) && p.Code == contract.CodeTermsNotAccepted:
			h.renderFormAgain(c, token, link, p.Status, "accept_terms", "Tick the box to accept the Terms of Service. You cannot join without accepting them.")
		case errors.As(err, &p) && p.Code == contract.CodePasswordPolicy:
			h.renderFormAgain(c, token, link, p.Status, "password", p.Detail)
		case errors.As(err, &p) && p.Code == contract.CodeCredentialsInvalid:
			h.renderFormAgain(c, token, link, p.Status, "password", "That is not the password of your account. Type it again, or reset it if you forgot it.")
		default:
			h.renderPageProblem(c, token, err)
		}
		return
	}
	inv, err := h.invitee.Invitation(ctx, link.Invitation.ID)
	if err != nil {
		inv = link.Invitation // the accept is done; the page can say so from what it read before
	}
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, View: ViewAccepted, Tone: "success", Inv: pi, Token: token,
		Title: "Welcome to " + pi.Account, SignInURL: h.signInURL()}
	d.Lead = fmt.Sprintf("You accepted the invitation. Your access is ready: %s in %s, in %s.", pi.Role, pi.Application, pi.Account)
	d.Next = fmt.Sprintf("Sign in with your email address, %s. We have also sent you a welcome email.", pi.Email)
	// The portal's redirect_url, followed only while its origin is allowed (never an open
	// redirect): the page shows it as the way on and moves there by itself.
	if inv.RedirectURL != "" && h.redirectAllowed(ctx, inv.AccountID, inv.RedirectURL) {
		if u, err := url.Parse(inv.RedirectURL); err == nil {
			d.Continue, d.ContinueHost, d.SignInURL = u.String(), u.Host, ""
			d.Next = fmt.Sprintf("Taking you to %s. We have also sent you a welcome email.", u.Host)
		}
	}
	h.renderPage(c, http.StatusOK, d)
}

// Decline answers the decline button: first with a confirmation, then, confirmed,
// by declining.
func (h *Handlers) Decline(c *gin.Context) {
	form, token, link, ok := h.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if form.Get("confirm") != "yes" {
		if p := link.Usable(h.now()); p != nil {
			h.renderLinkState(c, token, link, p.Status)
			return
		}
		pi := newPageInvitation(link.Invitation)
		d := pageData{Template: tmplDecline, View: ViewDeclineConfirm, Tone: "warning", Inv: pi, Token: token,
			Title: fmt.Sprintf("Decline the invitation to %s?", pi.Account), CSRF: h.csrfToken(c, token)}
		d.Lead = fmt.Sprintf("If you decline, you will not get access to %s in %s, and %s will see that you declined. You cannot undo this: to join later, you would need a new invitation.",
			pi.Application, pi.Account, pi.inviter("the person who invited you"))
		h.renderPage(c, http.StatusOK, d)
		return
	}
	if err := h.invitee.Decline(ctx, link); err != nil {
		h.renderPageProblem(c, token, err)
		return
	}
	d := pageData{Template: tmplStatus, Inv: newPageInvitation(link.Invitation), Token: token}
	h.declinedPage(&d, true)
	h.renderPage(c, http.StatusOK, d)
}

// RequestRenewal answers "Ask for a new invitation" on the expired page: the
// workflow records the request and emails the inviter, at most once a day.
func (h *Handlers) RequestRenewal(c *gin.Context) {
	_, token, link, ok := h.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	inv := link.Invitation
	if link.Superseded() || !link.Expired(h.now()) {
		h.renderLinkState(c, token, link, 0) // nothing to ask for: show where the link stands
		return
	}
	err := h.invitee.RequestRenewal(ctx, link)
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, Inv: pi, Token: token}
	var p *problem.Problem
	switch {
	case err == nil:
		d.View, d.Tone, d.Title = ViewRenewalRequested, "success", "We asked for a new invitation"
		if pi.InviterEmail != "" {
			d.Lead = fmt.Sprintf("We let %s know that you would like a new invitation to join %s on %s.", pi.inviter("the person who invited you"), pi.Account, pi.Application)
		} else {
			d.Lead = fmt.Sprintf("We recorded your request for a new invitation to join %s on %s; its administrators will see it.", pi.Account, pi.Application)
		}
		d.Next = fmt.Sprintf("When the new invitation is sent, it arrives by email at %s with a new link. The link you used will not work again.", pi.Email)
		h.renderPage(c, http.StatusOK, d)
	case errors.As(err, &p) && p.Code == contract.CodeRateLimited:
		d.View, d.Tone, d.Title = ViewRenewalAlready, "info", "You already asked for a new invitation today"
		d.Lead = fmt.Sprintf("A request for a new invitation to join %s was sent in the last 24 hours, so we did not send another one.", pi.Account)
		d.Next = fmt.Sprintf("%s has been told. If you need access sooner, contact them directly.", pi.inviter("The person who invited you"))
		if pi.InviterEmail != "" {
			d.Next = fmt.Sprintf("%s has been told. If you need access sooner, write to them directly at %s.", pi.inviter("The person who invited you"), pi.InviterEmail)
		} else {
			d.Next = fmt.Sprintf("The administrators of %s can see your request. If you need access sooner, contact %s directly.", pi.Account, pi.contact())
		}
		p.SetRetryAfter(c)
		problem.Record(c, string(p.Code))
		h.renderPage(c, http.StatusTooManyRequests, d)
	case invitee.MovedOn(err):
		// The invitation moved on meanwhile (renewed, revoked): show where it stands now.
		h.renderCurrentState(c, token, http.StatusConflict)
	default:
		h.renderPageProblem(c, token, err)
	}
}

// renderCurrentState re-reads the link and shows its state.
func (h *Handlers) renderCurrentState(c *gin.Context, token string, status int) {
	link, err := h.invitee.Lookup(c.Request.Context(), token)
	if err != nil {
		h.renderPageProblem(c, token, err)
		return
	}
	h.renderLinkState(c, token, link, status)
}

// pageForm parses the posted form (bounded by the body limit), admits its invite link (the
// per-link limit counts it here, once), checks its CSRF token and reads the link's invitation;
// on failure it has answered already.
func (h *Handlers) pageForm(c *gin.Context) (url.Values, string, invitee.Link, bool) {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.renderPageProblem(c, "", problem.New(contract.CodePayloadTooLarge, "The form is too large."))
		} else {
			h.renderPageProblem(c, "", problem.InvalidField(problem.BodyField, "the form could not be read"))
		}
		return nil, "", invitee.Link{}, false
	}
	form := c.Request.PostForm
	token := form.Get("token")
	// A link that is no link gets its page first: whatever the CSRF token, nothing could happen.
	// A link used too often is refused before the form is looked at, as the address limit is.
	if err := h.invitee.Admit(c.Request.Context(), token); err != nil {
		var p *problem.Problem
		if errors.As(err, &p) && p.Code == contract.CodeRateLimited {
			// The same page as the address limit's, which answers before the form is read.
			token = c.Query("token")
		}
		h.renderPageProblem(c, token, err)
		return nil, "", invitee.Link{}, false
	}
	if !h.checkCSRF(c, token, form.Get(csrfField)) {
		problem.Record(c, codeCSRFFailed)
		d := pageData{Template: tmplStatus, View: ViewFormExpired, Tone: "warning", Title: "This page has expired", Token: token}
		d.Lead = "For your security, we did not act on the form you sent: it was out of date, or it came from another site."
		d.Next = "Open the invitation again and retry. If this keeps happening, make sure your browser accepts cookies from this site."
		d.RetryLink = token != "" && len(token) <= maxPageTokenLen
		h.renderPage(c, http.StatusForbidden, d)
		return nil, "", invitee.Link{}, false
	}
	link, err := h.invitee.Lookup(c.Request.Context(), token)
	if err != nil {
		h.renderPageProblem(c, token, err)
		return nil, "", invitee.Link{}, false
	}
	return form, token, link, true
}

// maxPageTokenLen bounds the token a page links back to; real tokens are far shorter.
const maxPageTokenLen = 512

// renderFormAgain shows the form with a message about the field to correct.
func (h *Handlers) renderFormAgain(c *gin.Context, token string, link invitee.Link, status int, field, message string) {
	if p := link.Usable(h.now()); p != nil {
		h.renderLinkState(c, token, link, p.Status)
		return
	}
	d := h.invitePageData(c, token, link)
	d.Error = "Please correct the highlighted field."
	d.FieldErrors = map[string]string{field: message}
	problem.Record(c, codeFormError)
	h.renderPage(c, status, d)
}
