package password

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCommonPasswordsRefused(t *testing.T) {
	if len(common) < 300 {
		t.Fatalf("the shipped list has %d entries, want the top few hundred", len(common))
	}
	// Each meets the character classes of the policy, so only the list refuses it.
	for _, pw := range []string{
		"Password123!", "Password2024", "P@ssw0rd2024!", "Passw0rd!!", "Welcome2026!", "Qwerty12345!",
		"Summer2024!", "Iloveyou123!", "Letmein1234!", "1Loveyou2024", "Trustno1!!!", "4Dmin12345!",
		"Football#1!", "Monkey123456", "ChangeMe2026!", "Qwertyuiop1!", "1q2w3e4r5T", "Superman1234",
	} {
		if msg := Check(pw); !strings.Contains(msg, "commonly used") {
			t.Errorf("Check(%q) = %q, want it refused as common", pw, msg)
		}
	}
	for _, pw := range []string{
		"Correct-Horse-42", "Str0ng-Password", "Sup3rSecret!pw", "Ää1ÄäÄä1Äx", "Tangerine-Kite-77",
		"Abcdefghij1", "My dog Rex is 7 years old!",
	} {
		if msg := Check(pw); msg != "" {
			t.Errorf("Check(%q) = %q, want it accepted", pw, msg)
		}
	}
}

func TestLongPassphrasesAccepted(t *testing.T) {
	for _, n := range []int{64, 100, MaxLength} {
		pw := "Aa1-" + strings.Repeat("x", n-4)
		if utf8.RuneCountInString(pw) != n {
			t.Fatalf("built %d runes", utf8.RuneCountInString(pw))
		}
		if msg := Check(pw); msg != "" {
			t.Errorf("a %d-character passphrase: %q", n, msg)
		}
	}
	// Counted in characters, not bytes: 64 multi-byte characters pass too.
	if msg := Check("Ä1" + strings.Repeat("ä", 62)); msg != "" {
		t.Errorf("64 multi-byte characters: %q", msg)
	}
}

// FuzzCheck: the policy never panics and never accepts what breaks its own rules.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"Correct-Horse-42", "P@ssw0rd2024!", "", "\xff", strings.Repeat("Aa1", 50), "Ää1ÄäÄä1Äx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if Check(pw) != "" {
			return
		}
		n := utf8.RuneCountInString(pw)
		if !utf8.ValidString(pw) || n < MinLength || n > MaxLength || Common(pw) {
			t.Fatalf("accepted %q", pw)
		}
	})
}
