package contract

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// The password reset: a durable flow of its own, one workflow per address. A request
// (POST /v1/password-resets) signals the address's workflow, starting it if none runs; the
// workflow looks the address up, and for a user issues the next generation of the reset link
// (in Postgres, so a newer request supersedes an older link across runs), emails it and waits
// for the confirm, a newer request or the link's expiry. Nothing in the workflow's history
// tells a reader more than the API's answer does: the request of an unknown address ends the
// run with no user named.

// PasswordResetWorkflowName is the registered name of the password-reset workflow.
const PasswordResetWorkflowName = "PasswordReset"

// PasswordResetWorkflowID is the workflow ID of an address's password reset, named by the
// address's keyed hash (emailhash) so the address is not in Temporal's visibility store.
func PasswordResetWorkflowID(emailHash string) string { return "password-reset:" + emailHash }

// SignalPasswordResetRequested is a request for a reset link; UpdatePasswordResetConfirm sets
// the new password with a link's generation.
const (
	SignalPasswordResetRequested = "request"
	UpdatePasswordResetConfirm   = "confirm"
)

// PasswordResetInput starts an address's reset workflow.
type PasswordResetInput struct {
	Email string
	// TTL is how long each link stays valid (PASSWORD_RESET_TTL).
	TTL time.Duration
	// Carried is the live link of the run this one continues as new.
	Carried *PasswordResetIssued `json:",omitempty"`
}

// PasswordResetIssued is a reset link issued to a user: the generation its token names and when
// it expires. Found is false when the address belongs to no user.
type PasswordResetIssued struct {
	Found      bool
	UserID     uuid.UUID
	Generation int
	ExpiresAt  time.Time
}

// PasswordResetConfirm sets a user's new password with the link of Generation. PasswordHash is
// the argon2id hash; the plaintext never leaves the API.
type PasswordResetConfirm struct {
	Generation   int
	PasswordHash string
}

// PasswordResetEmail names one reset email: the user and the link's generation, from which the
// email activity signs the link at send time (no token is ever in a history).
type PasswordResetEmail struct {
	UserID     uuid.UUID
	Generation int
}

// IdempotencyKey is the email's key at the provider.
func (e PasswordResetEmail) IdempotencyKey() string {
	return fmt.Sprintf("password-reset-%s-g%d", e.UserID, e.Generation)
}
