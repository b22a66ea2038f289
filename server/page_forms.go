package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
)

// The page's forms: accept, decline (with a confirmation first) and, on the expired page, ask
// for a new invitation. Each is a plain form post with a CSRF token (page_csrf.go), answered
// with a page.

// invitePageAccept answers the accept form.
func (s *Server) invitePageAccept(c *gin.Context) {
	form, token, link, ok := s.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pw := form.Get("password")
	// The page asks twice so a typo does not lock the invitee out; API clients do their own.
	if form.Has("password_confirm") && form.Get("password_confirm") != pw {
		s.renderFormAgain(c, token, link, http.StatusUnprocessableEntity, "password_confirm", "The two passwords differ. Type the same password twice.")
		return
	}
	terms := form.Get("accept_terms")
	accepted := terms == "true" || terms == "on" || terms == "1"
	if _, err := s.accept(ctx, token, pw, accepted); err != nil {
		var p *problem
		switch {
		case errors.As(err, &p) && p.Code == contract.CodeTermsNotAccepted:
			s.renderFormAgain(c, token, link, p.Status, "accept_terms", "Tick the box to accept the Terms of Service. You cannot join without accepting them.")
		case errors.As(err, &p) && p.Code == contract.CodePasswordPolicy:
			s.renderFormAgain(c, token, link, p.Status, "password", p.Detail)
		default:
			s.renderPageProblem(c, token, err)
		}
		return
	}
	inv, err := s.store.GetInvitation(ctx, link.inv.ID)
	if err != nil {
		inv = link.inv // the accept is done; the page can say so from what it read before
	}
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, View: viewAccepted, Tone: "success", Inv: pi, Token: token,
		Title: "Welcome to " + pi.Account, SignInURL: s.signInURL()}
	d.Lead = fmt.Sprintf("You accepted the invitation. Your access is ready: %s in %s, in %s.", pi.Role, pi.Application, pi.Account)
	d.Next = fmt.Sprintf("Sign in with your email address, %s. We have also sent you a welcome email.", pi.Email)
	s.renderPage(c, http.StatusOK, d)
}

// invitePageDecline answers the decline button: first with a confirmation, then, confirmed,
// by declining.
func (s *Server) invitePageDecline(c *gin.Context) {
	form, token, link, ok := s.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if form.Get("confirm") != "yes" {
		if p := link.usable(s.now()); p != nil {
			s.renderLinkState(c, token, link, p.Status)
			return
		}
		pi := newPageInvitation(link.inv)
		d := pageData{Template: tmplDecline, View: viewDeclineConfirm, Tone: "warning", Inv: pi, Token: token,
			Title: fmt.Sprintf("Decline the invitation to %s?", pi.Account), CSRF: s.csrfToken(c, token)}
		d.Lead = fmt.Sprintf("If you decline, you will not get access to %s in %s, and %s will see that you declined. You cannot undo this: to join later, you would need a new invitation.",
			pi.Application, pi.Account, pi.inviter("the person who invited you"))
		s.renderPage(c, http.StatusOK, d)
		return
	}
	if err := s.decline(ctx, token); err != nil {
		s.renderPageProblem(c, token, err)
		return
	}
	d := pageData{Template: tmplStatus, Inv: newPageInvitation(link.inv), Token: token}
	s.declinedPage(&d, true)
	s.renderPage(c, http.StatusOK, d)
}

