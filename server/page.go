package server

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/internal/password"
)

// The hosted acceptance page: what an invite link opens when the portal hosts none of its
// own. Server-rendered, no script, no external asset; it posts plain forms and shares the
// invitee API's logic.

//go:embed templates/invite.html
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "templates/invite.html"))

type pageData struct {
	Nonce            string
	Title            string
	Message          string
	Error            string
	Token            string
	Preview          *previewView
	ShowForm         bool
	RequiresPassword bool
	PolicyText       string
}

// pageTitles name the problems an invitee can meet.
var pageTitles = map[string]string{
	codeTokenInvalid:      "Invitation link not valid",
	codeInvitationExpired: "Invitation expired",
	codeInvalidState:      "Invitation already answered",
	codePayloadTooLarge:   "Request too large",
	codeUnavailable:       "Please try again shortly",
}

func (s *Server) invitePage(c *gin.Context) {
	token := c.Query("token")
	v, err := s.preview(c.Request.Context(), token)
	if err != nil {
		s.renderPageError(c, err)
		return
	}
	s.renderPage(c, http.StatusOK, s.formPage(token, v))
}

// formPage shows the invitation, with the form while it is pending.
func (s *Server) formPage(token string, v previewView) pageData {
	d := pageData{Title: "You are invited to " + v.AccountName, Preview: &v}
	switch v.Status {
	case "pending":
		d.ShowForm, d.Token, d.RequiresPassword, d.PolicyText = true, token, v.RequiresPassword, password.PolicyText
	case "accepted":
		d.Title, d.Message = "Invitation accepted", "This invitation was accepted. You can sign in."
	default:
		d.Title, d.Message = "Invitation "+v.Status, "This invitation was "+v.Status+" and can no longer be accepted."
	}
	return d
}

func (s *Server) invitePageAccept(c *gin.Context) {
	form, ok := s.pageForm(c)
	if !ok {
		return
	}
	token, pw := form.Get("token"), form.Get("password")
	// The page asks twice so a typo does not lock the invitee out; API clients do their own.
	if form.Has("password_confirm") && form.Get("password_confirm") != pw {
		s.renderFormAgain(c, token, http.StatusUnprocessableEntity, "The two passwords differ.")
		return
	}
	terms := form.Get("accept_terms")
	accepted := terms == "true" || terms == "on" || terms == "1"
	if _, err := s.accept(c.Request.Context(), token, pw, accepted); err != nil {
		var p *problem
		if errors.As(err, &p) && (p.Code == codeTermsNotAccepted || p.Code == codePasswordPolicy) {
			s.renderFormAgain(c, token, p.Status, p.Detail)
			return
		}
		s.renderPageError(c, err)
		return
	}
	s.renderPage(c, http.StatusOK, pageData{Title: "Welcome aboard", Message: "Your invitation is accepted and your access is ready. You can now sign in."})
}

func (s *Server) invitePageDecline(c *gin.Context) {
	form, ok := s.pageForm(c)
	if !ok {
		return
	}
	if err := s.decline(c.Request.Context(), form.Get("token")); err != nil {
		s.renderPageError(c, err)
		return
	}
	s.renderPage(c, http.StatusOK, pageData{Title: "Invitation declined", Message: "You declined the invitation. Nothing more will happen."})
}

// pageForm parses the posted form (bounded by the body limit).
func (s *Server) pageForm(c *gin.Context) (url.Values, bool) {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.renderPageError(c, newProblem(codePayloadTooLarge, "The form is too large."))
		} else {
			s.renderPageError(c, invalidField(bodyField, "the form could not be read"))
		}
		return nil, false
	}
	return c.Request.PostForm, true
}

// renderFormAgain shows the form with a message about what to correct.
func (s *Server) renderFormAgain(c *gin.Context, token string, status int, message string) {
	v, err := s.preview(c.Request.Context(), token)
	if err != nil {
		s.renderPageError(c, err)
		return
	}
	d := s.formPage(token, v)
	d.Error = message
	c.Set(ctxProblemCode, "form_error")
	s.renderPage(c, status, d)
}

// renderPageError shows a problem as a page with the problem's status.
func (s *Server) renderPageError(c *gin.Context, err error) {
	p := classify(err)
	if p.Status >= 500 {
		s.log.Log(c.Request.Context(), slog.LevelError, "invite page failed", "route", c.FullPath(),
			"request_id", c.GetString(ctxRequestID), "code", p.Code, "error", errString(p.cause))
		p.Detail = "Something went wrong on our side. Please try again in a moment."
	}
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
	}
	title, ok := pageTitles[p.Code]
	if !ok {
		title = "This did not work"
	}
	c.Set(ctxProblemCode, p.Code)
	s.renderPage(c, p.Status, pageData{Title: title, Error: p.Detail})
}

// renderPage renders into a buffer first, so a template failure cannot send half a page,
// under headers that keep the token-bearing page out of caches, referrers and frames.
func (s *Server) renderPage(c *gin.Context, status int, d pageData) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d.Nonce = base64.StdEncoding.EncodeToString(nonce)
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "page", d); err != nil {
		s.log.Error("invite page template failed", "error", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>Error</title><p>Something went wrong. Please try again.</p>")
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+d.Nonce+"'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}
