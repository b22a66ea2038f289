package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/onboarding-service/onboarding/internal/providerevents"
)

// Webhooks configures the events sent to the accounts' webhook endpoints and the provider's
// delivery events received from Resend. One attempt's timeout is not a setting: it is 10 s, as
// the contract says (webhook.DeliveryTimeout).
type Webhooks struct {
	// WebhookRetryFor is how long a delivery is retried, with exponential backoff, before it
	// is given up (WEBHOOK_RETRY_FOR, 72h; between 1m and 720h).
	WebhookRetryFor time.Duration
	// WebhookRetryInitial is the wait before a failed delivery's first retry; each later one
	// waits twice as long as the last, at most an hour (WEBHOOK_RETRY_INITIAL, 10s; between 1s
	// and 30s: the contract promises the first retry within 30 s).
	WebhookRetryInitial time.Duration
	// WebhookAllowLocalhost lets endpoints be registered on loopback addresses (localhost,
	// 127.0.0.0/8, ::1), for `make run` with a receiver on the developer's machine
	// (WEBHOOK_ALLOW_LOCALHOST, false). Private, link-local and metadata addresses stay
	// refused. Refused when APP_ENV=production.
	WebhookAllowLocalhost bool
	// ResendWebhookSecret is the signing secret of Resend's webhooks, as Resend shows it
	// ("whsec_" and base64; Svix signs them). Empty, the default, refuses every provider event
	// (RESEND_WEBHOOK_SECRET).
	ResendWebhookSecret string
}

// The bounds of WEBHOOK_RETRY_FOR: under a minute a brief outage of the receiver loses events;
// past 30 days the backlog of one dead endpoint never drains.
const (
	minWebhookRetryFor = time.Minute
	maxWebhookRetryFor = 720 * time.Hour
)

func (c *Config) loadWebhooks(str func(name, def string) string, dur func(name, def string, allowZero bool) time.Duration) []error {
	var errs []error
	c.WebhookRetryFor = dur("WEBHOOK_RETRY_FOR", "72h", false)
	if c.WebhookRetryFor > 0 && (c.WebhookRetryFor < minWebhookRetryFor || c.WebhookRetryFor > maxWebhookRetryFor) {
		errs = append(errs, fmt.Errorf("WEBHOOK_RETRY_FOR: %s must be between %s and %s", c.WebhookRetryFor, minWebhookRetryFor, maxWebhookRetryFor))
	}

	c.WebhookRetryInitial = dur("WEBHOOK_RETRY_INITIAL", "10s", false)
	if c.WebhookRetryInitial > 0 && (c.WebhookRetryInitial < time.Second || c.WebhookRetryInitial > 30*time.Second) {
		errs = append(errs, fmt.Errorf("WEBHOOK_RETRY_INITIAL: %s must be between 1s and 30s", c.WebhookRetryInitial))
	}

	if v := str("WEBHOOK_ALLOW_LOCALHOST", ""); v != "" {
		allow, err := strconv.ParseBool(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("WEBHOOK_ALLOW_LOCALHOST: %q must be true or false", v))
		case allow && c.Production():
			errs = append(errs, errors.New("WEBHOOK_ALLOW_LOCALHOST: development only (it lets webhooks reach the service's own machine); leave it unset when APP_ENV=production"))
		default:
			c.WebhookAllowLocalhost = allow
		}
	}

	if s := str("RESEND_WEBHOOK_SECRET", ""); s != "" {
		if _, err := providerevents.NewVerifier(s); err != nil || len(s) < len("whsec_")+24 { // under 16 bytes is no key
			// The value is a secret: the message does not repeat it.
			errs = append(errs, errors.New(`RESEND_WEBHOOK_SECRET: must be the signing secret Resend shows for the webhook, "whsec_" followed by base64`))
		} else {
			c.ResendWebhookSecret = s
		}
	}
	return errs
}
