// Package contract is the invitation workflow's contract with everything around it: the
// workflow's name and ID, its update and query names with their payloads, the statuses, the
// error codes, the email kinds and the search-attribute keys. The workflow, its activities, the
// API, the Temporal client and the dev stack all import it; it imports nothing of ours and does
// no I/O, so the API binary links none of the worker's code.
package contract

import (
	"time"

	"github.com/google/uuid"
)

// WorkflowName is the registered name of the invitation workflow.
const WorkflowName = "Invitation"

// InvitationWorkflowID is the workflow ID of an invitation, so support can find it by ID.
func InvitationWorkflowID(invitationID uuid.UUID) string {
	return "invitation:" + invitationID.String()
}

// EmailTaskQueue is the throttled task queue of the email activities, beside the main one.
func EmailTaskQueue(mainQueue string) string { return mainQueue + "-email" }

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

// CreateUpdateID is the create update's fixed ID: a repeated update-with-start of one
// invitation gets the first create's outcome instead of creating twice.
const CreateUpdateID = "create"

// RenewalRequestInterval is how often an invitee may ask for a new invitation.
const RenewalRequestInterval = 24 * time.Hour

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

// Statuses are the statuses an invitation shows to the API, in lifecycle order.
var Statuses = []Status{StatusPending, StatusAccepted, StatusExpired, StatusRevoked, StatusDeclined}

// Terminal reports whether no further transition can happen.
func (s Status) Terminal() bool {
	return s == StatusAccepted || s == StatusRevoked || s == StatusDeclined || s == StatusRejected
}

// Event types of an invitation's story: the statuses it moves to, and these.
const (
	EventCreated          = "created"
	EventRenewed          = "renewed"
	EventRenewalRequested = "renewal_requested"
)

// ExpiryLayout spells an expiry out in UTC, so nobody has to guess the time zone: the emails
// and the hosted page write it the same way.
const ExpiryLayout = "Monday, 2 January 2006 at 15:04 UTC"
