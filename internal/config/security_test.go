package config

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/codec"
)

const goodSecret = "9f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f-production"

func TestProductionRefusesDevTokenSecrets(t *testing.T) {
	for _, s := range []string{
		"CHANGE-ME-to-at-least-32-random-characters", // deploy/k8s/secret.example.yaml
		"0123456789abcdef0123456789abcdef",
		"please-change-me-before-going-live-000000",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	} {
		_, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": s}))
		if err == nil || !strings.Contains(err.Error(), "TOKEN_SECRET") {
			t.Errorf("production with TOKEN_SECRET %q: err = %v", s, err)
		}
		// Development takes them, as the examples do.
		if _, err := LoadFrom(env(map[string]string{"TOKEN_SECRET": s})); err != nil {
			t.Errorf("development with TOKEN_SECRET %q: %v", s, err)
		}
	}
	if _, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": strings.Repeat("ab", 15)})); err == nil {
		t.Error("production took a 30-byte TOKEN_SECRET")
	}
	if _, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "PAYLOAD_ENCRYPTION_OPT_OUT": "true"})); err != nil {
		t.Errorf("production with a good secret: %v", err)
	}
}

func TestTokenSecretPrevious(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"TOKEN_SECRET": goodSecret,
		"TOKEN_SECRET_PREVIOUS": " first-retired-secret-of-32-bytes-0001 , ,second-retired-secret-of-32-bytes-002"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TokenSecretPrevious) != 2 || string(c.TokenSecretPrevious[0]) != "first-retired-secret-of-32-bytes-0001" ||
		string(c.TokenSecretPrevious[1]) != "second-retired-secret-of-32-bytes-002" {
		t.Fatalf("previous = %q", c.TokenSecretPrevious)
	}
	for _, kv := range []map[string]string{
		{"TOKEN_SECRET": goodSecret, "TOKEN_SECRET_PREVIOUS": "short"},
		{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "TOKEN_SECRET_PREVIOUS": "CHANGE-ME-to-at-least-32-random-characters"},
	} {
		if _, err := LoadFrom(env(kv)); err == nil || !strings.Contains(err.Error(), "TOKEN_SECRET_PREVIOUS") {
			t.Errorf("%v: err = %v", kv, err)
		}
	}
}

func TestPayloadKeys(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k2 := base64.RawURLEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	c, err := LoadFrom(env(map[string]string{"PAYLOAD_ENCRYPTION_KEY": k1, "PAYLOAD_ENCRYPTION_KEY_ID": "2026-02",
		"PAYLOAD_ENCRYPTION_KEYS_PREVIOUS": "2026-01:" + k2 + ",2026-01:" + k1}))
	if err == nil {
		t.Fatal("the same key id twice was accepted")
	}
	c, err = LoadFrom(env(map[string]string{"PAYLOAD_ENCRYPTION_KEY": k1, "PAYLOAD_ENCRYPTION_KEY_ID": "2026-02",
		"PAYLOAD_ENCRYPTION_KEYS_PREVIOUS": "2026-01:" + k2}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PayloadKey == nil || c.PayloadKey.ID != "2026-02" || string(c.PayloadKey.Secret[:]) != "0123456789abcdef0123456789abcdef" ||
		len(c.PayloadKeysPrevious) != 1 || c.PayloadKeysPrevious[0].ID != "2026-01" {
		t.Fatalf("keys %+v %+v", c.PayloadKey, c.PayloadKeysPrevious)
	}
	// Without an id, the key is named by its fingerprint.
	c, err = LoadFrom(env(map[string]string{"PAYLOAD_ENCRYPTION_KEY": k1}))
	if err != nil || c.PayloadKey.ID != codec.DeriveKeyID(c.PayloadKey.Secret) {
		t.Fatalf("%+v %v", c.PayloadKey, err)
	}
	if c, _ := LoadFrom(env(nil)); c.PayloadKey != nil {
		t.Fatal("encryption is on by default")
	}
	for name, kv := range map[string]map[string]string{
		"PAYLOAD_ENCRYPTION_KEY":           {"PAYLOAD_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString([]byte("too short"))},
		"PAYLOAD_ENCRYPTION_KEY_ID":        {"PAYLOAD_ENCRYPTION_KEY": k1, "PAYLOAD_ENCRYPTION_KEY_ID": "has space"},
		"PAYLOAD_ENCRYPTION_KEYS_PREVIOUS": {"PAYLOAD_ENCRYPTION_KEYS_PREVIOUS": k2},
		"CODEC_AUTH_TOKEN":                 {"CODEC_AUTH_TOKEN": "short"},
		"CODEC_CORS_ORIGIN":                {"CODEC_CORS_ORIGIN": "http://ui.example/path"},
	} {
		if _, err := LoadFrom(env(kv)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want one naming %s", kv, err, name)
		}
	}
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "PAYLOAD_ENCRYPTION_KEY": zero})); err == nil {
		t.Error("production took an all-zero payload key")
	}
}

