package pages

import (
	"strings"
	"testing"
)

func TestPageCSP(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"default-src 'none'", "style-src 'self'", "script-src 'self'", "img-src 'self' data:",
		"form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP %q lacks %q", CSP, want)
		}
	}
}
