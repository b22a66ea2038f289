package api

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/onboarding-service/onboarding/server/problem"
)

// Field limits, shared by the handlers and documented in openapi.yaml.
const (
	maxNameRunes   = 100 // names of people, accounts, subscriptions, groups, applications
	maxRoleRunes   = 64
	maxEmailBytes  = 254 // RFC 5321's limit on a forward path
	maxLocalBytes  = 64
	maxPhoneBytes  = 32
	maxSeats       = 1_000_000
	maxIdemKeyLen  = 255
	maxFilterBytes = 254
)

// fieldChecker collects field errors, so one answer names every bad field.
type fieldChecker struct {
	errs []problem.FieldError
}

func (v *fieldChecker) add(field, message string) {
	v.errs = append(v.errs, problem.FieldError{Field: field, Message: message})
}

// problem returns the validation_failed problem, or nil when every field was good.
func (v *fieldChecker) problem() *problem.Problem {
	if len(v.errs) == 0 {
		return nil
	}
	return problem.Invalid(v.errs...)
}

// text checks a single-line text field and returns it trimmed of surrounding white space.
func (v *fieldChecker) text(field, value string, required bool, maxRunes int) string {
	value = strings.TrimSpace(value)
	switch {
	case value == "" && required:
		v.add(field, "is required")
	case utf8.RuneCountInString(value) > maxRunes:
		v.add(field, "must have at most "+strconv.Itoa(maxRunes)+" characters")
	case !plainText(value):
		v.add(field, "must not contain control, formatting or invalid characters")
	}
	return value
}

// plainText reports whether s is valid single-line text: no control characters (which covers
// NUL, CR and LF), no line or paragraph separators, no bidirectional overrides (they disguise
// text in emails) and no replacement characters (left by invalid UTF-8 or lone surrogates).
func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == utf8.RuneError, r == '\u2028', r == '\u2029':
			return false
		case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\u200E', r == '\u200F':
			return false
		}
	}
	return true
}

// email checks an email address field: the address alone (no display name, comment or angle
// brackets), as net/mail parses it, within RFC 5321's lengths, with a domain name.
func (v *fieldChecker) email(field, value string, required bool) string {
	value = strings.TrimSpace(value)
	if value == "" {
		if required {
			v.add(field, "is required")
		}
		return value
	}
	if msg := emailProblem(value); msg != "" {
		v.add(field, msg)
	}
	return value
}

// emailProblem says what is wrong with an address, or "" when it is acceptable.
func emailProblem(value string) string {
	if len(value) > maxEmailBytes {
		return "must have at most " + strconv.Itoa(maxEmailBytes) + " characters"
	}
	if !plainText(value) {
		return "must not contain control, formatting or invalid characters"
	}
	addr, err := mail.ParseAddress(value)
	if err != nil {
		return "must be an email address such as name@example.com"
	}
	if addr.Name != "" || addr.Address != value {
		return "must be the address alone, without a display name, comment or angle brackets"
	}
	at := strings.LastIndexByte(value, '@')
	local, domain := value[:at], value[at+1:]
	if len(local) > maxLocalBytes {
		return "must have at most " + strconv.Itoa(maxLocalBytes) + " characters before the @"
	}
	if !domainName(domain) {
		return "must have a domain name after the @"
	}
	return ""
}

// domainName reports whether s is a host name: dot-separated labels of letters (any script,
// for internationalised domains), digits and inner hyphens. IP literals are refused.
func domainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	return true
}

// phone checks an optional phone number: digits with the usual separators and an optional
// leading +.
func (v *fieldChecker) phone(field, value string) string {
	value = strings.TrimSpace(value)
	if value == "" {
		return value
	}
	digits := 0
	ok := len(value) <= maxPhoneBytes
	for i, r := range value {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			ok = false
		}
	}
	if !ok || digits < 3 {
		v.add(field, "must be a phone number such as +1 555 0100 (digits, spaces, + - . ( ), at most 32 characters)")
	}
	return value
}

// id checks a UUID field in its canonical 36-character form; it returns nil when the field
// is absent or bad.
func (v *fieldChecker) id(field, value string, required bool) *uuid.UUID {
	if value == "" {
		if required {
			v.add(field, "is required")
		}
		return nil
	}
	id, ok := parseID(value)
	if !ok {
		v.add(field, "must be a UUID such as 0190c1a2-3b4c-7d5e-8f60-123456789abc")
		return nil
	}
	return &id
}

// parseID parses a UUID in canonical form only (uuid.Parse also takes braces, urn: and bare
// hex, which would give one id several spellings in URLs and idempotency hashes).
func parseID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}