func TestCodecAndRateDefaults(t *testing.T) {
	c, err := LoadFrom(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CodecCORSOrigins) != 1 || c.CodecCORSOrigins[0] != "http://localhost:8233" || c.CodecAuthToken != "" {
		t.Fatalf("codec defaults %q %q", c.CodecCORSOrigins, c.CodecAuthToken)
	}
	if c.RateInviteeIP != (RateLimit{60, time.Minute}) || c.RateInviteeToken != (RateLimit{20, time.Minute}) ||
		c.RateInvitationCreate != (RateLimit{120, time.Minute}) || len(c.TrustedProxies) != 0 {
		t.Fatalf("rate defaults %v %v %v %v", c.RateInviteeIP, c.RateInviteeToken, c.RateInvitationCreate, c.TrustedProxies)
	}
	c, err = LoadFrom(env(map[string]string{"RATE_LIMIT_INVITEE_IP": "off", "RATE_LIMIT_INVITEE_TOKEN": "5/s",
		"RATE_LIMIT_INVITATIONS_ACCOUNT": "1000/1h", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
		"CODEC_CORS_ORIGIN": "https://temporal.example.com/,http://localhost:8233"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateInviteeIP.Enabled() || c.RateInviteeToken != (RateLimit{5, time.Second}) || c.RateInvitationCreate != (RateLimit{1000, time.Hour}) ||
		len(c.TrustedProxies) != 2 || c.CodecCORSOrigins[0] != "https://temporal.example.com" {
		t.Fatalf("%+v", c.Security)
	}
	for _, bad := range []string{"60", "x/1m", "0/1m", "-1/1m", "60/forever", "60/0s", "60/", "1/48h"} {
		if _, err := LoadFrom(env(map[string]string{"RATE_LIMIT_INVITEE_IP": bad})); err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_INVITEE_IP") {
			t.Errorf("RATE_LIMIT_INVITEE_IP=%q: err = %v", bad, err)
		}
	}
	if _, err := LoadFrom(env(map[string]string{"TRUSTED_PROXIES": "proxy.internal"})); err == nil {
		t.Error("a host name was taken as a trusted proxy")
	}
}

// Production refuses a BOOTSTRAP_API_TOKEN (an unscoped API token) that is short or an example
// value; development takes any.
func TestProductionRefusesWeakBootstrapToken(t *testing.T) {
	for _, tok := range []string{"dev-token", strings.Repeat("a", 40), "changemechangemechangemechangeme", "0123456789abcdef"} {
		_, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "BOOTSTRAP_API_TOKEN": tok}))
		if err == nil || !strings.Contains(err.Error(), "BOOTSTRAP_API_TOKEN") {
			t.Errorf("production with BOOTSTRAP_API_TOKEN %q: err = %v", tok, err)
		}
		if _, err := LoadFrom(env(map[string]string{"BOOTSTRAP_API_TOKEN": tok})); err != nil {
			t.Errorf("development with BOOTSTRAP_API_TOKEN %q: %v", tok, err)
		}
	}
	for _, tok := range []string{"", "3f5a9c1e7b2d4f6081a3c5e7092b4d6f"} { // none, or $(openssl rand -hex 16)
		if _, err := LoadFrom(env(map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret, "BOOTSTRAP_API_TOKEN": tok, "PAYLOAD_ENCRYPTION_OPT_OUT": "true"})); err != nil {
			t.Errorf("production with BOOTSTRAP_API_TOKEN %q: %v", tok, err)
		}
	}
}

// Production needs a payload key, or the explicit opt-out; development needs neither.
func TestProductionRequiresPayloadEncryption(t *testing.T) {
	prod := map[string]string{"APP_ENV": "production", "TOKEN_SECRET": goodSecret}
	if _, err := LoadFrom(env(prod)); err == nil || !strings.Contains(err.Error(), "PAYLOAD_ENCRYPTION_KEY") {
		t.Errorf("production without a payload key: err = %v", err)
	}
	prod["PAYLOAD_ENCRYPTION_OPT_OUT"] = "true"
	if c, err := LoadFrom(env(prod)); err != nil || c.PayloadKey != nil {
		t.Errorf("production with the opt-out: %v", err)
	}
	delete(prod, "PAYLOAD_ENCRYPTION_OPT_OUT")
	prod["PAYLOAD_ENCRYPTION_KEY"] = "q7r1w9Zb0s1Xy2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uU="
	if c, err := LoadFrom(env(prod)); err != nil || c.PayloadKey == nil {
		t.Errorf("production with a payload key: %v", err)
	}
	if _, err := LoadFrom(env(map[string]string{})); err != nil {
		t.Errorf("development without a payload key: %v", err)
	}
}

