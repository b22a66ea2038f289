package pages

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// CSRF protection of the page's forms: a signed double-submit token. The browser holds a random
// value in a cookie; each form carries an HMAC (keyed from TOKEN_SECRET) over that value, the
// invite token and the time it was issued. A post counts only when the form's token matches the
// cookie it came with, for the invite token it names, within CSRFMaxAge. A site that makes a
// browser post here has neither the cookie's value nor the key, and SameSite=Lax keeps the
// cookie off its cross-site posts anyway.

const (
	// CSRFCookie is the cookie that holds the browser's CSRF value.
	CSRFCookie = "invite_csrf"
	csrfField  = "csrf"
	// CSRFMaxAge is how long a rendered form stays good: a tab left open overnight still works.
	CSRFMaxAge = 24 * time.Hour
	// csrfSkew tolerates clocks of API replicas a little apart.
	csrfSkew = 5 * time.Minute
)

// csrfKey derives the CSRF key from the token secret, so a CSRF tag can never be taken for an
// invite token's or the other way round.
func (h *Handlers) csrfKey() []byte {
	secret := h.cfg.TokenSecret
	if len(secret) == 0 {
		secret = fallbackCSRFSecret()
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("onboarding/invite-page/csrf/v1"))
	return m.Sum(nil)
}

// fallbackCSRFSecret keys CSRF tags of a server built without a token secret (tests): random per
// process, so such a server still refuses forged forms.
var fallbackCSRFSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
})

// csrfSession returns the browser's CSRF cookie value, setting a new one when it has none.
// An existing value is kept, so two invitations open in two tabs both keep working.
func (h *Handlers) csrfSession(c *gin.Context) string {
	if v, err := c.Cookie(CSRFCookie); err == nil && validCSRFSession(v) {
		return v
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(c.Writer, &http.Cookie{
		Name: CSRFCookie, Value: v, Path: csrfCookiePath(c.Request.URL.Path), HttpOnly: true,
		Secure:   c.Request.TLS != nil || strings.HasPrefix(h.cfg.PublicBaseURL, "https://"),
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

// csrfCookiePath scopes the cookie to the pages that post forms: the invitation's or the
// password reset's.
func csrfCookiePath(path string) string {
	if strings.HasPrefix(path, "/reset") {
		return "/reset"
	}
	return "/invite"
}

func validCSRFSession(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 16
}

// csrfToken is the form token for the invite token in this browser.
func (h *Handlers) csrfToken(c *gin.Context, inviteToken string) string {
	return h.signCSRF(h.csrfSession(c), inviteToken, h.now())
}

func (h *Handlers) signCSRF(session, inviteToken string, at time.Time) string {
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 8+sha256.Size), uint64(at.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(out, h.csrfTag(session, inviteToken, out[:8])...))
}

func (h *Handlers) csrfTag(session, inviteToken string, issued []byte) []byte {
	m := hmac.New(sha256.New, h.csrfKey())
	// Length-prefixed parts, so no two different inputs hash the same.
	for _, part := range [][]byte{[]byte(session), []byte(inviteToken), issued} {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		m.Write(part)
	}
	return m.Sum(nil)
}

// checkCSRF reports whether a posted form is this browser's, for this invite token, and fresh.
func (h *Handlers) checkCSRF(c *gin.Context, inviteToken, formToken string) bool {
	if c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		return false // the browser says another site sent it
	}
	session, err := c.Cookie(CSRFCookie)
	if err != nil || !validCSRFSession(session) || len(formToken) > 128 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(formToken)
	if err != nil || len(raw) != 8+sha256.Size {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	now := h.now()
	if issued.After(now.Add(csrfSkew)) || now.Sub(issued) > CSRFMaxAge {
		return false
	}
	return hmac.Equal(raw[8:], h.csrfTag(session, inviteToken, raw[:8]))
}
