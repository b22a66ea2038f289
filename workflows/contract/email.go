package contract

import (
	"strings"
	"unicode/utf8"
)

// EmailKind names one kind of email an invitation sends.
type EmailKind string

// Email kinds.
const (
	KindInvite   EmailKind = "invite"
	KindReminder EmailKind = "reminder"
	KindWelcome  EmailKind = "welcome"
	// KindRenewalRequest tells the inviter that the invitee asked, from an expired link, for a
	// new invitation.
	KindRenewalRequest EmailKind = "renewal_request"
	// KindPasswordReset carries a user's password-reset link (no invitation's).
	KindPasswordReset EmailKind = "password_reset"
)

// DeliveryStatus is where an email stands.
type DeliveryStatus string

// Delivery statuses. Skipped is an email that was not sent because the invitation moved on
// before its turn came; it never shows as an invitation's delivery.
const (
	DeliveryQueued  DeliveryStatus = "queued"
	DeliverySent    DeliveryStatus = "sent"
	DeliveryFailed  DeliveryStatus = "failed"
	DeliverySkipped DeliveryStatus = "skipped"
)

// MaskEmail keeps the first character of the local part and the domain (j…@acme.test): enough
// for support to recognise a person in the Temporal UI without spreading the address.
func MaskEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "…"
	}
	r, _ := utf8.DecodeRuneInString(email)
	return string(r) + "…" + email[at:]
}
