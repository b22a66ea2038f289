package webhooktest

import (
	"strings"
	"testing"
)

// The test vector the Standard Webhooks libraries share: the receiver's own verification
// must accept it, and refuse any change to it.
func TestVerifySpecVector(t *testing.T) {
	key, err := decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const (
		id    = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		stamp = "1614265330"
		body  = `{"test": 2432232314}`
		sig   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	other := []byte("another-key-of-some-length")
	if m, n := verify([][]byte{other, key}, id, stamp, []byte(body), sig); len(m) != 1 || m[0] != 1 || n != 1 {
		t.Fatalf("vector: matched %v of %d", m, n)
	}
	for name, c := range map[string][4]string{
		"id":               {id + "x", stamp, body, sig},
		"timestamp":        {id, "1614265331", body, sig},
		"body":             {id, stamp, body + "\n", sig},
		"version":          {id, stamp, body, strings.Replace(sig, "v1,", "v2,", 1)},
		"signature":        {id, stamp, body, strings.Replace(sig, "g0h", "g1h", 1)},
		"no comma":         {id, stamp, body, strings.Replace(sig, ",", "", 1)},
		"not base64":       {id, stamp, body, "v1,***"},
		"asymmetric entry": {id, stamp, body, "v1a," + sig[3:]},
	} {
		if m, _ := verify([][]byte{key}, c[0], c[1], []byte(c[2]), c[3]); len(m) != 0 {
			t.Errorf("changed %s still verifies", name)
		}
	}
	if m, n := verify([][]byte{key}, id, stamp, []byte(body), "v1a,AAAA v1,bm9wZQ== "+sig); len(m) != 1 || n != 3 {
		t.Fatalf("the matching signature among others: matched %v of %d", m, n)
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, bad := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_***", "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if _, err := decodeSecret(bad); err == nil {
			t.Errorf("decodeSecret(%q) took it", bad)
		}
	}
}