// invitePageRequestRenewal answers "Ask for a new invitation" on the expired page: the
// workflow records the request and emails the inviter, at most once a day.
func (s *Server) invitePageRequestRenewal(c *gin.Context) {
	_, token, link, ok := s.pageForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	inv := link.inv
	if link.generation < inv.Generation || !link.expired(s.now()) {
		s.renderLinkState(c, token, link, 0) // nothing to ask for: show where the link stands
		return
	}
	var st contract.State
	err := s.updateInvitation(ctx, inv.ID, contract.UpdateRequestRenewal, contract.RenewalRequest{Generation: link.generation}, &st)
	pi := newPageInvitation(inv)
	d := pageData{Template: tmplStatus, Inv: pi, Token: token}
	var p *problem
	switch {
	case err == nil:
		d.View, d.Tone, d.Title = viewRenewalRequested, "success", "We asked for a new invitation"
		if pi.InviterEmail != "" {
			d.Lead = fmt.Sprintf("We let %s know that you would like a new invitation to join %s on %s.", pi.inviter("the person who invited you"), pi.Account, pi.Application)
		} else {
			d.Lead = fmt.Sprintf("We recorded your request for a new invitation to join %s on %s; its administrators will see it.", pi.Account, pi.Application)
		}
		d.Next = fmt.Sprintf("When the new invitation is sent, it arrives by email at %s with a new link. The link you used will not work again.", pi.Email)
		s.renderPage(c, http.StatusOK, d)
	case errors.As(err, &p) && p.Code == contract.CodeRateLimited:
		d.View, d.Tone, d.Title = viewRenewalAlready, "info", "You already asked for a new invitation today"
		d.Lead = fmt.Sprintf("A request for a new invitation to join %s was sent in the last 24 hours, so we did not send another one.", pi.Account)
		d.Next = fmt.Sprintf("%s has been told. If you need access sooner, contact them directly.", pi.inviter("The person who invited you"))
		if pi.InviterEmail != "" {
			d.Next = fmt.Sprintf("%s has been told. If you need access sooner, write to them directly at %s.", pi.inviter("The person who invited you"), pi.InviterEmail)
		} else {
			d.Next = fmt.Sprintf("The administrators of %s can see your request. If you need access sooner, contact %s directly.", pi.Account, pi.contact())
		}
		if p.retryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
		}
		c.Set(ctxProblemCode, string(p.Code))
		s.renderPage(c, http.StatusTooManyRequests, d)
	case errors.Is(err, errWorkflowClosed), errors.As(err, &p) && (p.Code == contract.CodeInvalidState || p.Code == contract.CodeInvitationExpired):
		// The invitation moved on meanwhile (renewed, revoked): show where it stands now.
		s.renderCurrentState(c, token, http.StatusConflict)
	default:
		s.renderPageProblem(c, token, err)
	}
}

// renderCurrentState re-reads the link and shows its state.
func (s *Server) renderCurrentState(c *gin.Context, token string, status int) {
	link, err := s.resolveLink(c.Request.Context(), token)
	if err != nil {
		s.renderPageProblem(c, token, err)
		return
	}
	s.renderLinkState(c, token, link, status)
}

// pageForm parses the posted form (bounded by the body limit), checks its CSRF token and
// resolves its invite link; on failure it has answered already.
func (s *Server) pageForm(c *gin.Context) (url.Values, string, inviteLink, bool) {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.renderPageProblem(c, "", newProblem(contract.CodePayloadTooLarge, "The form is too large."))
		} else {
			s.renderPageProblem(c, "", invalidField(bodyField, "the form could not be read"))
		}
		return nil, "", inviteLink{}, false
	}
	form := c.Request.PostForm
	token := form.Get("token")
	// A link that is no link gets its page first: whatever the CSRF token, nothing could happen.
	if _, _, err := s.signer.Verify(token); err != nil {
		s.renderPageProblem(c, token, tokenInvalid())
		return nil, "", inviteLink{}, false
	}
	if !s.checkCSRF(c, token, form.Get(csrfField)) {
		c.Set(ctxProblemCode, "csrf_failed")
		d := pageData{Template: tmplStatus, View: viewFormExpired, Tone: "warning", Title: "This page has expired", Token: token}
		d.Lead = "For your security, we did not act on the form you sent: it was out of date, or it came from another site."
		d.Next = "Open the invitation again and retry. If this keeps happening, make sure your browser accepts cookies from this site."
		d.RetryLink = token != "" && len(token) <= maxPageTokenLen
		s.renderPage(c, http.StatusForbidden, d)
		return nil, "", inviteLink{}, false
	}
	link, err := s.resolveLink(c.Request.Context(), token)
	if err != nil {
		s.renderPageProblem(c, token, err)
		return nil, "", inviteLink{}, false
	}
	return form, token, link, true
}

// maxPageTokenLen bounds the token a page links back to; real tokens are far shorter.
const maxPageTokenLen = 512

// renderFormAgain shows the form with a message about the field to correct.
func (s *Server) renderFormAgain(c *gin.Context, token string, link inviteLink, status int, field, message string) {
	if p := link.usable(s.now()); p != nil {
		s.renderLinkState(c, token, link, p.Status)
		return
	}
	d := s.invitePageData(c, token, link)
	d.Error = "Please correct the highlighted field."
	d.FieldErrors = map[string]string{field: message}
	c.Set(ctxProblemCode, "form_error")
	s.renderPage(c, status, d)
}
