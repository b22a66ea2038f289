package providerevents

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Header names Resend (through Svix) signs its webhooks with.
const (
	HeaderID        = "svix-id"
	HeaderTimestamp = "svix-timestamp"
	HeaderSignature = "svix-signature"
)

// Tolerance is how far svix-timestamp may be from the receiver's clock, in
// either direction, before a request is refused. It bounds the replay window:
// a captured request can be replayed for at most this long, and within it the
// svix-id dedupe (see the package documentation) makes a replay a no-op.
const Tolerance = 5 * time.Minute

// secretPrefix starts every Svix signing secret; the rest is standard base64.
const secretPrefix = "whsec_"

var (
	// ErrSignature is returned by Verify for every request that must not be
	// trusted: missing or malformed headers, no matching signature, or a
	// timestamp outside Tolerance. The handler answers it with 401.
	ErrSignature = errors.New("providerevents: webhook signature not verified")

	// ErrMissingHeader refines ErrSignature: a svix-* header is absent or
	// empty. errors.Is(err, ErrSignature) holds as well.
	ErrMissingHeader = errors.New("providerevents: missing svix header")

	// ErrTimestamp refines ErrSignature: svix-timestamp is not an integer, or
	// is more than Tolerance in the past (stale, a replay) or in the future.
	// errors.Is(err, ErrSignature) holds as well.
	ErrTimestamp = errors.New("providerevents: svix-timestamp outside tolerance")
)

// Verifier checks the Svix signature on Resend's webhook requests. It is safe
// for concurrent use.
//
// The HMAC (HMAC-SHA256 over "id.timestamp.body", base64, any one of the
// space-separated "v1,<sig>" entries matching, constant-time comparison) is
// done by Svix's own maintained library, github.com/svix/svix-webhooks/go,
// rather than by hand. Its Verify reads time.Now itself, so we call
// VerifyIgnoringTimestamp and enforce the tolerance here against the clock the
// caller passes in: that keeps the replay window testable and lets the
// handler use one clock for everything. The timestamp check is therefore NOT
// skipped; it is done before the signature is looked at, with the same
// 5-minute window the library uses (Tolerance).
//
// resend-go (already a dependency) also has a verifier, but it reads
// time.Now with no way round it and accepts any version prefix, not only v1,
// so it is not used.
type Verifier struct {
	wh *svix.Webhook
}

// NewVerifier builds a Verifier from the endpoint's signing secret as Resend
// shows it ("whsec_" followed by base64). A secret without the prefix, with
// invalid base64, or with nothing after the prefix is refused, so a
// misconfigured RESEND_WEBHOOK_SECRET fails at startup rather than turning
// every provider event into a 401. The error never contains the secret.
func NewVerifier(secret string) (*Verifier, error) {
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, secretPrefix) {
		return nil, errors.New("providerevents: webhook secret must start with " + secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		// err names only an offset, never the input.
		return nil, fmt.Errorf("providerevents: webhook secret is not valid base64 after %s: %w", secretPrefix, err)
	}
	if len(key) == 0 {
		return nil, errors.New("providerevents: webhook secret is empty after " + secretPrefix)
	}
	wh, err := svix.NewWebhookRaw(key)
	if err != nil {
		return nil, fmt.Errorf("providerevents: webhook secret: %w", err)
	}
	return &Verifier{wh: wh}, nil
}

// Verify checks that body was signed by the holder of the secret, at a
// svix-timestamp within Tolerance of now. h is the request's header as
// net/http or Gin gives it (names are looked up canonically, so "svix-id" and
// "Svix-Id" are the same). body must be the raw bytes read from the request,
// before any JSON decoding: re-encoding changes them and breaks the signature.
//
// Every failure satisfies errors.Is(err, ErrSignature). A nil error means the
// request is authentic and fresh; it says nothing about duplicates, which the
// caller detects with the svix-id.
func (v *Verifier) Verify(body []byte, h http.Header, now time.Time) error {
	id := strings.TrimSpace(h.Get(HeaderID))
	ts := strings.TrimSpace(h.Get(HeaderTimestamp))
	// Svix sends one header with space-separated entries; should a proxy
	// split it into several, every entry still counts.
	sig := strings.TrimSpace(strings.Join(h.Values(HeaderSignature), " "))
	switch {
	case id == "":
		return missing(HeaderID)
	case ts == "":
		return missing(HeaderTimestamp)
	case sig == "":
		return missing(HeaderSignature)
	}

	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %w: not an integer", ErrSignature, ErrTimestamp)
	}
	sent := time.Unix(secs, 0)
	if d := now.Sub(sent); d > Tolerance {
		return fmt.Errorf("%w: %w: %s old", ErrSignature, ErrTimestamp, d.Truncate(time.Second))
	} else if d < -Tolerance {
		return fmt.Errorf("%w: %w: %s in the future", ErrSignature, ErrTimestamp, (-d).Truncate(time.Second))
	}

	// Hand the library exactly the svix-* values read above, so that it never
	// falls back to the webhook-* (Standard Webhooks) headers it also knows.
	hdr := http.Header{}
	hdr.Set(HeaderID, id)
	hdr.Set(HeaderTimestamp, ts)
	hdr.Set(HeaderSignature, sig)
	if err := v.wh.VerifyIgnoringTimestamp(body, hdr); err != nil {
		// The library's errors are unexported strings; keep the text for
		// logs (it holds no secret or signature) under our sentinel.
		return fmt.Errorf("%w: %s", ErrSignature, strings.ToLower(err.Error()))
	}
	return nil
}

func missing(name string) error {
	return fmt.Errorf("%w: %w: %s", ErrSignature, ErrMissingHeader, name)
}
