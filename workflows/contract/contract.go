// Package contract is the invitation workflow's contract with everything around it: the
// workflow's name and ID, its update and query names with their payloads, the statuses, the
// error codes, the email kinds and the search-attribute keys. The workflow, its activities, the
// API, the Temporal client and the dev stack all import it; it imports nothing of ours and does
// no I/O, so the API binary links none of the worker's code.
package contract

import (
	"fmt"
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
	// UpdateEdit changes a pending invitation's role, groups, message, metadata or expiry; its
	// link and seat stay.
	UpdateEdit = "edit"
	// UpdateRequestRenewal is the invitee asking, from an expired link, for a new invitation: the
	// inviter gets an email, at most once a day per invitation.
	UpdateRequestRenewal = "request_renewal"
	// UpdateRetireExpired ends a run of lifecycle 0 that waits after its expiry (the
	// maintenance schedule sends it); runs of the current lifecycle end with their expiry.
	UpdateRetireExpired = "retire_expired"
	QueryState          = "state"
)

// Lifecycle2 is the lifecycle every run starts with today. Each run ends (an expired
// invitation's run completes; renew and request_renewal start the next one), search attributes
// are set with the start, create and provision run as local activities, and the welcome email
// goes out from its own workflow. Runs with Lifecycle 0 were started before it and replay the
// code they started with. The version travels in the input, so a fresh run records no marker.
const Lifecycle2 = 2

// EmailWorkflowName is the registered name of the workflow that delivers one email outside an
// invitation's run: the welcome email, which goes out after the run has completed.
const EmailWorkflowName = "InvitationEmail"

// EmailWorkflowID is the workflow ID of an invitation's email delivered by EmailWorkflowName,
// named after the email's idempotency key so a second start of the same email joins the first.
func EmailWorkflowID(invitationID uuid.UUID, key string) string {
	return InvitationWorkflowID(invitationID) + ":email:" + key
}

// UpdateID is the ID of an update the API sends for action on generation gen of an
// invitation. Temporal answers a repeated update ID with the first outcome, even after the run
// has closed, so a retry after a lost answer gets the original result instead of acting again.
// extra tells apart actions that may be repeated on purpose within a generation (resends).
func UpdateID(action string, gen int, extra string) string {
	id := fmt.Sprintf("%s-g%d", action, gen)
	if extra != "" {
		id += "-" + extra
	}
	return id
}

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
	EventUpdated          = "updated"
)

// ExpiryLayout spells an expiry out in UTC, so nobody has to guess the time zone: the emails
// and the hosted page write it the same way.
const ExpiryLayout = "Monday, 2 January 2006 at 15:04 UTC"

// The maintenance schedule: a Temporal Schedule the worker keeps, starting MaintenanceWorkflowName
// every MAINTENANCE_INTERVAL to prune what is no longer needed and reconcile Postgres with the
// invitation workflows.
const (
	MaintenanceWorkflowName = "Maintenance"
	MaintenanceScheduleID   = "onboarding-maintenance"
)

// MaintenanceInput is one pass's settings (config.Maintenance).
type MaintenanceInput struct {
	IdempotencyKeyTTL  time.Duration
	EmailBodyRetention time.Duration
	ReconcileGrace     time.Duration
}

// MaintenanceResult reports one pass.
type MaintenanceResult struct {
	IdempotencyKeysPruned  int64
	EmailBodiesPruned      int64
	AbandonedCreatesPruned int64
	// Reconciled are the pending invitations found with no running workflow, and released.
	Reconciled []uuid.UUID
	// Retired counts the runs of lifecycle 0 ended after their expiry.
	Retired int
}
