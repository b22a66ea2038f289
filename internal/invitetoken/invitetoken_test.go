package invitetoken

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	s := NewSigner([]byte("a-secret-of-at-least-thirty-two-bytes"))
	id := uuid.New()
	for _, gen := range []int{1, 2, 7, 1 << 20} {
		tok := s.Sign(id, gen)
		gotID, gotGen, err := s.Verify(tok)
		if err != nil || gotID != id || gotGen != gen {
			t.Fatalf("Verify(Sign(%s, %d)) = %s, %d, %v", id, gen, gotID, gotGen, err)
		}
	}
	if s.Sign(id, 1) != s.Sign(id, 1) {
		t.Fatal("signing is not deterministic: a resend would change the link")
	}
	if s.Sign(id, 1) == s.Sign(id, 2) {
		t.Fatal("a new generation kept the old link")
	}
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	s := NewSigner([]byte("a-secret-of-at-least-thirty-two-bytes"))
	other := NewSigner([]byte("another-deployment-secret-0123456789"))
	good := s.Sign(uuid.New(), 1)
	flipped := []byte(good)
	if flipped[30] == 'A' {
		flipped[30] = 'B'
	} else {
		flipped[30] = 'A'
	}
	for name, tok := range map[string]string{
		"empty":            "",
		"truncated":        good[:len(good)-1],
		"extended":         good + "A",
		"flipped":          string(flipped),
		"other deployment": other.Sign(uuid.New(), 1),
		"not base64":       strings.Repeat("*", len(good)),
		"padding":          good[:len(good)-2] + "==",
	} {
		if _, _, err := s.Verify(tok); err != ErrInvalid {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestPreviousSecretStillVerifies(t *testing.T) {
	old := []byte("the-secret-before-the-rotation-0001")
	id := uuid.New()
	tok := NewSigner(old).Sign(id, 3)
	rotated := NewSigner([]byte("the-secret-after-the-rotation-00002"), old)
	if gotID, gen, err := rotated.Verify(tok); err != nil || gotID != id || gen != 3 {
		t.Fatalf("rotated signer: %s %d %v", gotID, gen, err)
	}
	if _, _, err := NewSigner([]byte("the-secret-after-the-rotation-00002")).Verify(tok); err != ErrInvalid {
		t.Fatalf("without the previous secret: err = %v, want ErrInvalid", err)
	}
}

func TestLinks(t *testing.T) {
	s := NewSigner([]byte("a-secret-of-at-least-thirty-two-bytes"))
	id := uuid.New()
	l := Links{Signer: s, Template: "https://portal.example/join?t={token}&src=email"}
	want := "https://portal.example/join?t=" + s.Sign(id, 2) + "&src=email"
	if got := l.InviteURL(id, 2); got != want {
		t.Fatalf("InviteURL = %q, want %q", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	s := NewSigner([]byte("a-secret-of-at-least-thirty-two-bytes"))
	f.Add(s.Sign(uuid.New(), 1))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, tok string) {
		id, gen, err := s.Verify(tok)
		if err == nil && s.Sign(id, gen) != tok {
			t.Fatalf("accepted %q, which is not the canonical token of %s/%d", tok, id, gen)
		}
	})
}

func TestOneSpellingPerToken(t *testing.T) {
	s := NewSigner([]byte("a-secret-of-at-least-thirty-two-bytes"))
	good := s.Sign(uuid.New(), 1)
	// The last character carries 2 unused bits: other spellings must not verify.
	last := good[len(good)-1]
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		if byte(c) == last {
			continue
		}
		if _, _, err := s.Verify(good[:len(good)-1] + string(c)); err == nil {
			t.Fatalf("%q verifies as well as %q", good[:len(good)-1]+string(c), good)
		}
	}
}

// A reset token and an invite token of the same id and generation differ, and neither verifies
// as the other: a leaked invite link cannot reset a password, nor a reset link accept.
func TestPasswordResetTokensHaveTheirOwnDomain(t *testing.T) {
	invite := NewSigner([]byte("0123456789abcdef0123456789abcdef"), []byte("old-secret-old-secret-old-secret"))
	reset := invite.PasswordReset()
	id := uuid.New()
	it, rt := invite.Sign(id, 3), reset.Sign(id, 3)
	if it == rt {
		t.Fatal("an invite and a reset token of the same id and generation are equal")
	}
	if _, _, err := reset.Verify(it); err == nil {
		t.Error("an invite token verifies as a reset token")
	}
	if _, _, err := invite.Verify(rt); err == nil {
		t.Error("a reset token verifies as an invite token")
	}
	gotID, gen, err := reset.Verify(rt)
	if err != nil || gotID != id || gen != 3 {
		t.Fatalf("reset.Verify = %v, %d, %v", gotID, gen, err)
	}
	// Signed under the previous secret, a reset token still verifies (rotation), in its domain.
	old := NewSigner([]byte("old-secret-old-secret-old-secret")).PasswordReset()
	if _, _, err := reset.Verify(old.Sign(id, 1)); err != nil {
		t.Errorf("a reset token of the previous secret: %v", err)
	}
}
