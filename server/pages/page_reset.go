package pages

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/onboarding-service/onboarding/server/passwordreset"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
)

// The password reset's page: GET /reset asks for a link by email, or with ?token= (the link
// of the reset email) for the new password; POST /reset/request and /reset/confirm are its
// forms, CSRF-protected as the invitation's are (the request form's CSRF token is bound to no
// link). It acts through passwordreset, as the API's routes do.

// Views of the reset page.
const (
	ViewResetRequest   = "reset-request"
	ViewResetRequested = "reset-requested"
	ViewResetForm      = "reset-form"
	ViewResetDone      = "reset-done"
	ViewResetExpired   = "reset-expired"
	ViewResetInvalid   = "reset-invalid"
	ViewResetError     = "reset-error"
)

const resetFoot = "This page is only for the owner of the account. Do not share its link."

func (h *Handlers) resetPage(c *gin.Context, view, tone, title string) pageData {
	return pageData{Template: tmplReset, View: view, Tone: tone, Title: title, Brand: "Password reset", Foot: resetFoot}
}

// ShowReset answers GET /reset[?token=].
func (h *Handlers) ShowReset(c *gin.Context) {
	token := c.Query("token")
	if token == "" {
		h.renderResetRequest(c, http.StatusOK, "", nil)
		return
	}
	link, err := h.resets.Resolve(c.Request.Context(), token)
	switch {
	case err != nil:
		h.renderResetProblem(c, err)
	case !link.Live(h.now()):
		h.renderResetProblem(c, passwordreset.LinkExpired())
	default:
		h.renderResetForm(c, http.StatusOK, token, link.Reset.Email, nil)
	}
}

func (h *Handlers) renderResetRequest(c *gin.Context, status int, email string, fieldErrors map[string]string) {
	d := h.resetPage(c, ViewResetRequest, "info", "Reset your password")
	d.Lead = "Type the email address you sign in with. If it belongs to an account, we will email it a link to choose a new password."
	d.Email, d.CSRF = email, h.csrfToken(c, "")
	if fieldErrors != nil {
		d.Error, d.FieldErrors = "Please correct the highlighted field.", fieldErrors
		problem.Record(c, codeFormError)
	}
	h.renderPage(c, status, d)
}

func (h *Handlers) renderResetForm(c *gin.Context, status int, token, email string, fieldErrors map[string]string) {
	d := h.resetPage(c, ViewResetForm, "info", "Choose a new password")
	d.Lead = "The new password replaces the old one for every account you reach with this email address."
	d.Token, d.Email, d.CSRF = token, email, h.csrfToken(c, token)
	if fieldErrors != nil {
		d.Error, d.FieldErrors = "Please correct the highlighted field.", fieldErrors
		problem.Record(c, codeFormError)
	}
	h.renderPage(c, status, d)
}

// ResetRequest answers the request form: the same page whether or not the address is known.
func (h *Handlers) ResetRequest(c *gin.Context) {
	form, ok := h.resetForm(c, func(form url.Values) string { return "" })
	if !ok {
		return
	}
	email := form.Get("email")
	err := h.resets.Request(c.Request.Context(), email, c.ClientIP())
	var p *problem.Problem
	switch {
	case errors.As(err, &p) && p.Code == contract.CodeValidation:
		h.renderResetRequest(c, p.Status, email, map[string]string{"email": "Type an email address, such as name@example.com."})
	case err != nil:
		h.renderResetProblem(c, err)
	default:
		d := h.resetPage(c, ViewResetRequested, "success", "Check your email")
		d.Lead = "If " + email + " belongs to an account, we have sent it a link to choose a new password. The link works once, for a limited time."
		d.Next = "Nothing arrived after a few minutes? Look in your spam folder, or ask for a link again."
		h.renderPage(c, http.StatusOK, d)
	}
}

