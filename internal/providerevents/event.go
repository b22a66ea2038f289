package providerevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Resend event types this package gives a meaning to. Every other type
// (email.sent, email.opened, email.clicked, email.failed, email.suppressed,
// contact.*, domain.*, anything added later) parses but is not Known.
const (
	TypeDelivered       = "email.delivered"
	TypeBounced         = "email.bounced"
	TypeComplained      = "email.complained"
	TypeDeliveryDelayed = "email.delivery_delayed"
)

// Values of the invitation's delivery.status that provider events set.
const (
	StatusDelivered  = "delivered"
	StatusBounced    = "bounced"
	StatusComplained = "complained"
)

// maxReason bounds Event.Reason: it is free text from a remote mail server.
const maxReason = 512

// Event is one Resend webhook event, reduced to what the service uses.
type Event struct {
	// ID is the svix-id header: the same on every retry and replay of one
	// event, so it is the dedupe key (see the package documentation).
	ID string
	// Type is Resend's event type as sent, e.g. "email.bounced".
	Type string
	// EmailID is Resend's id of the email (data.email_id), the one the send
	// returned; it finds the invitation.
	EmailID string
	// To is data.to, the recipients. It is personal data: do not log it.
	To []string
	// At is when Resend created the event (top-level created_at), in UTC;
	// zero if the body carries none.
	At time.Time
	// Reason is the bounce detail (data.bounce: "type (subType): message")
	// when present, or the equivalent detail of email.suppressed
	// (data.suppressed) and email.failed (data.failed.reason). It is empty
	// for complaints: Resend sends no complaint detail.
	Reason string
}

// envelope is the part of every Resend webhook body that is the same for all
// types. data stays raw: its shape depends on the type.
type envelope struct {
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// emailData is data for the email.* types. Only the fields used are listed;
// the rest (from, subject, tags, broadcast_id, click, ...) are ignored, so a
// change in their shape cannot break parsing.
type emailData struct {
	EmailID string   `json:"email_id"`
	To      []string `json:"to"`
	Bounce  *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		SubType string `json:"subType"`
	} `json:"bounce"`
	Suppressed *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"suppressed"`
	Failed *struct {
		Reason string `json:"reason"`
	} `json:"failed"`
}

// Parse reads a verified Resend webhook body; svixID is the request's svix-id
// header. Call it only after Verifier.Verify succeeded.
//
// It fails (the handler answers 400) when svixID is empty, when body is not a
// JSON object with a non-empty string "type", and, for the four Known types
// only, when data is not an email object with an email_id or created_at is
// not an ISO 8601 time. An unknown type is not an error: it parses (with the
// email fields when its data is an email object) and Delivery reports it as
// not known. For such types data of another shape, or an odd created_at, is
// tolerated and left out, since Resend's other event families (contact.*,
// domain.*, inbox.*) reuse field names with other meanings.
func Parse(svixID string, body []byte) (Event, error) {
	svixID = strings.TrimSpace(svixID)
	if svixID == "" {
		return Event{}, errors.New("providerevents: empty svix-id")
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("providerevents: body is not a JSON event object: %w", err)
	}
	if env.Type == "" {
		return Event{}, errors.New("providerevents: event has no type")
	}
	ev := Event{ID: svixID, Type: env.Type}
	_, known := ev.Delivery()

	if env.CreatedAt != "" {
		at, err := parseTime(env.CreatedAt)
		if err != nil && known {
			return Event{}, fmt.Errorf("providerevents: %s: created_at: %w", env.Type, err)
		}
		ev.At = at
	}

	var d emailData
	hasData := len(env.Data) > 0 && !bytes.Equal(bytes.TrimSpace(env.Data), []byte("null"))
	if hasData {
		if err := json.Unmarshal(env.Data, &d); err != nil {
			if known {
				return Event{}, fmt.Errorf("providerevents: %s: data: %w", env.Type, err)
			}
			d = emailData{} // some other family's data: nothing to take from it
		}
	}
	if known && d.EmailID == "" {
		return Event{}, fmt.Errorf("providerevents: %s: data.email_id is missing", env.Type)
	}
	ev.EmailID = d.EmailID
	if len(d.To) > 0 {
		ev.To = append([]string(nil), d.To...)
	}
	ev.Reason = reason(d)
	return ev, nil
}

// Delivery maps the event onto the invitation's delivery.status.
//
//   - email.delivered → ("delivered", true).
//   - email.bounced → ("bounced", true) and email.complained →
//     ("complained", true); for both the service also emits
//     invitation.delivery_failed.
//   - email.delivery_delayed → ("", true): known, but the status stays as it
//     is (Resend keeps retrying and a delivered or bounced will follow). It
//     only counts in the provider-events metric; no invitation.* event type
//     is emitted for it, in particular not invitation.delivery_failed.
//   - anything else (email.sent, email.opened, email.clicked, email.failed,
//     email.suppressed, unknown types) → ("", false): accepted with a 2xx and
//     ignored.
func (e Event) Delivery() (status string, known bool) {
	switch e.Type {
	case TypeDelivered:
		return StatusDelivered, true
	case TypeBounced:
		return StatusBounced, true
	case TypeComplained:
		return StatusComplained, true
	case TypeDeliveryDelayed:
		return "", true
	default:
		return "", false
	}
}

// parseTime accepts the ISO 8601 forms Resend uses: "2024-11-22T23:41:12.126Z"
// at the top level, "2024-11-22T23:41:11.894719+00:00" inside data, and the
// same with a space instead of the "T".
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an ISO 8601 time: %q", s)
	}
	return t.UTC(), nil
}

func reason(d emailData) string {
	var r string
	switch {
	case d.Bounce != nil:
		r = detail(d.Bounce.Type, d.Bounce.SubType, d.Bounce.Message)
	case d.Suppressed != nil:
		r = detail(d.Suppressed.Type, "", d.Suppressed.Message)
	case d.Failed != nil:
		r = strings.TrimSpace(d.Failed.Reason)
	}
	return truncate(r, maxReason)
}

// detail joins "type (subType): message", leaving out whatever is empty.
func detail(kind, sub, msg string) string {
	kind, sub, msg = strings.TrimSpace(kind), strings.TrimSpace(sub), strings.TrimSpace(msg)
	head := kind
	if sub != "" {
		if head != "" {
			head += " (" + sub + ")"
		} else {
			head = sub
		}
	}
	switch {
	case head == "":
		return msg
	case msg == "":
		return head
	default:
		return head + ": " + msg
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
