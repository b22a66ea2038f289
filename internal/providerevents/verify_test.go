package providerevents

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// svixSign is an independent signer written from Svix's "verifying payloads
// manually" description, so the tests do not trust the code under test: the
// signed content is "<id>.<timestamp>.<body>", the key is the base64-decoded
// part of the secret after "whsec_", the MAC is HMAC-SHA256 and the header
// entry is "v1," followed by the standard base64 of the MAC.
func svixSign(t *testing.T, secret, id string, ts int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("test secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// signedHeader is what Resend would send for body at ts.
func signedHeader(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("svix-signature", svixSign(t, secret, id, ts.Unix(), body))
	return h
}

func mustVerifier(t *testing.T, secret string) *Verifier {
	t.Helper()
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

var (
	testNow  = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	testBody = []byte(`{"type":"email.delivered","created_at":"2026-03-14T09:26:50.412Z","data":{"email_id":"3f0c5b9e-5d1a-4c47-9a53-0f3b6c1d2e7a","to":["ada@example.com"]}}`)
)

const testID = "msg_2dVqXH8nR4kPz7LmYc9Tb1Wa"

func wantSignatureErr(t *testing.T, err error, also ...error) {
	t.Helper()
	if err == nil {
		t.Fatal("Verify accepted a request it should refuse")
	}
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v, want errors.Is(err, ErrSignature)", err)
	}
	for _, a := range also {
		if !errors.Is(err, a) {
			t.Fatalf("err = %v, want errors.Is(err, %v) too", err, a)
		}
	}
}

func TestVerifyAcceptsValidSignature(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	h := signedHeader(t, secret, testID, testNow, testBody)
	if err := v.Verify(testBody, h, testNow); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyThroughHTTPRequest(t *testing.T) {
	// The handler passes r.Header; Svix writes the names in lower case on
	// the wire, and net/http canonicalises them.
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	raw := "POST /v1/provider-events/resend HTTP/1.1\r\n" +
		"Host: onboarding.example\r\n" +
		"content-type: application/json\r\n" +
		"svix-id: " + testID + "\r\n" +
		"svix-timestamp: " + strconv.FormatInt(testNow.Unix(), 10) + "\r\n" +
		"svix-signature: " + svixSign(t, secret, testID, testNow.Unix(), testBody) + "\r\n" +
		"content-length: " + strconv.Itoa(len(testBody)) + "\r\n\r\n" +
		string(testBody)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(body, r.Header, testNow); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRefusesWrongSecret(t *testing.T) {
	v := mustVerifier(t, newSecret(t))
	h := signedHeader(t, newSecret(t), testID, testNow, testBody)
	wantSignatureErr(t, v.Verify(testBody, h, testNow))
}

func TestVerifyRefusesTampering(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)

	t.Run("body", func(t *testing.T) {
		h := signedHeader(t, secret, testID, testNow, testBody)
		tampered := []byte(strings.Replace(string(testBody), "email.delivered", "email.bounced", 1))
		wantSignatureErr(t, v.Verify(tampered, h, testNow))
	})
	t.Run("body one byte longer", func(t *testing.T) {
		h := signedHeader(t, secret, testID, testNow, testBody)
		wantSignatureErr(t, v.Verify(append(append([]byte(nil), testBody...), '\n'), h, testNow))
	})
	t.Run("empty body", func(t *testing.T) {
		h := signedHeader(t, secret, testID, testNow, testBody)
		wantSignatureErr(t, v.Verify(nil, h, testNow))
	})
	t.Run("id", func(t *testing.T) {
		// A new svix-id would dodge the dedupe; it must break the signature.
		h := signedHeader(t, secret, testID, testNow, testBody)
		h.Set("svix-id", testID+"x")
		wantSignatureErr(t, v.Verify(testBody, h, testNow))
	})
	t.Run("timestamp", func(t *testing.T) {
		// Refreshing an old capture's timestamp must break the signature.
		h := signedHeader(t, secret, testID, testNow.Add(-time.Hour), testBody)
		h.Set("svix-timestamp", strconv.FormatInt(testNow.Unix(), 10))
		wantSignatureErr(t, v.Verify(testBody, h, testNow))
	})
	t.Run("signature bit flipped", func(t *testing.T) {
		h := signedHeader(t, secret, testID, testNow, testBody)
		sig := []byte(h.Get("svix-signature"))
		if sig[5] == 'A' {
			sig[5] = 'B'
		} else {
			sig[5] = 'A'
		}
		h.Set("svix-signature", string(sig))
		wantSignatureErr(t, v.Verify(testBody, h, testNow))
	})
	t.Run("re-encoded JSON", func(t *testing.T) {
		// Same JSON value, different bytes: the raw body is what is signed.
		h := signedHeader(t, secret, testID, testNow, testBody)
		spaced := []byte(strings.ReplaceAll(string(testBody), ",", ", "))
		wantSignatureErr(t, v.Verify(spaced, h, testNow))
	})
}

func TestVerifyRefusesMissingHeaders(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	for _, name := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
		t.Run("no "+name, func(t *testing.T) {
			h := signedHeader(t, secret, testID, testNow, testBody)
			h.Del(name)
			wantSignatureErr(t, v.Verify(testBody, h, testNow), ErrMissingHeader)
		})
		t.Run("blank "+name, func(t *testing.T) {
			h := signedHeader(t, secret, testID, testNow, testBody)
			h.Set(name, "  ")
			wantSignatureErr(t, v.Verify(testBody, h, testNow), ErrMissingHeader)
		})
	}
	t.Run("no headers at all", func(t *testing.T) {
		wantSignatureErr(t, v.Verify(testBody, http.Header{}, testNow), ErrMissingHeader)
		wantSignatureErr(t, v.Verify(testBody, nil, testNow), ErrMissingHeader)
	})
	t.Run("standard-webhooks names are not svix names", func(t *testing.T) {
		// The library falls back to webhook-*; this endpoint only takes
		// what Resend sends.
		s := signedHeader(t, secret, testID, testNow, testBody)
		h := http.Header{}
		h.Set("webhook-id", s.Get("svix-id"))
		h.Set("webhook-timestamp", s.Get("svix-timestamp"))
		h.Set("webhook-signature", s.Get("svix-signature"))
		wantSignatureErr(t, v.Verify(testBody, h, testNow), ErrMissingHeader)
	})
}

func TestVerifyMultipleSignatures(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	good := svixSign(t, secret, testID, testNow.Unix(), testBody)
	other := svixSign(t, newSecret(t), testID, testNow.Unix(), testBody)
	third := svixSign(t, newSecret(t), testID, testNow.Unix(), testBody)
	goodB64 := strings.TrimPrefix(good, "v1,")

	accept := map[string]string{
		"valid first":            good + " " + other,
		"valid last":             other + " " + third + " " + good,
		"valid among junk":       "v1 , v1, v1,@@notbase64@@ " + other + " " + good,
		"unknown version first":  "v2," + strings.TrimPrefix(other, "v1,") + " " + good,
		"double space separator": other + "  " + good,
	}
	for name, sig := range accept {
		t.Run(name, func(t *testing.T) {
			h := signedHeader(t, secret, testID, testNow, testBody)
			h.Set("svix-signature", sig)
			if err := v.Verify(testBody, h, testNow); err != nil {
				t.Fatalf("Verify(%q): %v", sig, err)
			}
		})
	}

	refuse := map[string]string{
		"none valid":             other + " " + third,
		"valid MAC under v2":     "v2," + goodB64,
		"valid MAC, no version":  goodB64,
		"valid MAC, v1a version": "v1a," + goodB64,
		"junk only":              "v1, v1,, ,",
	}
	for name, sig := range refuse {
		t.Run(name, func(t *testing.T) {
			h := signedHeader(t, secret, testID, testNow, testBody)
			h.Set("svix-signature", sig)
			wantSignatureErr(t, v.Verify(testBody, h, testNow))
		})
	}

	t.Run("signature split over repeated headers", func(t *testing.T) {
		h := signedHeader(t, secret, testID, testNow, testBody)
		h.Set("svix-signature", other)
		h.Add("svix-signature", good)
		if err := v.Verify(testBody, h, testNow); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestVerifyTimestampWindow(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	cases := []struct {
		name   string
		offset time.Duration // signing time relative to now
		ok     bool
	}{
		{"now", 0, true},
		{"4m59s old", -(4*time.Minute + 59*time.Second), true},
		{"exactly 5m old", -5 * time.Minute, true},
		{"5m01s old (stale)", -(5*time.Minute + time.Second), false},
		{"one day old (replay)", -24 * time.Hour, false},
		{"4m59s ahead", 4*time.Minute + 59*time.Second, true},
		{"exactly 5m ahead", 5 * time.Minute, true},
		{"5m01s ahead (future)", 5*time.Minute + time.Second, false},
		{"one hour ahead", time.Hour, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A genuine signature over the claimed time: only the window
			// can refuse it.
			h := signedHeader(t, secret, testID, testNow.Add(c.offset), testBody)
			err := v.Verify(testBody, h, testNow)
			if c.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantSignatureErr(t, err, ErrTimestamp)
		})
	}

	t.Run("sub-second now", func(t *testing.T) {
		// now carries nanoseconds; the header has whole seconds.
		now := testNow.Add(999 * time.Millisecond)
		h := signedHeader(t, secret, testID, testNow.Add(-5*time.Minute), testBody)
		wantSignatureErr(t, v.Verify(testBody, h, now), ErrTimestamp)
		h = signedHeader(t, secret, testID, testNow.Add(-4*time.Minute), testBody)
		if err := v.Verify(testBody, h, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})

	for _, bad := range []string{"soon", "1710408413.5", "1e9", "0x65f2c0dd", "99999999999999999999"} {
		t.Run("timestamp "+bad, func(t *testing.T) {
			h := signedHeader(t, secret, testID, testNow, testBody)
			h.Set("svix-timestamp", bad)
			wantSignatureErr(t, v.Verify(testBody, h, testNow), ErrTimestamp)
		})
	}

	t.Run("milliseconds instead of seconds", func(t *testing.T) {
		ms := testNow.UnixMilli()
		h := signedHeader(t, secret, testID, testNow, testBody)
		h.Set("svix-timestamp", strconv.FormatInt(ms, 10))
		h.Set("svix-signature", svixSign(t, secret, testID, ms, testBody))
		wantSignatureErr(t, v.Verify(testBody, h, testNow), ErrTimestamp)
	})

	t.Run("signature errors are not timestamp errors", func(t *testing.T) {
		h := signedHeader(t, newSecret(t), testID, testNow, testBody)
		err := v.Verify(testBody, h, testNow)
		wantSignatureErr(t, err)
		if errors.Is(err, ErrTimestamp) || errors.Is(err, ErrMissingHeader) {
			t.Fatalf("err = %v: a bad MAC is neither a timestamp nor a header problem", err)
		}
	})
}

func TestNewVerifierSecrets(t *testing.T) {
	good := newSecret(t)
	if _, err := NewVerifier(good + "\n"); err != nil {
		t.Fatalf("a trailing newline (from a file or env) should be tolerated: %v", err)
	}
	bad := map[string]string{
		"empty":             "",
		"prefix only":       "whsec_",
		"no prefix":         strings.TrimPrefix(good, "whsec_"),
		"resend API key":    "re_123456789_abcdefghijklmnopqrstuvwx",
		"wrong prefix":      "whsk_" + strings.TrimPrefix(good, "whsec_"),
		"not base64":        "whsec_this is not base64!",
		"url-safe alphabet": "whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}),
		"truncated base64":  good[:len(good)-1],
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			v, err := NewVerifier(s)
			if err == nil {
				t.Fatalf("NewVerifier(%q) = %v, want an error", s, v)
			}
			if tail := strings.TrimPrefix(s, "whsec_"); len(tail) > 8 && strings.Contains(err.Error(), tail) {
				t.Fatalf("error %q repeats the secret", err)
			}
		})
	}
}

func TestVerifyErrorsDoNotLeakSecretOrSignature(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	h := signedHeader(t, newSecret(t), testID, testNow, testBody)
	err := v.Verify(testBody, h, testNow)
	wantSignatureErr(t, err)
	msg := err.Error()
	if strings.Contains(msg, strings.TrimPrefix(secret, "whsec_")) ||
		strings.Contains(msg, strings.TrimPrefix(h.Get("svix-signature"), "v1,")) {
		t.Fatalf("error %q leaks key material", msg)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	type req struct {
		good, bad http.Header
	}
	reqs := make([]req, 32)
	for i := range reqs {
		id := testID + strconv.Itoa(i)
		reqs[i] = req{
			good: signedHeader(t, secret, id, testNow, testBody),
			bad:  signedHeader(t, newSecret(t), id, testNow, testBody),
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(reqs))
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Verify(testBody, r.good, testNow); err != nil {
				errs <- err
			}
			if err := v.Verify(testBody, r.bad, testNow); err == nil {
				errs <- errors.New("wrong secret accepted")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