// CODEC_OIDC_ISSUER and CODEC_OIDC_AUDIENCE come together; production takes an https issuer only.
func TestCodecOIDCSettings(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"CODEC_OIDC_ISSUER": "https://login.example.com/realms/support", "CODEC_OIDC_AUDIENCE": "temporal-ui"}))
	if err != nil || c.CodecOIDCIssuer != "https://login.example.com/realms/support" || c.CodecOIDCAudience != "temporal-ui" {
		t.Fatalf("%q %q %v", c.CodecOIDCIssuer, c.CodecOIDCAudience, err)
	}
	if c, err := LoadFrom(env(nil)); err != nil || c.CodecOIDCIssuer != "" || c.CodecAllowLocalUI {
		t.Fatalf("defaults: %+v %v", c.Security, err)
	}
	// A local test identity provider over http is fine in development.
	if _, err := LoadFrom(env(map[string]string{"CODEC_OIDC_ISSUER": "http://127.0.0.1:5556", "CODEC_OIDC_AUDIENCE": "x"})); err != nil {
		t.Errorf("development, http issuer: %v", err)
	}
	prod := func(kv map[string]string) map[string]string {
		kv["APP_ENV"], kv["TOKEN_SECRET"], kv["PAYLOAD_ENCRYPTION_OPT_OUT"] = "production", goodSecret, "true"
		return kv
	}
	if _, err := LoadFrom(env(prod(map[string]string{"CODEC_OIDC_ISSUER": "https://login.example.com", "CODEC_OIDC_AUDIENCE": "x"}))); err != nil {
		t.Errorf("production, https issuer: %v", err)
	}
	for name, kv := range map[string]map[string]string{
		"issuer without audience": {"CODEC_OIDC_ISSUER": "https://login.example.com"},
		"audience without issuer": {"CODEC_OIDC_AUDIENCE": "temporal-ui"},
		"not a URL":               {"CODEC_OIDC_ISSUER": "login.example.com", "CODEC_OIDC_AUDIENCE": "x"},
		"query":                   {"CODEC_OIDC_ISSUER": "https://login.example.com/?tenant=1", "CODEC_OIDC_AUDIENCE": "x"},
		"production, http":        prod(map[string]string{"CODEC_OIDC_ISSUER": "http://login.example.com", "CODEC_OIDC_AUDIENCE": "x"}),
	} {
		_, err := LoadFrom(env(kv))
		if err == nil || !strings.Contains(err.Error(), "CODEC_OIDC_") {
			t.Errorf("%s: err = %v, want one naming CODEC_OIDC_*", name, err)
		}
		if name == "production, http" && (err == nil || !strings.Contains(err.Error(), "https")) {
			t.Errorf("%s: err = %v, want it to ask for https", name, err)
		}
	}
}

// CODEC_ALLOW_LOCAL_UI is for development only.
func TestCodecAllowLocalUI(t *testing.T) {
	if c, err := LoadFrom(env(map[string]string{"CODEC_ALLOW_LOCAL_UI": "true"})); err != nil || !c.CodecAllowLocalUI {
		t.Errorf("development: %v %v", c.CodecAllowLocalUI, err)
	}
	for _, kv := range []map[string]string{
		{"CODEC_ALLOW_LOCAL_UI": "yes please"},
		{"CODEC_ALLOW_LOCAL_UI": "true", "APP_ENV": "production", "TOKEN_SECRET": goodSecret, "PAYLOAD_ENCRYPTION_OPT_OUT": "true"},
	} {
		if _, err := LoadFrom(env(kv)); err == nil || !strings.Contains(err.Error(), "CODEC_ALLOW_LOCAL_UI") {
			t.Errorf("%v: err = %v", kv, err)
		}
	}
	if c, err := LoadFrom(env(map[string]string{"CODEC_ALLOW_LOCAL_UI": "false", "APP_ENV": "production", "TOKEN_SECRET": goodSecret, "PAYLOAD_ENCRYPTION_OPT_OUT": "true"})); err != nil || c.CodecAllowLocalUI {
		t.Errorf("production, false: %v %v", c.CodecAllowLocalUI, err)
	}
}
