package invitetoken

import (
	"testing"

	"github.com/google/uuid"
)

// TestRotationSteps walks the documented rotation (docs/security.md): add the new secret with
// the old one as previous, wait out the links' lifetime, then drop the old one.
func TestRotationSteps(t *testing.T) {
	s1 := []byte("rotation-secret-number-one-000000001")
	s2 := []byte("rotation-secret-number-two-000000002")
	s3 := []byte("rotation-secret-number-three-0000003")
	id := uuid.New()
	before := NewSigner(s1).Sign(id, 1)

	// Step 1: s2 signs, s1 still verifies. New links differ and verify too.
	step1 := NewSigner(s2, s1)
	after := step1.Sign(id, 1)
	if after == before {
		t.Fatal("the rotated secret signs like the old one")
	}
	for _, tok := range []string{before, after} {
		if gotID, gen, err := step1.Verify(tok); err != nil || gotID != id || gen != 1 {
			t.Fatalf("during the rotation %q: %s %d %v", tok, gotID, gen, err)
		}
	}
	// A second rotation before the first is finished: both older secrets verify.
	step1b := NewSigner(s3, s2, s1)
	for _, tok := range []string{before, after, step1b.Sign(id, 1)} {
		if _, _, err := step1b.Verify(tok); err != nil {
			t.Fatalf("two previous secrets: %v", err)
		}
	}
	// Step 2: s1 removed. Its links answer exactly like a forgery; s2's keep working.
	step2 := NewSigner(s2)
	if _, _, err := step2.Verify(before); err != ErrInvalid {
		t.Fatalf("a link of the removed secret: err = %v, want ErrInvalid", err)
	}
	if _, _, err := step2.Verify(after); err != nil {
		t.Fatalf("a link of the current secret: %v", err)
	}
}
