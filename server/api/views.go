package api

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/apiview"
	"github.com/onboarding-service/onboarding/internal/store"
)

// The JSON shapes the API answers with, built from store rows.

// The invitation object is shared with the worker's webhooks (internal/apiview).
type (
	deliveryView   = apiview.Delivery
	personView     = apiview.Person
	invitationView = apiview.Invitation
)

type eventView struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Detail string    `json:"detail"`
}

// invitationDetailView is GET one: the object and its story.
type invitationDetailView struct {
	invitationView
	Events []eventView `json:"events"`
}

type invitationListView struct {
	Items      []invitationView `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

type linkView struct {
	InviteURL string    `json:"invite_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// overlayState applies what the workflow answered to a row read just after it. The workflow
// is the system of record for the lifecycle; the row is normally already up to date, and is
// kept as it is then (so a later read answers the same bytes). Only where the row lags, the
// answer's status, generation and expiry win; times are cut to Postgres' microseconds.
func overlayState(inv *store.Invitation, st contract.State) {
	if st.InvitationID != uuid.Nil && st.InvitationID != inv.ID {
		return
	}
	if st.Generation > inv.Generation {
		inv.Generation = st.Generation
		if !st.ExpiresAt.IsZero() {
			inv.ExpiresAt = st.ExpiresAt.Truncate(time.Microsecond)
		}
	}
	if st.Sends > inv.Sends { // a resend answered before its email activity recorded it
		inv.Sends = st.Sends
	}
	if st.Status != "" && st.Status != contract.StatusRejected && st.Status != inv.Status {
		inv.Status = st.Status
	}
}

// inviteURL is the link in the invitation's emails, recomputed from its id and generation by
// the same rule as the emails' (invitetoken.Links).
func (s *Server) inviteURL(inv store.Invitation) string {
	return s.links.InviteURL(inv.ID, inv.Generation)
}

func (s *Server) invitationView(inv store.Invitation) invitationView {
	u := s.inviteURL(inv)
	return apiview.InvitationOf(inv, &u)
}

func eventViews(events []store.Event) []eventView {
	out := make([]eventView, 0, len(events))
	for _, e := range events {
		out = append(out, eventView{At: e.At.UTC(), Type: e.Type, Detail: e.Detail})
	}
	return out
}

// Cursors are opaque to clients: a version byte, created_at in microseconds (Postgres'
// precision) and the id, base64url without padding.
const (
	cursorVersion = 1
	cursorLen     = 1 + 8 + 16
)

func encodeCursor(cur store.Cursor) string {
	buf := make([]byte, cursorLen)
	buf[0] = cursorVersion
	binary.BigEndian.PutUint64(buf[1:9], uint64(cur.CreatedAt.UnixMicro()))
	copy(buf[9:], cur.ID[:])
	return base64.RawURLEncoding.EncodeToString(buf)
}

func decodeCursor(s string) (store.Cursor, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) {
		return store.Cursor{}, false
	}
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(buf) != cursorLen || buf[0] != cursorVersion {
		return store.Cursor{}, false
	}
	micros := int64(binary.BigEndian.Uint64(buf[1:9]))
	// Bounded to years 2000..3000, so a forged cursor cannot overflow the timestamp.
	if micros < 946684800_000000 || micros > 32503680000_000000 {
		return store.Cursor{}, false
	}
	id, _ := uuid.FromBytes(buf[9:])
	return store.Cursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: id}, true
}
