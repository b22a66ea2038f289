// Package password checks the password policy and hashes passwords with argon2id.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Policy limits.
const (
	MinLength = 10
	// MaxLength bounds the work a hash costs; long passphrases are welcome up to it.
	MaxLength = 128
)

// PolicyText describes the policy in the words shown to invitees.
const PolicyText = "at least 10 characters, with an upper-case letter, a lower-case letter, and a digit or symbol"

// Check returns a message naming what the password lacks, or "" when it meets the policy.
func Check(pw string) string {
	if !utf8.ValidString(pw) {
		return "password must be valid UTF-8 text"
	}
	n := utf8.RuneCountInString(pw)
	if n < MinLength {
		return fmt.Sprintf("password must have at least %d characters", MinLength)
	}
	if n > MaxLength {
		return fmt.Sprintf("password must have at most %d characters", MaxLength)
	}
	var upper, lower, digitOrSymbol bool
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r):
			digitOrSymbol = true
		}
	}
	var missing []string
	if !upper {
		missing = append(missing, "an upper-case letter")
	}
	if !lower {
		missing = append(missing, "a lower-case letter")
	}
	if !digitOrSymbol {
		missing = append(missing, "a digit or symbol")
	}
	if len(missing) > 0 {
		return "password must contain " + strings.Join(missing, ", ")
	}
	if Common(pw) {
		return "password is one of the most commonly used passwords, which attackers try first; choose another"
	}
	return ""
}

// argon2id parameters: OWASP's recommended m=19 MiB, t=2, p=1.
const (
	memoryKiB = 19 * 1024
	timeCost  = 2
	threads   = 1
	keyLen    = 32
	saltLen   = 16
)

// Hasher hashes passwords, at most a few at once so a burst of accepts cannot exhaust memory.
type Hasher struct {
	slots chan struct{}
}

// NewHasher allows maxConcurrent hashes at once.
func NewHasher(maxConcurrent int) *Hasher {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	return &Hasher{slots: make(chan struct{}, maxConcurrent)}
}

// Hash returns an encoded argon2id hash (PHC string format).
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, timeCost, memoryKiB, threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, timeCost, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify is the package's Verify within the hasher's bound: verifying costs what hashing does.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (bool, error) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return Verify(encoded, pw)
}

// Verify reports whether pw matches an encoded hash made by Hash.
func Verify(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("not an argon2id hash")
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, err
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, err
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, err
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
