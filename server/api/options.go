package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The per-invitation options of CONTRACT.md "Invitation options", shared by the create and the
// edit (PATCH) bodies, and their limits (documented in openapi.yaml).
const (
	minExpiresIn      = 60 // seconds
	maxMessageRunes   = 500
	maxMetadataBytes  = 4096 // serialised, compact
	maxRedirectURLLen = 2048
)

// expiresIn checks an expires_in in seconds against 60 ≤ n ≤ max.
func (v *fieldChecker) expiresIn(field string, n *int64, max time.Duration) time.Duration {
	if n == nil {
		return 0
	}
	maxSeconds := int64(max / time.Second)
	if *n < minExpiresIn || *n > maxSeconds {
		v.add(field, fmt.Sprintf("must be a number of seconds between %d and %d (INVITATION_TTL_MAX)", minExpiresIn, maxSeconds))
		return 0
	}
	return time.Duration(*n) * time.Second
}

// message checks the inviter's note: plain text of at most 500 characters, which may span lines
// (\n or \r\n; no other control or formatting characters). It returns it trimmed, with \n line ends.
func (v *fieldChecker) message(field string, value *string) *string {
	if value == nil {
		return nil
	}
	msg := strings.TrimSpace(strings.ReplaceAll(*value, "\r\n", "\n"))
	switch {
	case utf8.RuneCountInString(msg) > maxMessageRunes:
		v.add(field, fmt.Sprintf("must have at most %d characters", maxMessageRunes))
	case !plainText(strings.ReplaceAll(msg, "\n", " ")):
		v.add(field, "must be plain text: no control or formatting characters other than line breaks")
	}
	return &msg
}

// metadata checks a metadata object (jsonbody checked it is one) and returns it compacted:
// at most 4 KiB serialised.
func (v *fieldChecker) metadata(field string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" { // null is absent, as for every field
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		v.add(field, "must be a JSON object")
		return nil
	}
	if buf.Len() > maxMetadataBytes {
		v.add(field, fmt.Sprintf("must be at most %d bytes serialised; it is %d", maxMetadataBytes, buf.Len()))
		return nil
	}
	return json.RawMessage(buf.Bytes())
}

// redirectURL checks that redirect_url is a URL at all; whether its origin is allowed is the
// account's settings' decision (redirect_not_allowed), made once the account is known.
func (v *fieldChecker) redirectURL(field, value string) string {
	if value == "" {
		return ""
	}
	if len(value) > maxRedirectURLLen || !plainText(value) || strings.ContainsAny(value, " \t") {
		v.add(field, fmt.Sprintf("must be a URL of at most %d characters, without spaces or control characters", maxRedirectURLLen))
		return ""
	}
	if _, err := url.Parse(value); err != nil {
		v.add(field, "must be an absolute https URL such as https://app.example.com/welcome")
		return ""
	}
	return value
}

// redirectAllowed tells the hosted page whether an accepted invitation's redirect_url may be
// followed: its origin is in the account's allowed_redirect_origins now. A failed read says no.
func (s *Server) redirectAllowed(ctx context.Context, accountID uuid.UUID, rawURL string) bool {
	st, err := s.accountSettings(ctx, accountID)
	if err != nil {
		s.log.Warn("account settings unreadable; not redirecting", "account_id", accountID, "error", err)
		return false
	}
	return st.RedirectAllowed(rawURL)
}
