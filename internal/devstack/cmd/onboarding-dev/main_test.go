package main

import (
	"bytes"
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
