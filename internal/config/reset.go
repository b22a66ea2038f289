package config

import (
	"fmt"
	"strings"
	"time"
)

// PasswordReset configures the password reset (POST /v1/password-resets and the hosted /reset
// page).
type PasswordReset struct {
	// PasswordResetTTL is how long a reset link stays valid (PASSWORD_RESET_TTL, 1h).
	PasswordResetTTL time.Duration
	// PasswordResetURLTemplate is the link in the reset email, {token} replaced by the token
	// (PASSWORD_RESET_URL_TEMPLATE, default {PUBLIC_BASE_URL}/reset?token={token}).
	PasswordResetURLTemplate string
	// RatePasswordResetEmail and RatePasswordResetIP limit reset requests per address
	// (RATE_LIMIT_PASSWORD_RESET_EMAIL, 3/1h) and per client (RATE_LIMIT_PASSWORD_RESET_IP,
	// 10/1h). A limited request answers 429 whether or not the address belongs to anyone.
	// Confirms carry a signed token that cannot be guessed; they are limited per client by
	// RATE_LIMIT_INVITEE_IP, as every unauthenticated route is.
	RatePasswordResetEmail RateLimit
	RatePasswordResetIP    RateLimit
}

// maxPasswordResetTTL keeps a reset link short-lived: it is a key to the account.
const maxPasswordResetTTL = 24 * time.Hour

func (c *Config) loadPasswordReset(str func(name, def string) string, dur func(name, def string, allowZero bool) time.Duration) []error {
	var errs []error
	c.PasswordResetTTL = dur("PASSWORD_RESET_TTL", "1h", false)
	if c.PasswordResetTTL > maxPasswordResetTTL || (c.PasswordResetTTL > 0 && c.PasswordResetTTL < time.Minute) {
		errs = append(errs, fmt.Errorf("PASSWORD_RESET_TTL: %s must be between 1m and %s", c.PasswordResetTTL, maxPasswordResetTTL))
	}
	c.PasswordResetURLTemplate = strings.ReplaceAll(str("PASSWORD_RESET_URL_TEMPLATE", "{PUBLIC_BASE_URL}/reset?token={token}"),
		"{PUBLIC_BASE_URL}", c.PublicBaseURL)
	if !strings.Contains(c.PasswordResetURLTemplate, "{token}") {
		errs = append(errs, fmt.Errorf("PASSWORD_RESET_URL_TEMPLATE: %q must contain {token}", c.PasswordResetURLTemplate))
	}
	rate := func(name, def string) RateLimit {
		r, err := ParseRateLimit(str(name, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return r
	}
	c.RatePasswordResetEmail = rate("RATE_LIMIT_PASSWORD_RESET_EMAIL", "3/1h")
	c.RatePasswordResetIP = rate("RATE_LIMIT_PASSWORD_RESET_IP", "10/1h")
	return errs
}
