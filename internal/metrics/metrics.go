// Package metrics defines the service's business metrics. Labels carry kinds and outcomes,
// never an id or an email, so series stay few and nothing personal reaches Prometheus.
package metrics

import (
	"context"
	"sync"
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
	reconciled   prometheus.Counter
}

// NewBusiness registers the business metrics on reg.
func NewBusiness(reg prometheus.Registerer) *Business {
	f := promauto.With(reg)
	b := &Business{
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
		reconciled: f.NewCounter(prometheus.CounterOpts{
			Name: "onboarding_reconciled_total",
			Help: "Pending invitations found with no running workflow by the maintenance schedule, and released.",
		}),
	}
	b.initialise()
	return b
}

// Label values the business metrics know, set to 0 at registration so that rules and panels
// see every series from the first scrape instead of "no data" until the first event.
var (
	outcomes     = []contract.Status{contract.StatusAccepted, contract.StatusDeclined, contract.StatusRevoked, contract.StatusExpired}
	seatActions  = []string{SeatActionCreate, SeatActionRenew}
	emailKinds   = []contract.EmailKind{contract.KindInvite, contract.KindReminder, contract.KindWelcome, contract.KindRenewalRequest, contract.KindPasswordReset}
	emailResults = []string{string(contract.DeliverySent), string(contract.DeliveryFailed), string(contract.DeliverySkipped), EmailResultError}
)

// Actions refused for want of a seat, and the email result of an attempt that will be retried.
const (
	SeatActionCreate = "create"
	SeatActionRenew  = "renew"
	EmailResultError = "error"
)

func (b *Business) initialise() {
	for _, o := range outcomes {
		b.completed.WithLabelValues(string(o))
	}
	for _, a := range seatActions {
		b.seatRefusals.WithLabelValues(a)
	}
	for _, k := range emailKinds {
		for _, r := range emailResults {
			b.emails.WithLabelValues(string(k), r)
		}
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

// Reconciled counts a pending invitation released by the reconciler.
func (b *Business) Reconciled() {
	if b != nil {
		b.reconciled.Inc()
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

// RegisterPending exports onboarding_invitations_pending, read from Postgres, so every worker
// replica reports the same truth rather than its own share. The count is kept for
// pendingCacheFor, so a scrape of every replica every few seconds costs Postgres at most one
// small query per replica in that time.
func RegisterPending(reg prometheus.Registerer, count func(context.Context) (int, error)) {
	var (
		mu     sync.Mutex
		last   float64
		readAt time.Time
	)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "onboarding_invitations_pending",
		Help: "Invitations pending now (each holds a seat).",
	}, func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if !readAt.IsZero() && time.Since(readAt) < pendingCacheFor {
			return last
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := count(ctx)
		if err != nil {
			return -1 // a visible, impossible value rather than a stale one
		}
		last, readAt = float64(n), time.Now()
		return last
	}))
}

// pendingCacheFor is how long one reading of the pending count is reported.
const pendingCacheFor = 10 * time.Second
