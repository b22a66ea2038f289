package password

import (
	"context"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for pw, want := range map[string]string{
		"Correct-Horse-42":        "",
		"Abcdefghij1":             "",
		"Abcdefghij!":             "",
		"ÄbcdefghijK9":            "",
		"Short1!":                 "at least 10 characters",
		"alllowercase1":           "an upper-case letter",
		"ALLUPPERCASE1":           "a lower-case letter",
		"NoDigitsOrSymbols":       "a digit or symbol",
		"nodigitsorsymbolsorcap":  "an upper-case letter, a digit or symbol",
		strings.Repeat("Aa1", 50): "at most 128 characters",
		"Abcdefghij1\xff":         "valid UTF-8",
	} {
		got := Check(pw)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("Check(%q) = %q, want %q", pw, got, want)
		}
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(2)
	hash, err := h.Hash(context.Background(), "Correct-Horse-42")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, "Correct-Horse-42") {
		t.Fatalf("hash %q is not an argon2id PHC string at OWASP parameters", hash)
	}
	if ok, err := Verify(hash, "Correct-Horse-42"); !ok || err != nil {
		t.Fatalf("Verify(right password) = %v, %v", ok, err)
	}
	if ok, _ := Verify(hash, "Correct-Horse-43"); ok {
		t.Fatal("Verify accepted a wrong password")
	}
	again, _ := h.Hash(context.Background(), "Correct-Horse-42")
	if again == hash {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestHashHonoursContext(t *testing.T) {
	h := NewHasher(1)
	h.slots <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "Correct-Horse-42"); err == nil {
		t.Fatal("Hash went ahead without a free slot and with a cancelled context")
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(1)
	for b.Loop() {
		if _, err := h.Hash(context.Background(), "Correct-Horse-42"); err != nil {
			b.Fatal(err)
		}
	}
}
