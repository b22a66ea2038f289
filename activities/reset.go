package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
)

// The password reset's activities (workflows.PasswordReset): issue a link, email it, set the
// new password. The link's token is signed here, at send time, and only here.

// ResetStore is the part of the store the password reset uses.
type ResetStore interface {
	IssuePasswordReset(ctx context.Context, email string, ttl time.Duration) (contract.PasswordResetIssued, error)
	GetPasswordReset(ctx context.Context, userID uuid.UUID) (store.PasswordReset, error)
	ConfirmPasswordReset(ctx context.Context, userID uuid.UUID, gen int, passwordHash string) error
	FinishPasswordResetEmail(ctx context.Context, userID uuid.UUID, gen int, status contract.DeliveryStatus, providerID, errMsg string) error
}

// ResetLinks computes the link of a user's reset generation.
type ResetLinks interface {
	ResetURL(userID uuid.UUID, generation int) string
}

// IssuePasswordReset issues the next reset link of the address's user, if it has one.
func (a *Activities) IssuePasswordReset(ctx context.Context, in contract.PasswordResetInput) (contract.PasswordResetIssued, error) {
	return a.Resets.IssuePasswordReset(ctx, in.Email, in.TTL)
}

// ConfirmPasswordResetInput sets a user's password with the link of a generation.
type ConfirmPasswordResetInput struct {
	UserID       uuid.UUID
	Generation   int
	PasswordHash string
}

// ConfirmPasswordReset sets the password and uses the link up; a dead link is link_expired.
func (a *Activities) ConfirmPasswordReset(ctx context.Context, in ConfirmPasswordResetInput) error {
	err := a.Resets.ConfirmPasswordReset(ctx, in.UserID, in.Generation, in.PasswordHash)
	if errors.Is(err, store.ErrResetLinkDead) {
		return temporal.NewApplicationErrorWithOptions(err.Error(), string(contract.CodeLinkExpired),
			temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
	}
	return err
}

// SendPasswordResetEmail emails the reset link of a generation, at most once (the provider's
// idempotency key is the email's), unless a newer link, a use or the expiry made it pointless.
func (a *Activities) SendPasswordResetEmail(ctx context.Context, in contract.PasswordResetEmail) (SendEmailResult, error) {
	r, err := a.Resets.GetPasswordReset(ctx, in.UserID)
	if err != nil {
		return SendEmailResult{}, businessError(err)
	}
	switch {
	case r.Generation == in.Generation && r.EmailStatus != contract.DeliveryQueued:
		return SendEmailResult{Status: r.EmailStatus}, nil // an earlier attempt finished
	case !r.Live(in.Generation, time.Now()):
		a.Metrics.Email(contract.KindPasswordReset, string(contract.DeliverySkipped))
		return SendEmailResult{Status: contract.DeliverySkipped}, nil
	}
	msg, err := a.renderPasswordReset(r)
	if err != nil {
		return SendEmailResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTemplate, err)
	}
	msg.IdempotencyKey = in.IdempotencyKey()
	providerID, err := a.Mailer.Send(ctx, msg)
	switch {
	case errors.Is(err, ErrRejected):
		a.Metrics.Email(contract.KindPasswordReset, string(contract.DeliveryFailed))
		return SendEmailResult{Status: contract.DeliveryFailed, Error: err.Error()},
			a.Resets.FinishPasswordResetEmail(ctx, in.UserID, in.Generation, contract.DeliveryFailed, "", err.Error())
	case err != nil:
		a.Metrics.Email(contract.KindPasswordReset, metrics.EmailResultError)
		return SendEmailResult{}, err // retried with the same idempotency key
	}
	a.Metrics.Email(contract.KindPasswordReset, string(contract.DeliverySent))
	return SendEmailResult{Status: contract.DeliverySent},
		a.Resets.FinishPasswordResetEmail(ctx, in.UserID, in.Generation, contract.DeliverySent, providerID, "")
}

func (a *Activities) renderPasswordReset(r store.PasswordReset) (Message, error) {
	d := emailData{
		Email: oneLine(r.Email), FirstName: oneLine(r.FirstName),
		Account: "Your account", Application: "Password reset",
		ExpiresAt: r.ExpiresAt.UTC().Format(contract.ExpiryLayout),
		Link:      a.ResetLinks.ResetURL(r.UserID, r.Generation),
		Preheader: "Choose a new password. The link works once, until " + r.ExpiresAt.UTC().Format(contract.ExpiryLayout) + ".",
		Footer: fmt.Sprintf("You received this email because someone asked to reset the password of %s. If it was not you, ignore it: your password stays as it is.",
			oneLine(r.Email)),
	}
	var html, text bytes.Buffer
	kind := string(contract.KindPasswordReset)
	if err := htmlTemplates.ExecuteTemplate(&html, kind+".html", d); err != nil {
		return Message{}, err
	}
	if err := textTemplates.ExecuteTemplate(&text, kind+".txt", d); err != nil {
		return Message{}, err
	}
	return Message{
		From: a.From, To: r.Email, Subject: "Reset your password", HTML: html.String(), Text: text.String(),
		Tags: map[string]string{"kind": kind}, Link: d.Link,
	}, nil
}
