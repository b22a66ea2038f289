// Package emailhash computes the keyed hash of an email address that the InviteeEmailHash
// search attribute holds: support finds a person's invitations in the Temporal UI by it,
// without the address being written into Temporal's visibility store.
package emailhash

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Hash returns the hex HMAC-SHA256 of the trimmed, lower-cased address under key, cut to 128
// bits: unique enough to search by, and of no use without the key.
func Hash(key []byte, email string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("invitee-email\x00"))
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// DeriveKey derives the hashing key from the token secret when EMAIL_HASH_KEY is not set.
func DeriveKey(tokenSecret []byte) []byte {
	m := hmac.New(sha256.New, tokenSecret)
	m.Write([]byte("email-search-key"))
	return m.Sum(nil)
}
