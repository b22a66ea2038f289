package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

func key(id string, b byte) Key {
	k := Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = b + byte(i)
	}
	return k
}

func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripHidesEverything(t *testing.T) {
	c := New(key("2026-01", 1))
	in := []*commonpb.Payload{payload(t, map[string]string{"email": "jane@acme.test"}), payload(t, nil), payload(t, []byte("raw"))}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range enc {
		if !Encrypted(p) || string(p.Metadata[MetadataKeyID]) != "2026-01" || string(p.Metadata[MetadataCipher]) != Cipher {
			t.Fatalf("payload %d metadata %v", i, p.Metadata)
		}
		if bytes.Contains(p.Data, []byte("jane")) || bytes.Contains(p.Data, []byte("json/plain")) {
			t.Fatalf("payload %d shows its plaintext", i)
		}
		if len(p.Metadata) != 3 {
			t.Fatalf("payload %d keeps the original metadata: %v", i, p.Metadata)
		}
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], dec[i]) {
			t.Fatalf("payload %d: %v, want %v", i, dec[i], in[i])
		}
	}
	// Two seals of the same value differ (random nonces).
	again, _ := c.Encode(in[:1])
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Fatal("the same plaintext sealed twice gave the same ciphertext")
	}
}

func TestRotation(t *testing.T) {
	old, cur := key("old", 1), key("new", 9)
	sealedOld, _ := New(old).Encode([]*commonpb.Payload{payload(t, "before")})
	rotated := New(cur, old)
	if got, err := rotated.Decode(sealedOld); err != nil || !proto.Equal(got[0], payload(t, "before")) {
		t.Fatalf("rotated codec: %v %v", got, err)
	}
	sealedNew, _ := rotated.Encode([]*commonpb.Payload{payload(t, "after")})
	if string(sealedNew[0].Metadata[MetadataKeyID]) != "new" {
		t.Fatal("a rotated codec seals with the old key")
	}
	// Once the old key is removed, its payloads no longer open.
	if _, err := New(cur).Decode(sealedOld); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestTamperingIsRefused(t *testing.T) {
	c := New(key("a", 1), key("b", 2))
	sealed, _ := c.Encode([]*commonpb.Payload{payload(t, "x")})
	flip := proto.Clone(sealed[0]).(*commonpb.Payload)
	flip.Data[len(flip.Data)-1] ^= 1
	swapped := proto.Clone(sealed[0]).(*commonpb.Payload)
	swapped.Metadata[MetadataKeyID] = []byte("b") // same codec, other key: the id is authenticated
	short := proto.Clone(sealed[0]).(*commonpb.Payload)
	short.Data = short.Data[:5]
	otherCipher := proto.Clone(sealed[0]).(*commonpb.Payload)
	otherCipher.Metadata[MetadataCipher] = []byte("ROT13")
	for name, p := range map[string]*commonpb.Payload{"flipped": flip, "key id swapped": swapped, "truncated": short, "cipher": otherCipher} {
		if _, err := c.Decode([]*commonpb.Payload{p}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	p := payload(t, "written before encryption")
	got, err := New(key("a", 1)).Decode([]*commonpb.Payload{p})
	if err != nil || got[0] != p {
		t.Fatalf("%v %v", got, err)
	}
}

func TestDataConverter(t *testing.T) {
	dc := DataConverter(New(key("a", 1)))
	p, err := dc.ToPayload(map[string]string{"email": "jane@acme.test"})
	if err != nil || !Encrypted(p) {
		t.Fatalf("%v %v", p, err)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["email"] != "jane@acme.test" {
		t.Fatalf("%v %v", back, err)
	}
	if s := dc.ToString(p); strings.Contains(s, "error") {
		t.Fatalf("ToString: %s", s)
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32) // encodes with '+' / '-' depending on the alphabet
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), " " + base64.RawURLEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := ParseKey(s)
		if err != nil || !bytes.Equal(k[:], raw) {
			t.Errorf("ParseKey(%q) = %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 1))} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestKeyIDs(t *testing.T) {
	a, b := key("", 1), key("", 2)
	if DeriveKeyID(a.Secret) == DeriveKeyID(b.Secret) || DeriveKeyID(a.Secret) != DeriveKeyID(a.Secret) {
		t.Fatal("derived ids are not stable fingerprints")
	}
	if msg := CheckKeyID(DeriveKeyID(a.Secret)); msg != "" {
		t.Fatalf("a derived id is refused: %s", msg)
	}
	for _, bad := range []string{"", strings.Repeat("k", 65), "with space", "a:b", "é"} {
		if CheckKeyID(bad) == "" {
			t.Errorf("CheckKeyID(%q) accepted", bad)
		}
	}
}

// FuzzDecode opens arbitrary data claiming to be sealed: it must refuse, never panic, and never
// return something it did not authenticate.
func FuzzDecode(f *testing.F) {
	c := New(key("fuzz", 3))
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}
	sealed, _ := c.Encode([]*commonpb.Payload{plain})
	f.Add("fuzz", sealed[0].Data)
	f.Add("fuzz", []byte{})
	f.Add("other", sealed[0].Data)
	f.Add("", []byte("0123456789012345678901234567890"))
	f.Fuzz(func(t *testing.T, keyID string, data []byte) {
		p := &commonpb.Payload{Metadata: map[string][]byte{
			converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(keyID)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{p})
		// Only a genuine seal opens (seeds are sealed with random nonces, so compare what opens,
		// not the ciphertext); GCM forgeries are out of a fuzzer's reach.
		if err == nil && (keyID != "fuzz" || !proto.Equal(out[0], plain)) {
			t.Fatalf("opened a payload that was not sealed: %v", out)
		}
	})
}
