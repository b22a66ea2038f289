package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/resend/resend-go/v2"
	"go.temporal.io/sdk/temporal"
)

// ResendMailer sends through Resend's HTTP API (or any endpoint that speaks it).
type ResendMailer struct {
	client *resend.Client
}

// NewResendMailer returns a mailer for apiKey at baseURL (RESEND_BASE_URL).
func NewResendMailer(apiKey, baseURL string) (*ResendMailer, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("RESEND_BASE_URL: %w", err)
	}
	if u.Path == "" || u.Path[len(u.Path)-1] != '/' {
		u.Path += "/" // resend-go resolves "emails" relative to the base
	}
	httpClient := &http.Client{Timeout: 20 * time.Second, Transport: statusRecorder{next: http.DefaultTransport}}
	c := resend.NewCustomClient(httpClient, apiKey)
	c.BaseURL = u
	return &ResendMailer{client: c}, nil
}

// Send sends m with its idempotency key, so Resend drops a repeat within 24 hours.
func (r *ResendMailer) Send(ctx context.Context, m Message) (string, error) {
	req := &resend.SendEmailRequest{
		From: m.From, To: []string{m.To}, Subject: m.Subject, Html: m.HTML, Text: m.Text,
	}
	for name, value := range m.Tags {
		req.Tags = append(req.Tags, resend.Tag{Name: name, Value: value})
	}
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	resp, err := r.client.Emails.SendWithOptions(ctx, req, &resend.SendEmailOptions{IdempotencyKey: m.IdempotencyKey})
	var rl *resend.RateLimitError
	switch {
	case errors.As(err, &rl):
		// Retry no sooner than Resend asks; the activity's retry policy honours NextRetryDelay.
		delay := time.Second
		if secs, perr := strconv.Atoi(rl.RetryAfter); perr == nil && secs > 0 {
			delay = time.Duration(secs) * time.Second
		}
		return "", temporal.NewApplicationErrorWithOptions("resend rate limit", "email_rate_limited",
			temporal.ApplicationErrorOptions{NextRetryDelay: delay, Cause: err})
	case err != nil && status >= 400 && status < 500 && !retryableStatus(status):
		// Any other 4xx is about this message (an invalid recipient, a bad field): no retry helps.
		return "", fmt.Errorf("%w: resend answered %d: %v", ErrRejected, status, err)
	case err != nil:
		return "", err
	}
	return resp.Id, nil
}

// retryableStatus tells the 4xx answers a later attempt can get past: 408 (a timeout), 409
// (Resend's "same key, request still in flight"), and 401 and 403, which are about the API key,
// not the message: a key rotated or revoked by mistake is fixed by an operator within the
// retry window, and every email then still goes out instead of having failed for good.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// statusRecorder notes the HTTP status of the response in the request's context, because
// resend-go's errors do not carry it and a 4xx must not be retried while a 5xx must.
type statusRecorder struct{ next http.RoundTripper }

type statusKey struct{}

func (s statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if p, ok := req.Context().Value(statusKey{}).(*int); ok && resp != nil {
		*p = resp.StatusCode
	}
	return resp, err
}

// DevMailbox keeps emails instead of sending them: they are already stored in Postgres by
// SendEmail, so it only logs them, with the link for whoever runs `make run`.
type DevMailbox struct {
	Logger *slog.Logger
	// LogLinks writes each email's link to the log. An invite link is a key to an account, so
	// it is on in development only.
	LogLinks bool
}

// Send logs the message and pretends it was delivered.
func (d DevMailbox) Send(_ context.Context, m Message) (string, error) {
	attrs := []any{"to", m.To, "subject", m.Subject, "kind", m.Tags["kind"]}
	if d.LogLinks {
		attrs = append(attrs, "link", m.Link)
	}
	d.Logger.Info("dev mailbox: email stored, not sent", attrs...)
	return "dev-" + m.IdempotencyKey, nil
}
