// Package apiview holds the JSON objects of CONTRACT.md that more than the API renders: the
// invitation object and the public event, which the API's feed serves and the worker's
// webhook deliveries send, so both answer the same bytes for the same row. No I/O.
package apiview

import (
	"encoding/json"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// Delivery is the invitation's latest invite or reminder email.
type Delivery struct {
	Status contract.DeliveryStatus `json:"status"`
	Error  *string                 `json:"error"`
}

// Person names the inviter.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Invitation is the invitation object of CONTRACT.md, plus phone and inviter.
type Invitation struct {
	ID             uuid.UUID       `json:"id"`
	AccountID      uuid.UUID       `json:"account_id"`
	Email          string          `json:"email"`
	FirstName      string          `json:"first_name"`
	LastName       string          `json:"last_name"`
	Phone          string          `json:"phone"`
	UserID         *uuid.UUID      `json:"user_id"`
	SubscriptionID uuid.UUID       `json:"subscription_id"`
	Application    string          `json:"application"`
	Role           string          `json:"role"`
	GroupIDs       []uuid.UUID     `json:"group_ids"`
	Status         contract.Status `json:"status"`
	InviteURL      *string         `json:"invite_url"`
	ExpiresAt      time.Time       `json:"expires_at"`
	Sends          int             `json:"sends"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Delivery       *Delivery       `json:"delivery"`
	Inviter        *Person         `json:"inviter"`
	// The options the invitation was created (or edited) with: its validity in seconds (null
	// for invitations from before it was recorded), whether its first email was sent, the
	// inviter's note (null: none), the portal's metadata ({} when none) and where the hosted
	// page sends the invitee after accepting (null: nowhere).
	ExpiresIn   *int64          `json:"expires_in"`
	SendEmail   bool            `json:"send_email"`
	Message     *string         `json:"message"`
	Metadata    json.RawMessage `json:"metadata"`
	RedirectURL *string         `json:"redirect_url"`
}

// InvitationOf renders a row; inviteURL is the link of a pending invitation (nil for none).
func InvitationOf(inv store.Invitation, inviteURL *string) Invitation {
	v := Invitation{
		ID:             inv.ID,
		AccountID:      inv.AccountID,
		Email:          inv.Email,
		FirstName:      inv.FirstName,
		LastName:       inv.LastName,
		Phone:          inv.Phone,
		UserID:         inv.UserID,
		SubscriptionID: inv.SubscriptionID,
		Application:    inv.Application,
		Role:           inv.Role,
		GroupIDs:       inv.GroupIDs,
		Status:         inv.Status,
		ExpiresAt:      inv.ExpiresAt.UTC(),
		Sends:          inv.Sends,
		CreatedAt:      inv.CreatedAt.UTC(),
		UpdatedAt:      inv.UpdatedAt.UTC(),
	}
	if v.GroupIDs == nil {
		v.GroupIDs = []uuid.UUID{}
	}
	pending := inv.Status == contract.StatusPending
	if pending {
		v.InviteURL = inviteURL
	}
	switch {
	case inv.DeliveryStatus != "":
		v.Delivery = &Delivery{Status: inv.DeliveryStatus}
		if inv.DeliveryError != "" {
			e := inv.DeliveryError
			v.Delivery.Error = &e
		}
	case pending && inv.HoldEmail && inv.Sends == 0:
		// Created with send_email false: nothing was sent, or is on its way.
	case pending:
		// Created, with its first email not recorded yet: it is on its way.
		v.Delivery = &Delivery{Status: contract.DeliveryQueued}
	}
	if inv.InviterName != "" || inv.InviterEmail != "" {
		v.Inviter = &Person{Name: inv.InviterName, Email: inv.InviterEmail}
	}
	v.SendEmail = !inv.HoldEmail
	if inv.ExpiresIn > 0 {
		n := int64(inv.ExpiresIn / time.Second)
		v.ExpiresIn = &n
	}
	v.Message = optional(inv.Message)
	v.RedirectURL = optional(inv.RedirectURL)
	v.Metadata = inv.Metadata
	if len(v.Metadata) == 0 {
		v.Metadata = json.RawMessage("{}")
	}
	return v
}

// optional is s, or nil for "".
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Event is a public event: the feed's item and a webhook's body.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	AccountID uuid.UUID `json:"account_id"`
	Data      EventData `json:"data"`
}

// EventData is what an event carries: the invitation just after the change and, on
// acceptance, the user it provisioned.
type EventData struct {
	Invitation EventInvitation `json:"invitation"`
	UserID     *uuid.UUID      `json:"user_id,omitempty"`
}

// EventInvitation is the invitation object without invite_url: no link is ever in an event.
// The field below, shallower than the embedded one, hides it (encoding/json takes the
// shallowest field of a name) and is never set, so it is never written.
type EventInvitation struct {
	Invitation
	InviteURL *struct{} `json:"invite_url,omitempty"`
}

// EventOf renders a public event.
func EventOf(e store.FeedEvent) Event {
	return Event{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC(), AccountID: e.AccountID,
		Data: EventData{Invitation: EventInvitation{Invitation: InvitationOf(e.Invitation, nil)}, UserID: e.UserID}}
}
