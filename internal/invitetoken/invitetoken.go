// Package invitetoken signs and verifies invite links. A token is the invitation id and its
// generation, signed with HMAC-SHA256 under TOKEN_SECRET: a link can be recomputed for "copy
// link" without being stored, a resend keeps it, and a renewal (a new generation) supersedes it.
// Password-reset links are signed the same way in a key domain of their own (a user id and the
// generation of their reset link), so neither kind of token is ever taken for the other.
package invitetoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

const (
	version = 1
	// payload: version (1) + invitation id (16) + generation (4); then a 32-byte tag.
	payloadLen = 1 + 16 + 4
	tokenLen   = payloadLen + sha256.Size
)

// ErrInvalid means the token is malformed, truncated or forged. Callers must not say which.
var ErrInvalid = errors.New("invalid invite token")

// Signer signs with the current secret and verifies with the current and any previous ones.
type Signer struct {
	current  []byte
	previous [][]byte
	// domain separates the kinds of token signed with one secret: an invite token never
	// verifies as a password-reset token, nor the other way round.
	domain string
}

// NewSigner returns the invite tokens' Signer. previous secrets only verify, so links issued
// before a key rotation keep working until they are removed.
func NewSigner(current []byte, previous ...[]byte) *Signer {
	return &Signer{current: current, previous: previous, domain: "invite-token\x00"}
}

// PasswordReset returns the Signer of password-reset tokens under the same secrets, in a key
// domain of their own. A reset token names a user and the generation of their reset link.
func (s *Signer) PasswordReset() *Signer {
	if s == nil {
		return nil
	}
	return &Signer{current: s.current, previous: s.previous, domain: "password-reset-token\x00"}
}

// Sign returns the URL-safe token for an invitation id and generation.
func (s *Signer) Sign(invitationID uuid.UUID, generation int) string {
	buf := make([]byte, payloadLen, tokenLen)
	buf[0] = version
	copy(buf[1:17], invitationID[:])
	binary.BigEndian.PutUint32(buf[17:21], uint32(generation))
	buf = append(buf, s.tag(s.current, buf[:payloadLen])...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Verify checks the token and returns the invitation id and generation it names.
func (s *Signer) Verify(token string) (uuid.UUID, int, error) {
	var raw []byte
	wellFormed := false
	if len(token) == base64.RawURLEncoding.EncodedLen(tokenLen) {
		var err error
		raw, err = base64.RawURLEncoding.Strict().DecodeString(token)
		wellFormed = err == nil && len(raw) == tokenLen && raw[0] == version
	}
	if !wellFormed {
		// A malformed token is checked against a blank one all the same, so a refusal takes
		// about as long whatever was wrong with the token.
		raw = make([]byte, tokenLen)
	}
	payload, mac := raw[:payloadLen], raw[payloadLen:]
	ok := hmac.Equal(mac, s.tag(s.current, payload))
	for _, key := range s.previous {
		// Every key is tried, so timing does not tell which one matched.
		ok = hmac.Equal(mac, s.tag(key, payload)) || ok
	}
	if !ok || !wellFormed {
		return uuid.Nil, 0, ErrInvalid
	}
	id, _ := uuid.FromBytes(payload[1:17])
	gen := binary.BigEndian.Uint32(payload[17:21])
	if gen == 0 || gen > 1<<30 {
		return uuid.Nil, 0, ErrInvalid
	}
	return id, int(gen), nil
}

func (s *Signer) tag(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s.domain))
	m.Write(payload)
	return m.Sum(nil)
}

// Links builds invite URLs from ACCEPT_URL_TEMPLATE, whose {token} is replaced by the token.
type Links struct {
	Signer   *Signer
	Template string
}

// InviteURL is the link of an invitation generation.
func (l Links) InviteURL(invitationID uuid.UUID, generation int) string {
	return strings.ReplaceAll(l.Template, "{token}", url.QueryEscape(l.Signer.Sign(invitationID, generation)))
}

// ResetLinks builds password-reset URLs from PASSWORD_RESET_URL_TEMPLATE with the reset Signer.
type ResetLinks struct {
	Signer   *Signer // a PasswordReset() signer
	Template string
}

// ResetURL is the link of a user's reset generation.
func (l ResetLinks) ResetURL(userID uuid.UUID, generation int) string {
	return strings.ReplaceAll(l.Template, "{token}", url.QueryEscape(l.Signer.Sign(userID, generation)))
}
