// Package metrics defines the service's business metrics. Labels carry kinds and outcomes,
// never an id or an email, so series stay few and nothing personal reaches Prometheus.
package metrics

import (
	"context"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Business holds the worker's business metrics. A nil *Business records nothing, for tests
// that do not look at metrics.
type Business struct {
	created      prometheus.Counter
	completed    *prometheus.CounterVec
	seatRefusals *prometheus.CounterVec
	emails       *prometheus.CounterVec
	acceptance   prometheus.Histogram
	provisioning prometheus.Histogram
}

// NewBusiness registers the business metrics on reg.
func NewBusiness(reg prometheus.Registerer) *Business {
	f := promauto.With(reg)
	return &Business{
		created: f.NewCounter(prometheus.CounterOpts{
			Name: "onboarding_invitations_created_total",
			Help: "Invitations recorded with a seat held.",
		}),
		completed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "onboarding_invitations_completed_total",
			Help: "Invitations that reached an outcome: accepted, declined, revoked or expired.",
		}, []string{"outcome"}),
		seatRefusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "onboarding_seat_refusals_total",
			Help: "Creates and renewals refused because the subscription had no free seat.",
		}, []string{"action"}),
		emails: f.NewCounterVec(prometheus.CounterOpts{
			Name: "onboarding_emails_total",
			Help: "Email send attempts by kind and result (sent, failed, skipped, error: retried).",
		}, []string{"kind", "result"}),
		acceptance: f.NewHistogram(prometheus.HistogramOpts{
			Name: "onboarding_invitation_acceptance_seconds",
			Help: "Time from an invitation's first email to its acceptance.",
			Buckets: []float64{60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400,
				5 * 86400, 7 * 86400, 14 * 86400, 30 * 86400},
		}),
		provisioning: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "onboarding_provisioning_duration_seconds",
			Help:    "Duration of the provisioning transaction (user, membership, seat).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
}

// InvitationCreated counts a recorded invitation.
func (b *Business) InvitationCreated() {
	if b != nil {
		b.created.Inc()
	}
}

// InvitationCompleted counts an outcome: the status the invitation closed with.
func (b *Business) InvitationCompleted(outcome contract.Status) {
	if b != nil {
		b.completed.WithLabelValues(string(outcome)).Inc()
	}
}

// SeatRefused counts a refusal for want of a seat; action is create or renew.
func (b *Business) SeatRefused(action string) {
	if b != nil {
		b.seatRefusals.WithLabelValues(action).Inc()
	}
}

// Email counts one send attempt.
func (b *Business) Email(kind contract.EmailKind, result string) {
	if b != nil {
		b.emails.WithLabelValues(string(kind), result).Inc()
	}
}

// Accepted records an acceptance, firstSent being when the first invite went out.
func (b *Business) Accepted(firstSent time.Time, provisioning time.Duration) {
	if b != nil {
		b.completed.WithLabelValues(string(contract.StatusAccepted)).Inc()
		b.acceptance.Observe(time.Since(firstSent).Seconds())
		b.provisioning.Observe(provisioning.Seconds())
	}
}

// RegisterPending exports onboarding_invitations_pending, read from Postgres at each scrape, so
// every worker replica reports the same truth rather than its own share.
func RegisterPending(reg prometheus.Registerer, count func(context.Context) (int, error)) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "onboarding_invitations_pending",
		Help: "Invitations pending now (each holds a seat).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := count(ctx)
		if err != nil {
			return -1 // a visible, impossible value rather than a stale one
		}
		return float64(n)
	}))
}
