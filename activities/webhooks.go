package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/apiview"
	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/webhook"
)

// WebhookStore is the part of the store webhook delivery uses.
type WebhookStore interface {
	GetWebhookEndpoint(ctx context.Context, id uuid.UUID) (store.WebhookEndpoint, error)
	GetEvent(ctx context.Context, rowID int64) (store.FeedEvent, error)
	RecordWebhookAttempt(ctx context.Context, a store.WebhookAttempt, delivered bool) error
}

// Webhooks delivers events to endpoints, per the Standard Webhooks specification. Its
// activity runs on the webhook task queue, one attempt per activity attempt: Temporal's retry
// policy (WebhookRetryPolicy) is the backoff, so a delivery survives any restart.
type Webhooks struct {
	Store   WebhookStore
	Secrets webhook.Secrets
	// Client connects only to public addresses (webhook.Policy), checked again at connect
	// time, with the 10 s timeout of an attempt.
	Client  *http.Client
	Metrics *metrics.Webhooks
	Logger  *slog.Logger
	Now     func() time.Time
}

// DeliverWebhookInput names one event owed to one endpoint.
type DeliverWebhookInput struct {
	EndpointID uuid.UUID
	EventRowID int64
	EventID    string
	// Deadline is when retrying stops: when the delivery was owed plus WEBHOOK_RETRY_FOR.
	Deadline time.Time
	// FirstRetry is the wait before the first retry (WEBHOOK_RETRY_INITIAL); zero means
	// WebhookFirstRetry.
	FirstRetry time.Duration `json:",omitempty"`
}

// ErrEndpointGone ends a delivery whose endpoint was deleted: nothing is owed to it any more.
const ErrEndpointGone = "WebhookEndpointGone"

// The retry schedule of a delivery (docs/webhooks.md): the first retry after 10 s
// (WEBHOOK_RETRY_INITIAL), doubling, at most an hour apart, until the deadline.
const (
	WebhookFirstRetry   = 10 * time.Second
	WebhookBackoff      = 2.0
	WebhookMaxInterval  = time.Hour
	WebhookAttemptLimit = webhook.DeliveryTimeout
)

// NextWebhookAttempt is when attempt n+1 follows attempt n at now, or nil past the deadline.
func NextWebhookAttempt(first time.Duration, n int32, now, deadline time.Time) *time.Time {
	wait := first
	if wait <= 0 {
		wait = WebhookFirstRetry
	}
	for i := int32(1); i < n && wait < WebhookMaxInterval; i++ {
		wait = time.Duration(float64(wait) * WebhookBackoff)
	}
	next := now.Add(min(wait, WebhookMaxInterval))
	if next.After(deadline) {
		return nil
	}
	return &next
}

// DeliverWebhook makes one attempt and records it; a non-2xx answer or none is an error that
// Temporal retries with the same webhook-id.
func (h *Webhooks) DeliverWebhook(ctx context.Context, in DeliverWebhookInput) error {
	ep, err := h.Store.GetWebhookEndpoint(ctx, in.EndpointID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ep.Deleted) {
		return temporal.NewNonRetryableApplicationError("the webhook endpoint was deleted", ErrEndpointGone, nil)
	}
	if err != nil {
		return err
	}
	ev, err := h.Store.GetEvent(ctx, in.EventRowID)
	if err != nil {
		return err
	}
	body, err := json.Marshal(apiview.EventOf(ev))
	if err != nil {
		return err
	}
	now := h.Now()
	secrets := []string{h.Secrets.For(ep.ID.String(), ep.SecretVersion)}
	if ep.PreviousUntil != nil && now.Before(*ep.PreviousUntil) && ep.SecretVersion > 1 {
		secrets = append(secrets, h.Secrets.For(ep.ID.String(), ep.SecretVersion-1))
	}
	header, err := webhook.Headers(secrets, ev.ID, now, body)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "WebhookSigning", err)
	}
	attempt := activity.GetInfo(ctx).Attempt
	code, sendErr := h.post(ctx, ep.URL, header, body)
	delivered := sendErr == nil && code >= 200 && code < 300
	rec := store.WebhookAttempt{EndpointID: ep.ID, EventRowID: ev.RowID, Attempt: int(attempt)}
	result := metrics.WebhookDelivered
	switch {
	case sendErr != nil:
		rec.Error, result = sendErr.Error(), metrics.WebhookError
	case !delivered:
		rec.Error, result = fmt.Sprintf("the endpoint answered %d", code), metrics.WebhookFailed
	}
	if code != 0 {
		rec.StatusCode = &code
	}
	if !delivered {
		rec.NextAttemptAt = NextWebhookAttempt(in.FirstRetry, attempt, now, in.Deadline)
	}
	if err := h.Store.RecordWebhookAttempt(ctx, rec, delivered); err != nil {
		return err // retried: an attempt is recorded before the delivery counts
	}
	h.Metrics.Attempt(result, ev.Type, now.Sub(ev.CreatedAt))
	if delivered {
		return nil
	}
	h.Logger.Info("webhook delivery attempt failed", "endpoint_id", ep.ID, "event_id", ev.ID, "type", ev.Type,
		"attempt", attempt, "status_code", code, "error", rec.Error, "final", rec.NextAttemptAt == nil)
	return temporal.NewApplicationError(rec.Error, "WebhookAttemptFailed")
}

// post sends the body and returns the answer's status; the error never holds the URL (its
// path or query may carry the customer's own secret).
func (h *Webhooks) post(ctx context.Context, endpoint string, header http.Header, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, WebhookAttemptLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the endpoint URL is not valid")
	}
	req.Header = header
	resp, err := h.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", WebhookAttemptLimit)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// WebhookRetryPolicy is the delivery activity's retry policy, first the wait before the
// first retry (zero: WebhookFirstRetry).
func WebhookRetryPolicy(first time.Duration) *temporal.RetryPolicy {
	if first <= 0 {
		first = WebhookFirstRetry
	}
	return &temporal.RetryPolicy{
		InitialInterval:        first,
		BackoffCoefficient:     WebhookBackoff,
		MaximumInterval:        WebhookMaxInterval,
		NonRetryableErrorTypes: []string{ErrEndpointGone, "WebhookSigning"},
	}
}
