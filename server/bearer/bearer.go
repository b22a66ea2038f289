// Package bearer reads the token of an RFC 6750 `Authorization: Bearer <token>` header, for the
// API's tokens and the codec endpoint's alike.
package bearer

import "strings"

// Token extracts the token of an RFC 6750 Authorization header. Tokens are bounded and limited
// to the b64token characters before anything looks them up.
func Token(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > 512 {
		return "", false
	}
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/=", r)) {
			return "", false
		}
	}
	return token, true
}
