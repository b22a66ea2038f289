package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	// The Standard Webhooks project's own Go library computes the v1 HMAC. It fits cleanly: it
	// signs a given message id, timestamp and body with a given key (Webhook.Sign), it is the
	// reference the specification's authors maintain alongside it and shares its test vector
	// with the other languages, and it brings no dependency of its own. The svix-webhooks
	// module does the same in its go package but is Svix's whole API client (an old oauth2
	// and a validator come with it) and reads svix-* headers first: too much for one HMAC.
	// What the library leaves to its callers is done here: several secrets while a rotated
	// one still signs, strict secret parsing with the specification's size limits, and
	// refusing message ids that could be confused with the "." delimiter.
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The Standard Webhooks headers, as http.Header spells them (header names are case-insensitive).
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	// UserAgent is sent with every delivery, so receivers and their firewalls can tell them.
	UserAgent = "onboarding-webhooks/1"
)

// DeliveryTimeout is how long one delivery attempt may take, connecting included (fixed by the
// service contract; not a setting).
const DeliveryTimeout = 10 * time.Second

// Sign returns the value of the webhook-signature header for a message: "v1,<signature>" for
// each secret, space-separated, where the signature is the standard base64 of the HMAC-SHA256
// of "msgID.timestamp.body" (the timestamp in unix seconds) under the secret's key bytes. Give
// the current secret and, while it still signs after a rotation, the previous one; a consumer
// verifies with whichever it has. The message id must not be empty nor contain ".", space or
// control characters: the specification forbids the delimiter in it.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhook: no secret to sign with")
	}
	if err := checkMsgID(msgID); err != nil {
		return "", err
	}
	if ts.IsZero() || ts.Unix() < 0 {
		return "", errors.New("webhook: signing timestamp is not set")
	}
	sigs := make([]string, 0, len(secrets))
	seen := make(map[string]bool, len(secrets))
	for i, secret := range secrets {
		if seen[secret] {
			continue // the same secret twice would only repeat its signature
		}
		seen[secret] = true
		key, err := ParseSecret(secret)
		if err != nil {
			return "", fmt.Errorf("secret %d: %w", i+1, err)
		}
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			return "", fmt.Errorf("webhook: secret %d: %w", i+1, err)
		}
		sig, err := wh.Sign(msgID, ts, body)
		if err != nil {
			return "", fmt.Errorf("webhook: signing: %w", err)
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Headers returns the headers of a delivery: webhook-id, webhook-timestamp (unix seconds),
// webhook-signature (see Sign), Content-Type application/json and the User-Agent. Retries of
// one event use the same id with the attempt's own timestamp.
func Headers(secrets []string, msgID string, ts time.Time, body []byte) (http.Header, error) {
	sig, err := Sign(secrets, msgID, ts, body)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 5)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	return h, nil
}

func checkMsgID(id string) error {
	if id == "" {
		return errors.New("webhook: empty message id")
	}
	if len(id) > 256 {
		return errors.New("webhook: message id longer than 256 bytes")
	}
	for _, r := range id {
		if r == '.' || r <= ' ' || r >= 0x7f {
			return fmt.Errorf("webhook: message id %q may hold only printable ASCII other than \".\" and space", id)
		}
	}
	return nil
}
