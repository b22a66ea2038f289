package config

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestWebhooksDefaults(t *testing.T) {
	c, err := LoadFrom(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookRetryFor != 72*time.Hour || c.WebhookAllowLocalhost || c.ResendWebhookSecret != "" {
		t.Fatalf("webhook defaults: %+v", c.Webhooks)
	}
}

func TestWebhookRetryFor(t *testing.T) {
	for raw, want := range map[string]time.Duration{"1m": time.Minute, "24h": 24 * time.Hour, "720h": 720 * time.Hour, "90m": 90 * time.Minute} {
		c, err := LoadFrom(env(map[string]string{"WEBHOOK_RETRY_FOR": raw}))
		if err != nil || c.WebhookRetryFor != want {
			t.Errorf("WEBHOOK_RETRY_FOR=%s: %s, %v", raw, c.WebhookRetryFor, err)
		}
	}
	for _, bad := range []string{"59s", "721h", "0", "-1h", "3 days", "72"} {
		if _, err := LoadFrom(env(map[string]string{"WEBHOOK_RETRY_FOR": bad})); err == nil || !strings.Contains(err.Error(), "WEBHOOK_RETRY_FOR") {
			t.Errorf("WEBHOOK_RETRY_FOR=%q: err = %v, want one naming it", bad, err)
		}
	}
}

func TestWebhookAllowLocalhost(t *testing.T) {
	for raw, want := range map[string]bool{"true": true, "1": true, "TRUE": true, "false": false, "0": false} {
		c, err := LoadFrom(env(map[string]string{"WEBHOOK_ALLOW_LOCALHOST": raw}))
		if err != nil || c.WebhookAllowLocalhost != want {
			t.Errorf("WEBHOOK_ALLOW_LOCALHOST=%s: %v, %v", raw, c.WebhookAllowLocalhost, err)
		}
	}
	if _, err := LoadFrom(env(map[string]string{"WEBHOOK_ALLOW_LOCALHOST": "yes please"})); err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOW_LOCALHOST") {
		t.Errorf("a non-boolean: err = %v", err)
	}
	prod := map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "PAYLOAD_ENCRYPTION_OPT_OUT": "true"}
	if _, err := LoadFrom(env(prod)); err != nil {
		t.Fatalf("production baseline: %v", err)
	}
	prod["WEBHOOK_ALLOW_LOCALHOST"] = "true"
	if _, err := LoadFrom(env(prod)); err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOW_LOCALHOST") {
		t.Errorf("production with localhost webhooks: err = %v", err)
	}
	prod["WEBHOOK_ALLOW_LOCALHOST"] = "false"
	if c, err := LoadFrom(env(prod)); err != nil || c.WebhookAllowLocalhost {
		t.Errorf("production with WEBHOOK_ALLOW_LOCALHOST=false: %v, %v", c.WebhookAllowLocalhost, err)
	}
}

func TestResendWebhookSecret(t *testing.T) {
	key := make([]byte, 24)
	for i := range key {
		key[i] = byte(i * 7)
	}
	for _, good := range []string{
		"whsec_" + base64.StdEncoding.EncodeToString(key),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	} {
		c, err := LoadFrom(env(map[string]string{"RESEND_WEBHOOK_SECRET": " " + good + " "}))
		if err != nil || c.ResendWebhookSecret != good {
			t.Errorf("RESEND_WEBHOOK_SECRET=%q: %q, %v", good, c.ResendWebhookSecret, err)
		}
	}
	for _, bad := range []string{
		"re_123456789",                         // an API key, not the webhook secret
		base64.StdEncoding.EncodeToString(key), // no prefix
		"whsec_",                               // prefix only
		"whsec_" + base64.RawStdEncoding.EncodeToString(key[:23]), // unpadded: the verifier refuses it, so the setting does
		"whsec_not*base64*at*all",                                 // not base64
		"whsec_" + base64.StdEncoding.EncodeToString(key[:8]),     // too short to be a key
		"whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}),
	} {
		_, err := LoadFrom(env(map[string]string{"RESEND_WEBHOOK_SECRET": bad}))
		if err == nil || !strings.Contains(err.Error(), "RESEND_WEBHOOK_SECRET") {
			t.Errorf("RESEND_WEBHOOK_SECRET=%q: err = %v, want one naming it", bad, err)
			continue
		}
		if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}
