package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// verify checks the webhook-signature header as the specification describes it: the header is
// a space-separated list of "version,signature"; a "v1" signature is the base64 of the
// HMAC-SHA256, under a secret's key, of "{webhook-id}.{webhook-timestamp}.{body}", compared in
// constant time; other versions are skipped. It returns the indexes of the keys that matched a
// signature and how many signatures the header held.
func verify(keys [][]byte, id, stamp string, body []byte, header string) (matched []int, count int) {
	var sigs [][]byte
	for _, entry := range strings.Fields(header) {
		count++
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil {
			sigs = append(sigs, sig)
		}
	}
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(stamp))
		mac.Write([]byte{'.'})
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				matched = append(matched, i)
				break
			}
		}
	}
	return matched, count
}

// decodeSecret returns the key of a "whsec_<base64>" secret.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`not a "whsec_" secret`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("not base64 after whsec_: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("empty key")
	}
	return key, nil
}
