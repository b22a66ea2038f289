package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Password-reset requests are limited per client address (RATE_LIMIT_PASSWORD_RESET_IP)
// whatever addresses they name: a third request from one client within the hour is 429 with
// the time to the next token, and another client goes on.
func TestPasswordResetRateLimitPerClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.limited(rl(0), rl(0), rl(0))
	h.srv.resets.ClientLimit = ratelimit.New(config.RateLimit{Count: 2, Per: time.Hour})
	body := func(i int) string { return fmt.Sprintf(`{"email":%q}`, uniqueEmail(fmt.Sprintf("reset%d", i))) }
	for i := range 2 {
		if w := h.from("198.51.100.7:1", "POST", "/v1/password-resets", body(i), "Content-Type", "application/json"); w.Code != 202 {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := h.from("198.51.100.7:1", "POST", "/v1/password-resets", body(3), "Content-Type", "application/json")
	expectRateLimited(t, w, 1800)
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	if w := h.from("198.51.100.8:1", "POST", "/v1/password-resets", body(4), "Content-Type", "application/json"); w.Code != 202 {
		t.Fatalf("another client: %d %s", w.Code, w.Body)
	}
}

// Failed sign-ins are limited per client address (RATE_LIMIT_SIGN_IN_IP) across users: after
// two failures from one client, a third user's sign-in from it is 429 although that user has
// failed nothing, while the same attempt from another client is judged (422).
func TestSignInRateLimitPerClient(t *testing.T) {
	t.Parallel()
	h, elsewhere := newHarness(t), newHarness(t)
	h.limited(rl(0), rl(0), rl(0))
	h.srv.invitee.SignInUser = ratelimit.New(config.RateLimit{})
	h.srv.invitee.SignInClient = ratelimit.New(config.RateLimit{Count: 2, Per: 15 * time.Minute})
	var tokens []string
	for i := range 3 {
		email := uniqueEmail(fmt.Sprintf("signin%d", i))
		elsewhere.member(email) // an existing user, with a password of their own
		tokens = append(tokens, h.token(h.pending(email)))
	}
	wrong := func(addr, token string) int {
		return h.from(addr, "POST", "/v1/invitations/accept",
			fmt.Sprintf(`{"token":%q,"password":"Not-Their-Password-1","accept_terms":true}`, token), "Content-Type", "application/json").Code
	}
	for i := range 2 {
		if code := wrong("198.51.100.9:1", tokens[i]); code != 422 {
			t.Fatalf("failure %d: %d, want 422", i+1, code)
		}
	}
	w := h.from("198.51.100.9:1", "POST", "/v1/invitations/accept",
		fmt.Sprintf(`{"token":%q,"password":"Str0ng-Password","accept_terms":true}`, tokens[2]), "Content-Type", "application/json")
	expectRateLimited(t, w, 450)
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	if code := wrong("198.51.100.10:1", tokens[2]); code != 422 {
		t.Fatalf("another client's attempt: %d, want 422", code)
	}
}