// ResetConfirm answers the new-password form.
func (h *Handlers) ResetConfirm(c *gin.Context) {
	form, ok := h.resetForm(c, func(form url.Values) string { return form.Get("token") })
	if !ok {
		return
	}
	token, pw := form.Get("token"), form.Get("password")
	link, err := h.resets.Resolve(c.Request.Context(), token)
	if err != nil {
		h.renderResetProblem(c, err)
		return
	}
	if form.Has("password_confirm") && form.Get("password_confirm") != pw && link.Live(h.now()) {
		h.renderResetForm(c, http.StatusUnprocessableEntity, token, link.Reset.Email,
			map[string]string{"password_confirm": "The two passwords differ. Type the same password twice."})
		return
	}
	err = h.resets.Confirm(c.Request.Context(), token, pw)
	var p *problem.Problem
	switch {
	case errors.As(err, &p) && (p.Code == contract.CodePasswordPolicy || p.Code == contract.CodeCredentialsInvalid):
		h.renderResetForm(c, p.Status, token, link.Reset.Email, map[string]string{"password": p.Detail})
	case err != nil:
		h.renderResetProblem(c, err)
	default:
		d := h.resetPage(c, ViewResetDone, "success", "Your password was changed")
		d.Lead = "Sign in with " + link.Reset.Email + " and the new password. The reset link will not work again."
		d.Next = "If you were accepting an invitation, open its link again and accept with the new password."
		d.SignInURL = h.signInURL()
		h.renderPage(c, http.StatusOK, d)
	}
}

// resetForm parses a posted reset form and checks its CSRF token, bound to the link the form
// names (tokenOf); on failure it has answered.
func (h *Handlers) resetForm(c *gin.Context, tokenOf func(url.Values) string) (url.Values, bool) {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.renderResetProblem(c, problem.New(contract.CodePayloadTooLarge, "The form is too large."))
		} else {
			h.renderResetProblem(c, problem.InvalidField(problem.BodyField, "the form could not be read"))
		}
		return nil, false
	}
	form := c.Request.PostForm
	if !h.checkCSRF(c, tokenOf(form), form.Get(csrfField)) {
		problem.Record(c, codeCSRFFailed)
		d := h.resetPage(c, ViewFormExpired, "warning", "This page has expired")
		d.Lead = "For your security, we did not act on the form you sent: it was out of date, or it came from another site."
		d.Next = "Open the link again and retry. If this keeps happening, make sure your browser accepts cookies from this site."
		d.RetryLink = true
		h.renderPage(c, http.StatusForbidden, d)
		return nil, false
	}
	return form, true
}

// renderResetProblem shows a problem of the reset as a page.
func (h *Handlers) renderResetProblem(c *gin.Context, err error) {
	p := problem.Log(h.log, c, "reset page failed", err)
	problem.Record(c, string(p.Code))
	p.SetRetryAfter(c)
	var d pageData
	switch {
	case p.Code == contract.CodeTokenInvalid:
		d = h.resetPage(c, ViewResetInvalid, "danger", "This password-reset link does not work")
		d.Lead = "The link is incomplete or was changed. Some email programs break long links across lines."
		d.Next = "Open the link straight from the email, or ask for a new one."
		d.RetryLink = true
	case p.Code == contract.CodeLinkExpired:
		d = h.resetPage(c, ViewResetExpired, "warning", "This password-reset link no longer works")
		d.Lead = "It was used already, it expired, or a newer link replaced it. Only the newest link works, once."
		d.Next = "Ask for a new link below."
		d.CSRF = h.csrfToken(c, "")
	case p.Code == contract.CodeRateLimited:
		d = h.resetPage(c, ViewResetError, "warning", "Too many attempts")
		d.Lead = "We received more requests than we accept in a short time."
		d.Next = "Please wait a while, then try again."
	case p.Status >= 500:
		d = h.resetPage(c, ViewResetError, "danger", "Something went wrong on our side")
		d.Lead = "We could not complete this just now."
		d.Next = "Please try again in a moment."
		d.RetryLink = true
	default:
		d = h.resetPage(c, ViewResetError, "danger", "This did not work")
		d.Lead = p.Detail
		d.RetryLink = true
	}
	h.renderPage(c, p.Status, d)
}
