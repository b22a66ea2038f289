package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{dst: &out, prefix: "[api] "}
	for _, chunk := range []string{"first li", "ne\nsecond line\nthi", "rd"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := out.String(), "[api] first line\n[api] second line\n"; got != want {
		t.Errorf("before Flush: %q, want %q", got, want)
	}
	w.Flush()
	if got, want := out.String(), "[api] first line\n[api] second line\n[api] third\n"; got != want {
		t.Errorf("after Flush: %q, want %q", got, want)
	}

	out.Reset()
	_, _ = w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	if lines := strings.Count(out.String(), "\n"); lines != 1 {
		t.Errorf("an over-long line without newline gave %d lines of output, want 1", lines)
	}
}

func TestLocalURL(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:9091":      "http://127.0.0.1:9091",
		"127.0.0.1:9091": "http://127.0.0.1:9091",
		"[::1]:8080":     "http://[::1]:8080",
	} {
		if got, err := localURL("X", in); err != nil || got != want {
			t.Errorf("localURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := localURL("HTTP_ADDR", "8080"); err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
		t.Errorf("localURL without a port separator: %v, want an error naming HTTP_ADDR", err)
	}
}

func TestLoopbackHostPort(t *testing.T) {
	host, port, err := loopbackHostPort("TEMPORAL_ADDRESS", "localhost:7233")
	if err != nil || host != "127.0.0.1" || port != 7233 {
		t.Errorf("localhost:7233 = %s, %d, %v", host, port, err)
	}
	for _, bad := range []string{"temporal.example.com:7233", "10.0.0.5:7233", "127.0.0.1", "127.0.0.1:x"} {
		if _, _, err := loopbackHostPort("TEMPORAL_ADDRESS", bad); err == nil || !strings.Contains(err.Error(), "TEMPORAL_ADDRESS") {
			t.Errorf("%q: %v, want an error naming TEMPORAL_ADDRESS", bad, err)
		}
	}
}

// make run encrypts payloads with a key it keeps, and opens the codec to the dev UI only.
func TestSettingsEncryptPayloads(t *testing.T) {
	for _, k := range []string{"PAYLOAD_ENCRYPTION_KEY", "CODEC_AUTH_TOKEN", "CODEC_CORS_ORIGIN", "CODEC_ALLOW_LOCAL_UI",
		"BOOTSTRAP_API_TOKEN", "TOKEN_SECRET", "APP_ENV", "HTTP_ADDR", "TEMPORAL_ADDRESS"} {
		t.Setenv(k, "")
	}
	t.Setenv("TEMPORAL_UI_PORT", "18233")
	dir := t.TempDir()
	first, err := loadSettings(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := first.cfg
	if cfg.PayloadKey == nil || len(cfg.CodecAuthToken) < 32 || !cfg.CodecAllowLocalUI ||
		strings.Join(cfg.CodecCORSOrigins, ",") != "http://127.0.0.1:18233,http://localhost:18233" ||
		first.codecEndpoint != "http://127.0.0.1:8080/codec" {
		t.Fatalf("settings: key %v, token %q, local UI %v, origins %v, endpoint %q",
			cfg.PayloadKey != nil, cfg.CodecAuthToken, cfg.CodecAllowLocalUI, cfg.CodecCORSOrigins, first.codecEndpoint)
	}
	for _, name := range []string{"payload-encryption.key", "codec-auth-token"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	// The next run reuses both, so earlier histories still decode.
	again, err := loadSettings(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.cfg.PayloadKey.Secret != cfg.PayloadKey.Secret || again.cfg.CodecAuthToken != cfg.CodecAuthToken {
		t.Fatal("a second run made a new payload key or codec token")
	}
	// A developer's own settings win.
	t.Setenv("PAYLOAD_ENCRYPTION_KEY", "q7r1w9Zb0s1Xy2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uU=")
	t.Setenv("CODEC_ALLOW_LOCAL_UI", "false")
	own, err := loadSettings(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if own.cfg.PayloadKey.Secret == cfg.PayloadKey.Secret || own.cfg.CodecAllowLocalUI || own.payloadKeySource != "from PAYLOAD_ENCRYPTION_KEY" {
		t.Fatalf("own settings ignored: %+v", own.payloadKeySource)
	}
}
