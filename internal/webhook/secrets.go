// Package webhook holds what the service needs to send webhooks the Standard Webhooks way
// (https://www.standardwebhooks.com): endpoint secrets derived from TOKEN_SECRET, the
// webhook-signature header, the policy that keeps webhook URLs off loopback, private,
// link-local and metadata addresses, and an HTTP client that enforces that policy again on
// every connection it opens. It does no I/O of its own besides DNS look-ups and the client.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every symmetric secret shown to a consumer, as the specification says.
const SecretPrefix = "whsec_"

// Secret sizes the specification allows for HMAC-SHA256: 24 to 64 bytes (192 to 512 bits).
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// secretDomain separates the endpoint secrets from everything else keyed by TOKEN_SECRET
// (invite tokens, reset tokens, the email-hash key): knowing a webhook secret tells nothing
// about them, nor the other way round.
const secretDomain = "webhook-secret/v1"

// Secrets derives endpoint secrets; they are never stored. An endpoint's secret is a function of
// TOKEN_SECRET, the endpoint's id and its secret version (1, then one more per rotation), so
// the database only keeps the version, and a leaked database does not leak a secret.
type Secrets struct{ key []byte }

// NewSecrets returns the derivation keyed by key (the service's TOKEN_SECRET). It panics on an
// empty key: every secret would then be public.
func NewSecrets(key []byte) Secrets {
	if len(key) == 0 {
		panic("webhook: NewSecrets with an empty key")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secretDomain))
	return Secrets{key: m.Sum(nil)}
}

// For returns the secret of an endpoint's secret version: "whsec_" and the standard base64 of
// HMAC-SHA256(domain key, endpointID "|" version), 32 bytes. The same inputs always give the
// same secret; another endpoint or another version gives another one.
func (s Secrets) For(endpointID string, version int) string {
	if len(s.key) == 0 {
		// A zero Secrets would derive from an empty key: anyone could compute the secrets.
		panic("webhook: Secrets used without NewSecrets")
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(endpointID))
	m.Write([]byte("|"))
	m.Write([]byte(strconv.Itoa(version)))
	return SecretPrefix + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrSecret means a secret is not "whsec_" followed by the standard base64 of 24 to 64 bytes.
var ErrSecret = errors.New("webhook: secret must be whsec_ followed by the base64 of 24 to 64 bytes")

// ParseSecret returns the key bytes of a "whsec_..." secret: the base64-decoded part after the
// prefix. Padding may be left out, as some providers print their secrets that way.
func ParseSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok || b64 == "" {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.Strict().DecodeString(b64); err != nil {
			return nil, ErrSecret
		}
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("%w (it has %d)", ErrSecret, len(key))
	}
	return key, nil
}
