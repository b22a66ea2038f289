package config

import (
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.TemporalAddress != "127.0.0.1:7233" || c.TemporalNamespace != "default" ||
		c.TemporalTaskQueue != "onboarding" || c.InvitationTTL != 168*time.Hour || c.ReminderBefore != 48*time.Hour ||
		c.ResendMinInterval != 60*time.Second || c.WorkerMetricsAddr != "127.0.0.1:9091" ||
		c.AcceptURLTemplate != "http://localhost:8080/invite?token={token}" ||
		c.DatabaseURL != "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable" ||
		c.EmailFrom != "Onboarding <onboarding@localhost>" || !c.TokenSecretIsRandom || len(c.TokenSecret) != 32 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestAcceptURLTemplateUsesPublicBaseURL(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"PUBLIC_BASE_URL": "https://app.example.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AcceptURLTemplate != "https://app.example.com/invite?token={token}" {
		t.Fatalf("template %q", c.AcceptURLTemplate)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for name, kv := range map[string]map[string]string{
		"INVITATION_TTL":             {"INVITATION_TTL": "7 days"},
		"INVITATION_REMINDER_BEFORE": {"INVITATION_REMINDER_BEFORE": "-1h"},
		"RESEND_MIN_INTERVAL":        {"RESEND_MIN_INTERVAL": "soon"},
		"TOKEN_SECRET":               {"APP_ENV": "production"},
		"ACCEPT_URL_TEMPLATE":        {"ACCEPT_URL_TEMPLATE": "https://x.test/accept"},
		"PUBLIC_BASE_URL":            {"PUBLIC_BASE_URL": "not a url"},
		"APP_ENV":                    {"APP_ENV": "staging"},
		"EMAIL_RATE_PER_SECOND":      {"EMAIL_RATE_PER_SECOND": "0"},
		"WORKER_WORKFLOW_CACHE_SIZE": {"WORKER_WORKFLOW_CACHE_SIZE": "-1"},
		"PASSWORD_RESET_TTL":         {"PASSWORD_RESET_TTL": "48h"},
	} {
		_, err := LoadFrom(env(kv))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want one naming %s", kv, err, name)
		}
	}
	if _, err := LoadFrom(env(map[string]string{"INVITATION_TTL": "10s", "INVITATION_REMINDER_BEFORE": "20s"})); err == nil {
		t.Error("a reminder before a longer span than the TTL was accepted")
	}
	if _, err := LoadFrom(env(map[string]string{"TOKEN_SECRET": "short"})); err == nil {
		t.Error("a short TOKEN_SECRET was accepted")
	}
}

func TestZeroReminderMeansNone(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"INVITATION_REMINDER_BEFORE": "0"}))
	if err != nil || c.ReminderBefore != 0 {
		t.Fatalf("reminder %v err %v", c.ReminderBefore, err)
	}
}
