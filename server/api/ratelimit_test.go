package api

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/config"
)

// limited gives the harness's server the limits of cfg (the per-link one is its invitee
// operations') and a clock the test moves.
func (h *harness) limited(invIP, invToken, create config.RateLimit) *time.Time {
	limit := sharedLimits(h.deps())
	h.srv.limits.inviteeIP = limit(invIP, "invitee-ip")
	h.srv.limits.invitationCreate = limit(create, "invitations-account")
	h.srv.invitee.LinkLimit = limit(invToken, "invitee-link")
	h.srv.limits.unauthorizedIP = nil // as before: these tests are about the three above
	now := time.Now()
	h.srv.now = func() time.Time { return now }
	return &now
}

// from sends a request from a client address.
func (h *harness) from(addr, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = addr
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return h.send(h.srv, req)
}

func expectRateLimited(t *testing.T, w *httptest.ResponseRecorder, retryAfter int) {
	t.Helper()
	if w.Code != 429 {
		t.Fatalf("status %d, want 429; body %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Fatalf("Retry-After %q, want %d", got, retryAfter)
	}
}

func TestInviteeRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := h.limited(config.RateLimit{Count: 3, Per: time.Minute}, config.RateLimit{}, config.RateLimit{})
	preview := "/v1/invitations/preview?token=forged"
	for i := range 3 {
		decodeProblem(t, h.from("198.51.100.7:1111", "GET", preview, ""), 404, contract.CodeTokenInvalid)
		_ = i
	}
	w := h.from("198.51.100.7:2222", "GET", preview, "")
	expectRateLimited(t, w, 20) // 3 per minute: one more every 20 s
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	// The budget is the address's across every invitee route, the JSON and the page ones.
	decodeProblem(t, h.from("198.51.100.7:1", "POST", "/v1/invitations/decline", `{"token":"x"}`, "Content-Type", "application/json"), 429, contract.CodeRateLimited)
	page := h.from("198.51.100.7:1", "GET", "/invite?token=x", "")
	expectRateLimited(t, page, 20)
	if !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Errorf("the page answers a limit with %q, want a page", page.Header().Get("Content-Type"))
	}
	// A header cannot change the address: no proxy is trusted by default.
	decodeProblem(t, h.from("198.51.100.7:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.9"), 429, contract.CodeRateLimited)
	// Other addresses, and the portal's routes, are not affected.
	decodeProblem(t, h.from("198.51.100.8:1", "GET", preview, ""), 404, contract.CodeTokenInvalid)
	if w := h.from("198.51.100.7:1", "GET", h.accountPath("/users"), "", "Authorization", "Bearer "+portalToken); w.Code != 200 {
		t.Fatalf("portal route from a limited address: %d", w.Code)
	}
	// A token comes back after its interval.
	*now = now.Add(20 * time.Second)
	decodeProblem(t, h.from("198.51.100.7:1", "GET", preview, ""), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.from("198.51.100.7:1", "GET", preview, ""), 429, contract.CodeRateLimited)
	// IPv6 addresses count by their /64.
	for i := range 3 {
		decodeProblem(t, h.from("[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:1", "GET", preview, ""), 404, contract.CodeTokenInvalid)
	}
	decodeProblem(t, h.from("[2001:db8:1:2:ffff::1]:1", "GET", preview, ""), 429, contract.CodeRateLimited)
	decodeProblem(t, h.from("[2001:db8:1:3::1]:1", "GET", preview, ""), 404, contract.CodeTokenInvalid)
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withConfig(func(c *config.Config) {
		c.RateInviteeIP, c.RateInviteeToken = config.RateLimit{Count: 1, Per: time.Minute}, config.RateLimit{}
		c.TrustedProxies = []string{"192.0.2.0/24"}
	}))
	preview := "/v1/invitations/preview?token=x"
	// Behind the trusted proxy, each forwarded client has its own budget.
	decodeProblem(t, h.from("192.0.2.10:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.1"), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.from("192.0.2.10:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.2"), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.from("192.0.2.10:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.1"), 429, contract.CodeRateLimited)
	// Anyone else's header is ignored.
	decodeProblem(t, h.from("198.51.100.1:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.3"), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.from("198.51.100.1:1", "GET", preview, "", "X-Forwarded-For", "203.0.113.4"), 429, contract.CodeRateLimited)
}

