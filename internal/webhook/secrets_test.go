package webhook

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSecretsDeterministicAndDistinct(t *testing.T) {
	s := NewSecrets([]byte("0123456789abcdef0123456789abcdef-token-secret"))
	again := NewSecrets([]byte("0123456789abcdef0123456789abcdef-token-secret"))
	other := NewSecrets([]byte("another-token-secret-of-32-bytes-or-more"))

	a1 := s.For("ep_1", 1)
	if a1 != again.For("ep_1", 1) {
		t.Fatal("the same key, endpoint and version gave two secrets")
	}
	seen := map[string]string{}
	for _, c := range []struct {
		name string
		got  string
	}{
		{"ep_1 v1", a1},
		{"ep_1 v2", s.For("ep_1", 2)},
		{"ep_2 v1", s.For("ep_2", 1)},
		{"ep_1 v12", s.For("ep_1", 12)},
		{"ep_11 v2", s.For("ep_11", 2)}, // "ep_11|2" against "ep_1|12": the separator keeps them apart
		{"ep_1|1 v1", s.For("ep_1|1", 1)},
		{"other key ep_1 v1", other.For("ep_1", 1)},
	} {
		if prev, ok := seen[c.got]; ok {
			t.Errorf("%s and %s have the same secret", c.name, prev)
		}
		seen[c.got] = c.name

		b64, ok := strings.CutPrefix(c.got, "whsec_")
		if !ok {
			t.Fatalf("%s: %q lacks the whsec_ prefix", c.name, c.got)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(raw) != 32 {
			t.Fatalf("%s: %q is not the standard base64 of 32 bytes (%d, %v)", c.name, c.got, len(raw), err)
		}
		if key, err := ParseSecret(c.got); err != nil || string(key) != string(raw) {
			t.Fatalf("%s: ParseSecret = %x, %v", c.name, key, err)
		}
	}
	// The derivation is keyed in a domain of its own: the endpoint secret is not the plain
	// HMAC of the endpoint under TOKEN_SECRET (which other features could be made to compute).
	if strings.Contains(a1, base64.StdEncoding.EncodeToString([]byte("ep_1|1"))) {
		t.Fatal("secret leaks its input")
	}
}

func TestSecretsRefuseEmptyKey(t *testing.T) {
	for name, f := range map[string]func(){
		"NewSecrets(nil)":   func() { NewSecrets(nil) },
		"zero Secrets.For":  func() { Secrets{}.For("ep_1", 1) },
		"NewSecrets(empty)": func() { NewSecrets([]byte{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestParseSecret(t *testing.T) {
	b24 := base64.StdEncoding.EncodeToString(make([]byte, 24))
	b64 := base64.StdEncoding.EncodeToString(make([]byte, 64))
	for _, c := range []struct {
		in   string
		n    int // key length, 0 = refused
		name string
	}{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 24, "the specification libraries' test secret"},
		{"whsec_" + b24, 24, "24 bytes"},
		{"whsec_" + b64, 64, "64 bytes"},
		{"whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)), 32, "unpadded"},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), 0, "too short"},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), 0, "too long"},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0, "no prefix"},
		{"whsec_", 0, "prefix only"},
		{"", 0, "empty"},
		{"whsec_not base64 at all!!!!!!!!!!!", 0, "not base64"},
		{"whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}), 0, "URL-safe alphabet"},
		{"whsk_" + b24, 0, "an asymmetric secret key prefix"},
	} {
		key, err := ParseSecret(c.in)
		switch {
		case c.n == 0 && (err == nil || !errors.Is(err, ErrSecret)):
			t.Errorf("%s: ParseSecret(%q) = %x, %v; want ErrSecret", c.name, c.in, key, err)
		case c.n != 0 && (err != nil || len(key) != c.n):
			t.Errorf("%s: ParseSecret(%q) = %d bytes, %v; want %d", c.name, c.in, len(key), err, c.n)
		}
	}
}
