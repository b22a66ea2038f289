package contract

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Settings are the lifecycle durations, fixed per invitation when it starts.
type Settings struct {
	TTL               time.Duration
	ReminderBefore    time.Duration
	ResendMinInterval time.Duration
}

// Person names an inviter.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// InvitationInput starts an invitation workflow: the invitation as the API validated it, with
// the names its emails show. It holds no secret: links are recomputed from the invitation id
// and generation by the email activity.
type InvitationInput struct {
	InvitationID     uuid.UUID
	AccountID        uuid.UUID
	AccountName      string
	SubscriptionID   uuid.UUID
	SubscriptionName string
	Application      string
	Role             string
	GroupIDs         []uuid.UUID
	UserID           *uuid.UUID `json:",omitempty"` // an existing user, or nil for a new person
	Email            string
	FirstName        string
	LastName         string
	Phone            string
	Inviter          Person
	Settings         Settings
	// EmailHash is the keyed hash of Email for the InviteeEmailHash search attribute.
	EmailHash string
	// Carried is the state a run starts from: the previous run's when the workflow continues
	// as new, or the invitation's row when renew or request_renewal starts a run after the
	// last one ended (an expired invitation's run completes). Nil on a create.
	Carried *State `json:",omitempty"`
	// Lifecycle is the version of the lifecycle the run follows (see Lifecycle2); zero for runs
	// started before versions were carried in the input.
	Lifecycle int `json:",omitempty"`
	// The create's options (CONTRACT.md "Invitation options"); Settings.TTL is its expires_in.
	// HoldEmail (send_email false) holds the invitee's emails back until a resend sends the
	// first; Metadata is a JSON object.
	HoldEmail   bool            `json:",omitempty"`
	Message     string          `json:",omitempty"`
	Metadata    json.RawMessage `json:",omitempty"`
	RedirectURL string          `json:",omitempty"`
	// Bulk marks an invitation of a bulk batch: its emails queue behind single invitations'.
	Bulk bool `json:",omitempty"`
}

// UnmarshalJSON reads the input as every version wrote it: runs started before the ids were
// typed spell "no user" as "UserID": "", which a *uuid.UUID does not accept.
func (in *InvitationInput) UnmarshalJSON(data []byte) error {
	type plain InvitationInput
	var v struct {
		plain
		UserID *string
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*in = InvitationInput(v.plain)
	in.UserID = nil
	if v.UserID != nil && *v.UserID != "" {
		id, err := uuid.Parse(*v.UserID)
		if err != nil {
			return err
		}
		in.UserID = &id
	}
	return nil
}

// Delivery describes the latest email.
type Delivery struct {
	Status DeliveryStatus `json:"status"`
	Error  string         `json:"error,omitempty"`
}

// State is what the `state` query returns and every update answers with.
type State struct {
	InvitationID uuid.UUID `json:"invitation_id"`
	Status       Status    `json:"status"`
	Generation   int       `json:"generation"`
	ExpiresAt    time.Time `json:"expires_at"`
	Sends        int       `json:"sends"`
	LastSentAt   time.Time `json:"last_sent_at"`
	// InviteSent and ReminderSent say whether this generation's invite and reminder went out.
	InviteSent   bool `json:"invite_sent"`
	ReminderSent bool `json:"reminder_sent"`
	// RenewalRequestedAt is when the invitee last asked for a new invitation.
	RenewalRequestedAt time.Time  `json:"renewal_requested_at,omitempty"`
	Delivery           Delivery   `json:"delivery"`
	UserID             *uuid.UUID `json:"user_id,omitempty"`
	// WaitingFor says in words what the workflow waits for, and until when.
	WaitingFor string `json:"waiting_for"`
}

// AcceptRequest is the accept update's argument. The password arrives hashed: the plaintext
// never leaves the API process.
type AcceptRequest struct {
	Generation   int
	PasswordHash string
}

// AcceptResult is the accept update's answer.
type AcceptResult struct {
	UserID uuid.UUID `json:"user_id"`
}

// DeclineRequest is the decline update's argument: the generation named by the invitee's link.
type DeclineRequest struct {
	Generation int
}

// RenewalRequest is the request_renewal update's argument: the generation of the invitee's
// (expired) link.
type RenewalRequest struct {
	Generation int
}

// RevokeRequest is the revoke update's argument.
type RevokeRequest struct {
	By string // who revoked (the API token's name), for the story in the UI
}

// Detail is the revoked event's detail.
func (r RevokeRequest) Detail() string {
	if r.By == "" {
		return "revoked"
	}
	return "revoked by " + r.By
}

// EditRequest is the edit update's argument: the fields of a PATCH, nil (or zero) where the
// PATCH leaves them. ExpiresIn counts from the edit.
type EditRequest struct {
	Role      *string         `json:",omitempty"`
	GroupIDs  *[]uuid.UUID    `json:",omitempty"`
	Message   *string         `json:",omitempty"`
	Metadata  json.RawMessage `json:",omitempty"`
	ExpiresIn time.Duration   `json:",omitempty"`
	// By names who edited (the API token's name), for the story in the UI.
	By string `json:",omitempty"`
}

// ClosedDetails ride on the invalid_state refusal of a Postgres step whose invitation is
// already closed there: its status, and the user of an accepted one.
type ClosedDetails struct {
	Status Status
	UserID *uuid.UUID
}

// RateLimitDetails rides on a rate_limited error.
type RateLimitDetails struct {
	RetryAfter time.Duration
}
