package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

// specVerify checks a webhook-signature header the way the Standard Webhooks specification
// describes it, using nothing from this package: the secret's key is the base64 after
// "whsec_", the signed content is "{msg_id}.{timestamp}.{payload}", and the header is a
// space-separated list of "v1,<base64 HMAC-SHA256>" entries, any of which may match.
func specVerify(t *testing.T, secret, msgID, timestamp string, body []byte, header string) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("test secret %q: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Split(header, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// The test vector the Standard Webhooks libraries share (the same in their Go, Python, PHP,
// C# and Java tests): secret, message id, timestamp, body and the signature they all produce.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	got, err := Sign([]string{vectorSecret}, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %q, want the libraries' vector %q", got, vectorSignature)
	}
	// The independent verifier agrees with the vector too, so it checks what the spec says.
	if !specVerify(t, vectorSecret, vectorMsgID, strconv.Itoa(vectorTimestamp), []byte(vectorBody), vectorSignature) {
		t.Fatal("the test's own verifier does not accept the published vector")
	}
}

func TestSignVerifiesIndependently(t *testing.T) {
	secrets := NewSecrets([]byte("a-token-secret-of-at-least-32-bytes-long"))
	ts := time.Unix(1767225600, 999_000_000) // sub-second part is dropped: the header is seconds
	for _, c := range []struct {
		name string
		id   string
		body string
	}{
		{"event", "evt_0193f3a2-7c1e-7cc0-9f3b-1b1f0d7e2a11", `{"id":"evt_1","type":"invitation.accepted","data":{"user_id":"u_1"}}`},
		{"empty body", "evt_2", ``},
		{"unicode and newlines", "evt_3", "{\"note\":\"h\u00e9llo\\n\u2603\"}\n"},
		{"dots in the body", "evt_4", `{"a":"1.2.3"}`},
	} {
		secret := secrets.For("ep_"+c.name, 1)
		h, err := Headers([]string{secret}, c.id, ts, []byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Lower-case names as the specification writes them; http.Header is case-insensitive.
		id, stamp, sig := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
		if id != c.id || stamp != "1767225600" {
			t.Fatalf("%s: webhook-id %q, webhook-timestamp %q", c.name, id, stamp)
		}
		if strings.Count(sig, "v1,") != 1 || strings.Contains(sig, " ") {
			t.Fatalf("%s: one secret, signature header %q", c.name, sig)
		}
		if !specVerify(t, secret, id, stamp, []byte(c.body), sig) {
			t.Fatalf("%s: signature %q does not verify independently", c.name, sig)
		}
		if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "onboarding-webhooks/1" {
			t.Fatalf("%s: headers %v", c.name, h)
		}
		// Any change to what is signed breaks it.
		for what, args := range map[string][3]string{
			"id":        {id + "x", stamp, c.body},
			"timestamp": {id, "1767225601", c.body},
			"body":      {id, stamp, c.body + " "},
		} {
			if specVerify(t, secret, args[0], args[1], []byte(args[2]), sig) {
				t.Errorf("%s: a changed %s still verifies", c.name, what)
			}
		}
		if specVerify(t, secrets.For("ep_"+c.name, 2), id, stamp, []byte(c.body), sig) {
			t.Errorf("%s: the next version's secret verifies a signature it did not make", c.name)
		}
	}
}

func TestSignRotation(t *testing.T) {
	s := NewSecrets([]byte("a-token-secret-of-at-least-32-bytes-long"))
	current, previous := s.For("ep_1", 2), s.For("ep_1", 1)
	ts := time.Unix(1767225600, 0)
	body := []byte(`{"type":"invitation.sent"}`)
	sig, err := Sign([]string{current, previous}, "evt_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	entries := strings.Split(sig, " ")
	if len(entries) != 2 || entries[0] == entries[1] {
		t.Fatalf("two secrets, header %q", sig)
	}
	for i, secret := range []string{current, previous} {
		if !specVerify(t, secret, "evt_1", "1767225600", body, entries[i]) {
			t.Errorf("signature %d (%q) does not verify with its secret", i+1, entries[i])
		}
		if specVerify(t, secret, "evt_1", "1767225600", body, entries[1-i]) {
			t.Errorf("signature %d verifies with the other secret", 2-i)
		}
		// A consumer holding either secret accepts the whole header.
		if !specVerify(t, secret, "evt_1", "1767225600", body, sig) {
			t.Errorf("the header does not verify with secret %d", i+1)
		}
	}
	// The same secret twice signs once.
	if one, _ := Sign([]string{current, current}, "evt_1", ts, body); one != entries[0] {
		t.Errorf("duplicate secret: %q", one)
	}
}

func TestSignRefuses(t *testing.T) {
	good := NewSecrets([]byte("a-token-secret-of-at-least-32-bytes-long")).For("ep_1", 1)
	ts := time.Unix(1767225600, 0)
	for _, c := range []struct {
		name    string
		secrets []string
		id      string
		ts      time.Time
	}{
		{"no secret", nil, "evt_1", ts},
		{"bad secret", []string{"whsec_short"}, "evt_1", ts},
		{"one bad secret of two", []string{good, "not-a-secret"}, "evt_1", ts},
		{"empty id", []string{good}, "", ts},
		{"id with a dot", []string{good}, "evt.1", ts},
		{"id with a space", []string{good}, "evt 1", ts},
		{"id with a newline", []string{good}, "evt_1\r\nX-Injected: 1", ts},
		{"id not ASCII", []string{good}, "evt_\u00e9", ts},
		{"id too long", []string{good}, strings.Repeat("a", 257), ts},
		{"zero time", []string{good}, "evt_1", time.Time{}},
		{"before 1970", []string{good}, "evt_1", time.Unix(-5, 0)},
	} {
		if sig, err := Sign(c.secrets, c.id, c.ts, []byte("{}")); err == nil {
			t.Errorf("%s: Sign = %q, want an error", c.name, sig)
		}
		if h, err := Headers(c.secrets, c.id, c.ts, []byte("{}")); err == nil || h != nil {
			t.Errorf("%s: Headers = %v, %v; want an error", c.name, h, err)
		}
	}
}
