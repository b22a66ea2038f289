package bearer

import (
	"strings"
	"testing"
)

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer onb_0123", "bearer  x", "Basic abc", "Bearer ", "Bearer a\"b", "Bearer " + strings.Repeat("a", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := Token(header)
		if !ok {
			return
		}
		if tok == "" || len(tok) > 512 || strings.ContainsAny(tok, " \t\r\n\"<>") {
			t.Fatalf("accepted %q from %q", tok, header)
		}
	})
}
