// Package passwordreset is what the API and the hosted /reset page do for a password reset:
// hand a request to the address's reset workflow, and confirm a new password with a reset
// link's token. The workflow (workflows.PasswordReset) issues the links, emails them and sets
// the password; this package checks what a request may ask and answers as CONTRACT.md says.
package passwordreset

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Store is the part of *store.Store a reset reads.
type Store interface {
	GetPasswordReset(ctx context.Context, userID uuid.UUID) (store.PasswordReset, error)
}

// Service runs password resets.
type Service struct {
	Store Store
	// Signer verifies reset tokens (invitetoken's PasswordReset domain).
	Signer    *invitetoken.Signer
	Hasher    *password.Hasher
	Workflows *workflowclient.Client
	// TTL is each link's validity (PASSWORD_RESET_TTL).
	TTL time.Duration
	// AddressLimit and ClientLimit limit requests per address and per client (nil: none).
	AddressLimit, ClientLimit *ratelimit.Set
	// CheckEmail says what is wrong with an address ("" when nothing): the API's own check of
	// email fields, so a request is refused as a create would refuse its address.
	CheckEmail func(string) string
	Now        func() time.Time
}

// checkEmail says what is wrong with a plain address, for a Service without CheckEmail.
func checkEmail(email string) string {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" || len(email) > 254 {
		return "must be an email address such as name@example.com"
	}
	return ""
}

// Request asks for a reset link for email. Its answer is the same whether or not the address
// belongs to a user: the workflow looks it up. Requests are limited per client, then per
// address; a limited request is refused alike for known and unknown addresses.
func (s *Service) Request(ctx context.Context, email, client string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	check := s.CheckEmail
	if check == nil {
		check = checkEmail
	}
	if email == "" {
		return problem.InvalidField("email", "is required")
	}
	if msg := check(email); msg != "" {
		return problem.InvalidField("email", msg)
	}
	now := s.Now()
	if wait := s.ClientLimit.Take(ctx, "client:"+client, now); wait > 0 {
		return ratelimit.Refusal(wait, "for password resets from this address")
	}
	if wait := s.AddressLimit.Take(ctx, "email:"+email, now); wait > 0 {
		return ratelimit.Refusal(wait, "for password resets of this email address")
	}
	return s.Workflows.RequestPasswordReset(ctx, email, s.TTL)
}

// TokenInvalid is the 404 of a malformed or forged reset token.
func TokenInvalid() *problem.Problem {
	return problem.New(contract.CodeTokenInvalid, "This password-reset link is not valid. Check that the whole link was copied.")
}

// LinkExpired is the 410 of a used, expired or superseded reset link.
func LinkExpired() *problem.Problem {
	return problem.New(contract.CodeLinkExpired, "This password-reset link was used, has expired or was replaced by a newer one. Ask for a new link.")
}

// Link is a verified reset token with the user's newest reset link.
type Link struct {
	Reset      store.PasswordReset
	Generation int
}

// Live reports whether the link can still set a password.
func (l Link) Live(now time.Time) bool { return l.Reset.Live(l.Generation, now) }

// Resolve verifies a reset token and reads the link it names: token_invalid for anything that
// is not a token this service issued.
func (s *Service) Resolve(ctx context.Context, token string) (Link, error) {
	userID, gen, err := s.Signer.Verify(token)
	if err != nil {
		return Link{}, TokenInvalid()
	}
	r, err := s.Store.GetPasswordReset(ctx, userID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && gen > r.Generation) {
		return Link{}, TokenInvalid()
	}
	if err != nil {
		return Link{}, err
	}
	return Link{Reset: r, Generation: gen}, nil
}

// Confirm sets the password of the token's user, once: 410 link_expired for a used, expired or
// superseded link, 422 credentials_invalid for no password and password_policy for a weak one.
// The plaintext goes no further than this function; the workflow gets the argon2id hash.
func (s *Service) Confirm(ctx context.Context, token, pw string) error {
	link, err := s.Resolve(ctx, token)
	if err != nil {
		return err
	}
	if !link.Live(s.Now()) {
		return LinkExpired()
	}
	if pw == "" {
		p := problem.New(contract.CodeCredentialsInvalid, "Type the new password.")
		p.Errors = []problem.FieldError{{Field: "password", Message: "is required"}}
		return p
	}
	if msg := password.Check(pw); msg != "" {
		p := problem.New(contract.CodePasswordPolicy, "%s Passwords need %s.", problem.Sentence(msg), password.PolicyText)
		p.Errors = []problem.FieldError{{Field: "password", Message: msg}}
		return p
	}
	hash, err := s.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	// A fresh update ID: of two confirms racing with one link, the second must fail (its
	// password was not set), not share the first's answer; a link once used answers 410 anyway.
	err = s.Workflows.UpdateWorkflow(ctx, s.Workflows.PasswordResetWorkflowID(link.Reset.Email), contract.UpdatePasswordResetConfirm, "",
		contract.PasswordResetConfirm{Generation: link.Generation, PasswordHash: hash}, nil)
	var p *problem.Problem
	switch {
	case errors.Is(err, workflowclient.ErrWorkflowClosed):
		return LinkExpired() // the run ended with the link's expiry (or its use)
	case errors.As(err, &p) && p.Code == contract.CodeLinkExpired:
		return LinkExpired()
	}
	return err
}
