package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// The invitation workflow's public surface: its name, messages, statuses and search attributes.
// The API server imports this file; nothing here may do I/O.

// WorkflowName is the registered name of the invitation workflow.
const WorkflowName = "Invitation"

// Update and query names.
const (
	UpdateCreate  = "create"
	UpdateAccept  = "accept"
	UpdateDecline = "decline"
	UpdateResend  = "resend"
	UpdateRenew   = "renew"
	UpdateRevoke  = "revoke"
	// UpdateRequestRenewal is the invitee asking, from an expired link, for a new invitation: the
	// inviter gets an email, at most once a day per invitation.
	UpdateRequestRenewal = "request_renewal"
	QueryState           = "state"
)

// RenewalRequestInterval is how often an invitee may ask for a new invitation.
const RenewalRequestInterval = 24 * time.Hour

// InvitationWorkflowID is the workflow ID of an invitation, so support can find it by ID.
func InvitationWorkflowID(invitationID string) string { return "invitation:" + invitationID }

// Status is an invitation's lifecycle state.
type Status string

// Invitation statuses. Rejected is the workflow's own end when the create update failed: no
// invitation was recorded, so the API never shows it.
const (
	StatusPending  Status = "pending"
	StatusAccepted Status = "accepted"
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
	StatusDeclined Status = "declined"
	StatusRejected Status = "rejected"
)

// Terminal reports whether no further transition can happen.
func (s Status) Terminal() bool {
	return s == StatusAccepted || s == StatusRevoked || s == StatusDeclined || s == StatusRejected
}

// Error types carried by ApplicationErrors out of updates and activities. They equal the API's
// problem codes, so the server maps them one to one.
const (
	ErrInvalidState        = "invalid_state"
	ErrInvitationExpired   = "invitation_expired"
	ErrRateLimited         = "rate_limited"
	ErrSeatsExhausted      = "seats_exhausted"
	ErrDuplicateInvitation = "duplicate_invitation"
	ErrAlreadyMember       = "already_member"
	ErrNotFound            = "not_found"
	ErrValidation          = "validation_failed"
)

// BusinessErrorTypes are the error types that retrying cannot fix.
var BusinessErrorTypes = []string{
	ErrInvalidState, ErrInvitationExpired, ErrRateLimited, ErrSeatsExhausted,
	ErrDuplicateInvitation, ErrAlreadyMember, ErrNotFound, ErrValidation,
}

// Typed search attributes, registered on the namespace (make run does it for the dev server).
var (
	SearchStatus         = temporal.NewSearchAttributeKeyKeyword("InvitationStatus")
	SearchAccountID      = temporal.NewSearchAttributeKeyKeyword("AccountId")
	SearchSubscriptionID = temporal.NewSearchAttributeKeyKeyword("SubscriptionId")
	SearchApplication    = temporal.NewSearchAttributeKeyKeyword("Application")
	SearchGeneration     = temporal.NewSearchAttributeKeyInt64("InvitationGeneration")
	SearchDelivery       = temporal.NewSearchAttributeKeyKeyword("DeliveryStatus")
	// SearchEmailHash is a keyed hash of the invitee's lower-cased email (see
	// internal/emailhash), so support can find a person's invitations without the address
	// being written into visibility.
	SearchEmailHash = temporal.NewSearchAttributeKeyKeyword("InviteeEmailHash")
)

// SearchAttributeTypes names every custom search attribute with its Temporal type, for
// registering them (`temporal server start-dev --search-attribute NAME=TYPE`).
var SearchAttributeTypes = map[string]string{
	"InvitationStatus":     "Keyword",
	"AccountId":            "Keyword",
	"SubscriptionId":       "Keyword",
	"Application":          "Keyword",
	"InvitationGeneration": "Int",
	"DeliveryStatus":       "Keyword",
	"InviteeEmailHash":     "Keyword",
}

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

// InvitationInput starts an invitation workflow. It holds no secret: links are recomputed
// from the invitation id and generation by the email activity.
type InvitationInput struct {
	InvitationID     string
	AccountID        string
	AccountName      string
	SubscriptionID   string
	SubscriptionName string
	Application      string
	Role             string
	GroupIDs         []string
	UserID           string // an existing user, or empty for a new person
	Email            string
	FirstName        string
	LastName         string
	Phone            string
	Inviter          Person
	Settings         Settings
	// EmailHash is the keyed hash of Email for the InviteeEmailHash search attribute.
	EmailHash string
	// Carried is set when the workflow continues as new; nil on the first run.
	Carried *State
}

// Delivery describes the latest email.
type Delivery struct {
	Status string `json:"status"` // queued, sent or failed
	Error  string `json:"error,omitempty"`
}

// Delivery statuses.
const (
	DeliveryQueued = "queued"
	DeliverySent   = "sent"
	DeliveryFailed = "failed"
)

// State is what the `state` query returns and every update answers with.
type State struct {
	InvitationID string    `json:"invitation_id"`
	Status       Status    `json:"status"`
	Generation   int       `json:"generation"`
	ExpiresAt    time.Time `json:"expires_at"`
	Sends        int       `json:"sends"`
	LastSentAt   time.Time `json:"last_sent_at"`
	// InviteSent and ReminderSent say whether this generation's invite and reminder went out.
	InviteSent   bool `json:"invite_sent"`
	ReminderSent bool `json:"reminder_sent"`
	// RenewalRequestedAt is when the invitee last asked for a new invitation.
	RenewalRequestedAt time.Time `json:"renewal_requested_at,omitempty"`
	Delivery           Delivery  `json:"delivery"`
	UserID             string    `json:"user_id,omitempty"`
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
	UserID string `json:"user_id"`
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

// RateLimitDetails rides on a rate_limited error.
type RateLimitDetails struct {
	RetryAfter time.Duration
}
