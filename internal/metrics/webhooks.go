package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Webhooks holds the worker's webhook delivery metrics. A nil *Webhooks records nothing.
type Webhooks struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
}

// Webhook delivery attempt results.
const (
	WebhookDelivered = "delivered" // a 2xx answer
	WebhookFailed    = "failed"    // any other answer, retried
	WebhookError     = "error"     // no answer (timeout, refused address, connection), retried
)

var webhookResults = []string{WebhookDelivered, WebhookFailed, WebhookError}

// NewWebhooks registers the webhook metrics on reg.
func NewWebhooks(reg prometheus.Registerer) *Webhooks {
	f := promauto.With(reg)
	w := &Webhooks{
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "onboarding_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result (delivered, failed: a non-2xx answer, error: no answer) and event type.",
		}, []string{"result", "event_type"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "onboarding_webhook_delivery_latency_seconds",
			Help:    "Time from an event's change to its delivery (a 2xx answer), retries included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 72 * 3600},
		}),
	}
	for _, r := range webhookResults {
		for _, t := range contract.PublicEventTypes {
			w.deliveries.WithLabelValues(r, t)
		}
	}
	return w
}

// Attempt counts one delivery attempt; latency is the event's age when it was delivered.
func (w *Webhooks) Attempt(result, eventType string, latency time.Duration) {
	if w == nil {
		return
	}
	w.deliveries.WithLabelValues(result, eventType).Inc()
	if result == WebhookDelivered {
		w.latency.Observe(latency.Seconds())
	}
}

// RegisterFailingEndpoints exports onboarding_webhook_endpoints_failing and
// onboarding_webhook_failing_seconds, read from Postgres (so every replica reports the same
// truth) at most once per pendingCacheFor: the endpoints with an undelivered event whose
// attempts failed, and the age of the oldest such event. The alert fires on an hour.
func RegisterFailingEndpoints(reg prometheus.Registerer, read func(context.Context) (int, time.Duration, error)) {
	var (
		mu       sync.Mutex
		n        float64
		oldest   float64
		readAt   time.Time
		lastRead error
	)
	refresh := func() {
		if !readAt.IsZero() && time.Since(readAt) < pendingCacheFor {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		count, age, err := read(ctx)
		lastRead, readAt = err, time.Now()
		if err == nil {
			n, oldest = float64(count), age.Seconds()
		}
	}
	gauge := func(get func() float64) func() float64 {
		return func() float64 {
			mu.Lock()
			defer mu.Unlock()
			refresh()
			if lastRead != nil {
				return -1
			}
			return get()
		}
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "onboarding_webhook_endpoints_failing",
		Help: "Webhook endpoints with an undelivered event whose delivery attempts failed so far.",
	}, gauge(func() float64 { return n })))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "onboarding_webhook_failing_seconds",
		Help: "Age of the oldest undelivered webhook event with a failed attempt (0: none).",
	}, gauge(func() float64 { return oldest })))
}
