// Package config loads the service's settings from the environment into one typed struct,
// validated at start: a bad value stops the process with a message naming the variable.
package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/emailhash"
)

// Config holds every setting of the API and the worker. The names of the environment variables
// are part of the service contract (CONTRACT.md); the extra ones are documented in the README.
type Config struct {
	// Env is "development" (the default) or "production" (APP_ENV).
	Env string

	HTTPAddr    string
	DatabaseURL string

	TemporalAddress   string
	TemporalNamespace string
	TemporalTaskQueue string
	TemporalAPIKey    string
	TemporalTLSCert   string
	TemporalTLSKey    string

	ResendAPIKey      string
	ResendBaseURL     string
	EmailFrom         string
	PublicBaseURL     string
	AcceptURLTemplate string
	// TermsURL is the Terms of Service the invitee accepts (TERMS_URL, default
	// {PUBLIC_BASE_URL}/terms: the portal publishes them).
	TermsURL string
	// EmailRatePerSecond caps sends across all workers (Resend allows 2/s per team by default).
	EmailRatePerSecond float64
	// EmailRecipientDailyCap caps the invite and reminder emails one address gets in 24 hours,
	// from every account together (EMAIL_RECIPIENT_DAILY_CAP, 10; 0 = no cap): inviting is not
	// a way to flood someone's mailbox.
	EmailRecipientDailyCap int

	InvitationTTL time.Duration
	// InvitationTTLMax is the longest expires_in a create or edit may ask for
	// (INVITATION_TTL_MAX, 720h).
	InvitationTTLMax    time.Duration
	ReminderBefore      time.Duration
	ResendMinInterval   time.Duration
	TokenSecret         []byte
	TokenSecretIsRandom bool
	// EmailHashKey keys the InviteeEmailHash search attribute (EMAIL_HASH_KEY, else derived
	// from TOKEN_SECRET).
	EmailHashKey []byte

	// Maintenance is what the worker's onboarding-maintenance schedule keeps and checks.
	Maintenance Maintenance

	BootstrapAPIToken string
	WorkerMetricsAddr string
	// WorkerWorkflowCacheSize is how many workflow runs one worker process keeps in memory
	// between their workflow tasks (WORKER_WORKFLOW_CACHE_SIZE; the SDK's own default is
	// 10,000). 0, the default, keeps none and turns sticky execution off: every workflow task
	// comes from the main queue with its run's whole history (a few dozen events for an
	// invitation) and replays it. With a cache, an update to a run evicted from it fails its
	// first workflow task on Temporal Server 1.29 ("premature end of stream", temporal#7741):
	// docs/benchmarks.md.
	WorkerWorkflowCacheSize int
	// MetricsAddr, when set, is where the API serves /metrics instead of on HTTP_ADDR
	// (METRICS_ADDR), so the public listener does not expose them.
	MetricsAddr string
	LogFormat   string
	LogLevel    string

	// Security settings (security.go): rotation, payload encryption, the codec endpoint, rate limits.
	Security
	// PasswordReset settings (reset.go).
	PasswordReset
	// Webhooks settings (webhooks.go): delivery retries, localhost for development, the
	// provider's webhook secret.
	Webhooks
	// Debug settings (debug.go): off by default.
	Debug
}

// Maintenance configures the durable schedule (a Temporal Schedule, run by the worker) that
// prunes what is no longer needed and reconciles Postgres with the workflows.
type Maintenance struct {
	// Interval is how often it runs (MAINTENANCE_INTERVAL, 15m).
	Interval time.Duration
	// IdempotencyKeyTTL is how long a create's Idempotency-Key is remembered
	// (IDEMPOTENCY_KEY_TTL, 24h); abandoned-create tombstones are kept as long.
	IdempotencyKeyTTL time.Duration
	// EmailBodyRetention is how long a sent or failed email keeps its body (EMAIL_BODY_RETENTION,
	// 24h); its subject, recipient, status and provider id stay.
	EmailBodyRetention time.Duration
	// ReconcileGrace is how long past its expiry a pending invitation may stay pending before
	// its workflow is checked (RECONCILE_GRACE, 10m): one whose run has ended is released.
	ReconcileGrace time.Duration
}