func TestInviteeRateLimitPerLink(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.limited(config.RateLimit{}, config.RateLimit{Count: 2, Per: time.Minute}, config.RateLimit{})
	inv := h.pending(uniqueEmail("link"))
	token := h.token(inv)
	other := h.token(h.pending(uniqueEmail("other")))

	// Two uses of one link from two addresses, then the link is limited wherever it comes from,
	// in the query string, in a JSON body or in a form.
	decodeJSON[map[string]any](t, h.from("203.0.113.1:1", "GET", "/v1/invitations/preview?token="+token, ""), 200)
	decodeJSON[map[string]any](t, h.from("203.0.113.2:1", "GET", "/v1/invitations/preview?token="+url.QueryEscape(token), ""), 200)
	expectRateLimited(t, h.from("203.0.113.3:1", "GET", "/v1/invitations/preview?token="+token, ""), 30)
	decodeProblem(t, h.from("203.0.113.3:1", "POST", "/v1/invitations/accept",
		`{"token":"`+token+`","password":"Correct-Horse-42","accept_terms":true}`, "Content-Type", "application/json"), 429, contract.CodeRateLimited)
	expectRateLimited(t, h.from("203.0.113.3:1", "POST", "/invite/decline", "token="+url.QueryEscape(token),
		"Content-Type", "application/x-www-form-urlencoded"), 30)
	// Another link is not affected; forged tokens never get a bucket (the address limit covers them).
	decodeJSON[map[string]any](t, h.from("203.0.113.3:1", "GET", "/v1/invitations/preview?token="+other, ""), 200)
	for range 5 {
		decodeProblem(t, h.from("203.0.113.3:1", "GET", "/v1/invitations/preview?token=forged-"+uuid.NewString(), ""), 404, contract.CodeTokenInvalid)
	}
	var n int
	if err := stack.Store.Pool.QueryRow(t.Context(), `select count(*) from rate_limits where key like $1`,
		h.limitKeys+"invitee-link:%").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d link buckets (%v), want 2 (forged tokens must not make any)", n, err)
	}
}

// TestTwoReplicasEnforceOneLimit: two API servers of one deployment (one store, one key space)
// share each bucket. An account may create 4 invitations a minute; 5 creates split across the
// two, alternating, see exactly one refusal, as one server alone would.
func TestTwoReplicasEnforceOneLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	limit := config.RateLimit{Count: 4, Per: time.Minute}
	a := h.serverWith(func(d *Deps) { d.Config.RateInvitationCreate = limit })
	b := h.serverWith(func(d *Deps) { d.Config.RateInvitationCreate = limit })
	refused := 0
	for i := range 5 {
		srv := []*Server{a, b}[i%2]
		w := serve(t, srv, "POST", h.accountPath("/invitations"), h.inviteBody(uniqueEmail(fmt.Sprintf("replica%d", i)), ""),
			"Authorization", "Bearer "+portalToken, "Content-Type", "application/json")
		switch w.Code {
		case 201:
		case 429:
			refused++
			decodeProblem(t, w, 429, contract.CodeRateLimited)
		default:
			t.Fatalf("create %d: %d %s", i, w.Code, w.Body)
		}
	}
	if refused != 1 {
		t.Fatalf("%d refusals across the two replicas, want exactly 1", refused)
	}
	// A server of another deployment (another key space) has a budget of its own.
	other := h.serverWith(func(d *Deps) { d.Config.RateInvitationCreate = limit; d.RateLimitKeys = "other-" + randomHex(4) + ":" })
	if w := serve(t, other, "POST", h.accountPath("/invitations"), h.inviteBody(uniqueEmail("replica-other"), ""),
		"Authorization", "Bearer "+portalToken, "Content-Type", "application/json"); w.Code != 201 {
		t.Fatalf("another deployment's create: %d %s", w.Code, w.Body)
	}
}

func TestRateLimitKeepsTheBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.limited(config.RateLimit{Count: 100, Per: time.Minute}, config.RateLimit{Count: 100, Per: time.Minute}, config.RateLimit{})
	inv := h.pending(uniqueEmail("body"))
	token := h.token(inv)
	// With both limits on, the handler gets all of the body (the per-link limit is counted
	// where the token is resolved, from the body the handler read).
	got := decodeJSON[map[string]any](t, h.api("POST", "/v1/invitations/accept",
		`{"token":"`+token+`","password":"Correct-Horse-42","accept_terms":true}`), 200)
	if got["status"] != "accepted" || h.row(inv.ID).Status != "accepted" {
		t.Fatalf("accept = %v", got)
	}
	// Over the limit it still answers 413, and a malformed body is still judged by the handler.
	big := `{"token":"` + strings.Repeat("a", jsonbody.MaxBytes) + `"}`
	req := httptest.NewRequest("POST", "/v1/invitations/decline", strings.NewReader(big))
	req.ContentLength = -1 // chunked: the limit bites while reading
	w := h.send(h.srv, req)
	decodeProblem(t, w, 413, contract.CodePayloadTooLarge)
	p := decodeProblem(t, h.api("POST", "/v1/invitations/decline", `{"token":`), 422, contract.CodeValidation)
	if p.Errors[0].Field != "body" {
		t.Fatalf("errors %+v", p.Errors)
	}
}

func TestInvitationCreateRateLimitPerAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.limited(config.RateLimit{}, config.RateLimit{}, config.RateLimit{Count: 2, Per: time.Minute})
	other := newHarness(t)
	body := func(i int) string {
		return `{"email":"` + uniqueEmail("n"+strconv.Itoa(i)) + `","first_name":"N","last_name":"M","subscription_id":"` + h.sub.ID.String() + `","role":"editor"}`
	}
	for i := range 2 {
		w := h.api("POST", h.accountPath("/invitations"), body(i))
		if w.Code != 201 {
			t.Fatalf("create %d: %d %s", i, w.Code, w.Body)
		}
	}
	// A token not allowed on the account is refused before it can spend the account's budget.
	for range 3 {
		decodeProblem(t, h.do("POST", h.accountPath("/invitations"), body(9),
			"Authorization", "Bearer "+other.scopedToken, "Content-Type", "application/json"), 403, contract.CodeForbidden)
	}
	w := h.api("POST", h.accountPath("/invitations"), body(3))
	expectRateLimited(t, w, 30)
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	// Reads and other accounts go on.
	if w := h.api("GET", h.accountPath("/invitations"), ""); w.Code != 200 {
		t.Fatalf("list while limited: %d", w.Code)
	}
	// Two invitations, two workflows: the refused creates started none.
	if l := decodeJSON[invitationListView](t, h.api("GET", h.accountPath("/invitations"), ""), 200); len(l.Items) != 2 {
		t.Fatalf("%d invitations, want 2", len(l.Items))
	}
	eventually(t, 10*time.Second, "the account's two workflows to be listed", func() bool { return len(h.accountWorkflows()) == 2 })
	time.Sleep(time.Second)
	if got := h.accountWorkflows(); len(got) != 2 {
		t.Fatalf("workflows %v, want 2", got)
	}
}

func TestInviteeRoutesAreKnown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	registered := map[string]bool{}
	for _, r := range h.srv.engine.Routes() {
		registered[r.Path] = true
	}
	for path := range inviteeRoutes {
		if !registered[path] {
			t.Errorf("rate-limited invitee route %s is not registered: was it renamed?", path)
		}
	}
	// The per-address limit covers exactly these routes: with a budget of one request a minute,
	// the second request from one address is refused on each of them, and on no other route.
	h.limited(rl(1), rl(0), rl(0))
	param := regexp.MustCompile(`:[a-z_]+`)
	for i, r := range h.srv.engine.Routes() {
		path := param.ReplaceAllString(r.Path, uuid.NewString())
		addr := "198.51.100." + strconv.Itoa(i+1) + ":1"
		h.from(addr, r.Method, path, "")
		if limited := h.from(addr, r.Method, path, "").Code == 429; limited != inviteeRoutes[r.Path] {
			t.Errorf("%s %s: limited per address %v, want %v", r.Method, r.Path, limited, inviteeRoutes[r.Path])
		}
	}
}

// inviteeRoutes are the routes authorised by an invite token alone, or by nobody (the password
// reset's, by a reset token or not at all), as route templates: the per-address limit covers
// them, and only them (the per-link limit the invite routes).
var inviteeRoutes = map[string]bool{
	"/v1/password-resets":         true,
	"/v1/password-resets/confirm": true,
	"/reset":                      true,
	"/reset/request":              true,
	"/reset/confirm":              true,
	"/v1/invitations/preview":     true,
	"/v1/invitations/accept":      true,
	"/v1/invitations/decline":     true,
	"/invite":                     true,
	"/invite/accept":              true,
	"/invite/decline":             true,
	"/invite/request-renewal":     true,
}

// rl is n requests per minute; 0 is no limit.
func rl(n int) config.RateLimit {
	if n == 0 {
		return config.RateLimit{}
	}
	return config.RateLimit{Count: n, Per: time.Minute}
}

// Requests answered 401 are limited per client address: after the budget, 429 with Retry-After,
// even with a good token, until it refills; another address and good requests spend nothing.
func TestUnauthorizedRequestsAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := h.limited(config.RateLimit{}, config.RateLimit{}, config.RateLimit{})
	h.srv.limits.unauthorizedIP = ratelimit.New(config.RateLimit{Count: 3, Per: time.Minute})
	path := h.accountPath("/users")
	good := "Bearer " + portalToken
	for range 5 { // a good token spends nothing
		if w := h.from("192.0.2.9:1", "GET", path, "", "Authorization", good); w.Code != 200 {
			t.Fatalf("good token: %d", w.Code)
		}
	}
	for i, auth := range []string{"", "Bearer wrong-token-1", "Bearer wrong-token-2"} {
		if w := h.from("192.0.2.9:1", "GET", path, "", "Authorization", auth); w.Code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	expectRateLimited(t, h.from("192.0.2.9:1", "GET", path, "", "Authorization", "Bearer wrong-token-3"), 20)
	expectRateLimited(t, h.from("192.0.2.9:1", "GET", path, "", "Authorization", good), 20)
	if w := h.from("198.51.100.7:1", "GET", path, "", "Authorization", good); w.Code != 200 {
		t.Fatalf("another address: %d", w.Code)
	}
	*now = now.Add(20 * time.Second)
	if w := h.from("192.0.2.9:1", "GET", path, "", "Authorization", good); w.Code != 200 {
		t.Fatalf("after the refill: %d", w.Code)
	}
}