// Production reports whether the service runs with production safeguards.
func (c Config) Production() bool { return c.Env == "production" }

// Load reads the environment. Errors name the variable at fault.
func Load() (Config, error) { return LoadFrom(os.Getenv) }

// LoadFrom reads settings through getenv, so tests can pass their own environment.
func LoadFrom(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string, allowZero bool) time.Duration {
		raw := str(name, def)
		d, err := time.ParseDuration(raw)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %q is not a duration (use Go syntax such as 168h or 90s)", name, raw))
		case d < 0 || (d == 0 && !allowZero):
			errs = append(errs, fmt.Errorf("%s: %q must be positive", name, raw))
		}
		return d
	}

	c := Config{
		Env:               str("APP_ENV", "development"),
		HTTPAddr:          str("HTTP_ADDR", ":8080"),
		DatabaseURL:       str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"),
		TemporalAddress:   str("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: str("TEMPORAL_NAMESPACE", "default"),
		TemporalTaskQueue: str("TEMPORAL_TASK_QUEUE", "onboarding"),
		TemporalAPIKey:    str("TEMPORAL_API_KEY", ""),
		TemporalTLSCert:   str("TEMPORAL_TLS_CERT", ""),
		TemporalTLSKey:    str("TEMPORAL_TLS_KEY", ""),
		ResendAPIKey:      str("RESEND_API_KEY", ""),
		ResendBaseURL:     str("RESEND_BASE_URL", "https://api.resend.com/"),
		EmailFrom:         str("EMAIL_FROM", "Onboarding <onboarding@localhost>"),
		PublicBaseURL:     strings.TrimRight(str("PUBLIC_BASE_URL", "http://localhost:8080"), "/"),
		InvitationTTL:     dur("INVITATION_TTL", "168h", false),
		InvitationTTLMax:  dur("INVITATION_TTL_MAX", "720h", false),
		ReminderBefore:    dur("INVITATION_REMINDER_BEFORE", "48h", true),
		ResendMinInterval: dur("RESEND_MIN_INTERVAL", "60s", true),
		BootstrapAPIToken: str("BOOTSTRAP_API_TOKEN", ""),
		WorkerMetricsAddr: str("WORKER_METRICS_ADDR", "127.0.0.1:9091"),
		MetricsAddr:       str("METRICS_ADDR", ""),
		LogLevel:          str("LOG_LEVEL", "info"),
		Maintenance: Maintenance{
			Interval:           dur("MAINTENANCE_INTERVAL", "15m", false),
			IdempotencyKeyTTL:  dur("IDEMPOTENCY_KEY_TTL", "24h", false),
			EmailBodyRetention: dur("EMAIL_BODY_RETENTION", "24h", false),
			ReconcileGrace:     dur("RECONCILE_GRACE", "10m", true),
		},
	}
	if t := c.BootstrapAPIToken; c.Production() && t != "" && (len(t) < minBootstrapTokenLen || DevSecret([]byte(t))) {
		// It is a full-reach API token: a short or example one is a master key anyone can guess.
		errs = append(errs, fmt.Errorf("BOOTSTRAP_API_TOKEN: must be at least %d characters and not an example or placeholder value when APP_ENV=production (openssl rand -hex 32)", minBootstrapTokenLen))
	}
	if c.Env != "development" && c.Env != "production" {
		errs = append(errs, fmt.Errorf("APP_ENV: %q must be development or production", c.Env))
	}
	c.LogFormat = str("LOG_FORMAT", map[bool]string{true: "json", false: "text"}[c.Production()])
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q must be json or text", c.LogFormat))
	}
	c.AcceptURLTemplate = strings.ReplaceAll(str("ACCEPT_URL_TEMPLATE", "{PUBLIC_BASE_URL}/invite?token={token}"),
		"{PUBLIC_BASE_URL}", c.PublicBaseURL)
	c.TermsURL = strings.ReplaceAll(str("TERMS_URL", "{PUBLIC_BASE_URL}/terms"), "{PUBLIC_BASE_URL}", c.PublicBaseURL)
	if !strings.Contains(c.AcceptURLTemplate, "{token}") {
		errs = append(errs, fmt.Errorf("ACCEPT_URL_TEMPLATE: %q must contain {token}", c.AcceptURLTemplate))
	}
	for name, raw := range map[string]string{"PUBLIC_BASE_URL": c.PublicBaseURL, "RESEND_BASE_URL": c.ResendBaseURL} {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an http(s) URL", name, raw))
		}
	}
	if c.ReminderBefore >= c.InvitationTTL && c.InvitationTTL > 0 && c.ReminderBefore > 0 {
		errs = append(errs, fmt.Errorf("INVITATION_REMINDER_BEFORE: %s must be shorter than INVITATION_TTL (%s)", c.ReminderBefore, c.InvitationTTL))
	}
	if c.InvitationTTLMax < c.InvitationTTL {
		errs = append(errs, fmt.Errorf("INVITATION_TTL_MAX: %s must not be shorter than INVITATION_TTL (%s)", c.InvitationTTLMax, c.InvitationTTL))
	}
	if c.InvitationTTLMax < time.Minute {
		errs = append(errs, fmt.Errorf("INVITATION_TTL_MAX: %s must be at least 1m, the shortest expires_in", c.InvitationTTLMax))
	}
	rate := str("EMAIL_RATE_PER_SECOND", "2")
	if f, err := strconv.ParseFloat(rate, 64); err != nil || f <= 0 {
		errs = append(errs, fmt.Errorf("EMAIL_RATE_PER_SECOND: %q must be a positive number", rate))
	} else {
		c.EmailRatePerSecond = f
	}
	if n, err := strconv.Atoi(str("WORKER_WORKFLOW_CACHE_SIZE", "0")); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("WORKER_WORKFLOW_CACHE_SIZE: %q must be a whole number, 0 or more", str("WORKER_WORKFLOW_CACHE_SIZE", "0")))
	} else {
		c.WorkerWorkflowCacheSize = n
	}
	if n, err := strconv.Atoi(str("EMAIL_RECIPIENT_DAILY_CAP", "10")); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("EMAIL_RECIPIENT_DAILY_CAP: %q must be a whole number, 0 for no cap", str("EMAIL_RECIPIENT_DAILY_CAP", "10")))
	} else {
		c.EmailRecipientDailyCap = n
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		errs = append(errs, errors.New("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together"))
	}

	switch secret := getenv("TOKEN_SECRET"); {
	case secret == "" && c.Production():
		errs = append(errs, errors.New("TOKEN_SECRET: required when APP_ENV=production"))
	case secret == "":
		// Development only: links stop verifying when the process restarts, as CONTRACT.md says.
		c.TokenSecret = make([]byte, 32)
		_, _ = rand.Read(c.TokenSecret)
		c.TokenSecretIsRandom = true
	case len(secret) < 32:
		errs = append(errs, errors.New("TOKEN_SECRET: must be at least 32 characters"))
	default:
		c.TokenSecret = []byte(secret)
	}
	if key := getenv("EMAIL_HASH_KEY"); key != "" {
		c.EmailHashKey = []byte(key)
	} else if c.TokenSecret != nil {
		c.EmailHashKey = emailhash.DeriveKey(c.TokenSecret)
	}
	errs = append(errs, c.loadSecurity(getenv)...)
	errs = append(errs, c.loadPasswordReset(str, dur)...)
	errs = append(errs, c.loadWebhooks(str, dur)...)
	errs = append(errs, c.loadDebug(str)...)
	return c, errors.Join(errs...)
}
