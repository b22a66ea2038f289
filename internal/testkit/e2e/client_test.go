package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/onboarding-service/onboarding/client"
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
)

// response is an HTTP answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

// problem is the RFC 9457 body of an error answer.
type problem struct {
	Type         string `json:"type"`
	Title        string `json:"title"`
	Status       int    `json:"status"`
	Detail       string `json:"detail"`
	Code         string `json:"code"`
	InvitationID string `json:"invitation_id"`
	Errors       []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// expectProblem asserts an error answer's status, content type and code.
func (r response) expectProblem(t *testing.T, status int, code string) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p problem
	r.decode(t, &p)
	if p.Code != code || p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v, want code %s status %d with a type and title", p, code, status)
	}
	return p
}

func (r response) expect(t testing.TB, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

// apiClient calls one API server with one token.
type apiClient struct {
	base  string
	token string
}

func portal() apiClient  { return apiClient{base: stack.API.URL, token: stack.Token} }
func short() apiClient   { return apiClient{base: stack.Short.URL, token: stack.Token} }
func invitee() apiClient { return apiClient{base: stack.API.URL} }

func (c apiClient) do(t testing.TB, method, path string, body any, header ...string) response {
	t.Helper()
	r, err := c.call(method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status >= 500 {
		t.Errorf("%s %s answered %d: %s", method, path, r.Status, r.Body)
	}
	return r
}

// call is do without a *testing.T, for goroutines (which must not call t.Fatal): it returns
// transport errors and leaves judging the status to the caller.
func (c apiClient) call(method, path string, body any, header ...string) (response, error) {
	r, err := apitest.Call(c.base, c.token, method, path, body, header...)
	return response(r), err
}

// request builds a request with the client's token and no other header, for tests that
// shape the request themselves (content types, repeated headers, chunked bodies).
func (c apiClient) request(t *testing.T, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req
}

// send runs a request built by request, failing the test on a transport error or a 5xx.
func send(t *testing.T, req *http.Request) response {
	t.Helper()
	r, err := roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status >= 500 {
		t.Errorf("%s %s answered %d: %s", req.Method, req.URL, r.Status, r.Body)
	}
	return r
}

func roundTrip(req *http.Request) (response, error) {
	r, err := apitest.RoundTrip(req)
	return response(r), err
}

// expectInvalid asserts a validation_failed answer whose errors name exactly fields (in any
// order, each once).
func (r response) expectInvalid(t *testing.T, fields ...string) problem {
	t.Helper()
	p := r.expectProblem(t, 422, "validation_failed")
	got := make([]string, 0, len(p.Errors))
	for _, e := range p.Errors {
		if e.Message == "" {
			t.Errorf("field error %q has no message", e.Field)
		}
		got = append(got, e.Field)
	}
	want := slices.Clone(fields)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("validation_failed names fields %q, want %q; body %s", got, want, r.Body)
	}
	return p
}

// createInvitation creates an invitation through c (the generated client) and returns it.
func (f fixture) createInvitation(t *testing.T, c apiClient, email string) invitation {
	t.Helper()
	res, err := c.typed(t).CreateInvitationWithResponse(context.Background(), mustID(t, f.AccountID), nil, f.inviteRequest(t, email))
	noErr(t, "create invitation", err)
	r := asResponse(t, "create invitation", res.HTTPResponse, res.Body).expect(t, 201)
	if res.JSON201 == nil {
		t.Fatalf("create invitation: no invitation in %s", r.Body)
	}
	var inv invitation
	r.decode(t, &inv)
	if inv.InviteURL == nil {
		t.Fatalf("created invitation %+v has no invite_url", inv)
	}
	return inv
}

// accept accepts an invite token as a new user, with a good password (the generated client).
func accept(t *testing.T, token string) response {
	t.Helper()
	password := "Correct-Horse-42"
	res, err := invitee().typed(t).AcceptInvitationWithResponse(context.Background(), client.AcceptRequest{
		Token: token, Password: &password, AcceptTerms: true,
	})
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return asResponse(t, "accept", res.HTTPResponse, res.Body)
}

// invitation is the contract's invitation object.
type invitation struct {
	ID             string    `json:"id"`
	AccountID      string    `json:"account_id"`
	Email          string    `json:"email"`
	FirstName      string    `json:"first_name"`
	LastName       string    `json:"last_name"`
	UserID         *string   `json:"user_id"`
	SubscriptionID string    `json:"subscription_id"`
	Application    string    `json:"application"`
	Role           string    `json:"role"`
	GroupIDs       []string  `json:"group_ids"`
	Status         string    `json:"status"`
	InviteURL      *string   `json:"invite_url"`
	ExpiresAt      time.Time `json:"expires_at"`
	Sends          int       `json:"sends"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Delivery       *struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"delivery"`
	Events []struct {
		At     time.Time `json:"at"`
		Type   string    `json:"type"`
		Detail string    `json:"detail"`
	} `json:"events"`
}

type subscription struct {
	ID             string   `json:"id"`
	Application    string   `json:"application"`
	Name           string   `json:"name"`
	Seats          int      `json:"seats"`
	SeatsUsed      int      `json:"seats_used"`
	SeatsReserved  int      `json:"seats_reserved"`
	SeatsAvailable int      `json:"seats_available"`
	Roles          []string `json:"roles"`
}

// fixture is an account with one subscription and one group, made through the API.
type fixture struct {
	AccountID      string
	AccountName    string
	SubscriptionID string
	GroupID        string
}

func newFixture(t testing.TB, seats int) fixture {
	t.Helper()
	var f fixture
	f.AccountName = "Acme " + randomHex(3)
	ctx, c := context.Background(), typedPortal(t)
	acct, err := c.CreateAccountWithResponse(ctx, client.NameRequest{Name: f.AccountName})
	noErr(t, "create account", err)
	asResponse(t, "create account", acct.HTTPResponse, acct.Body).expect(t, 201)
	if acct.JSON201 == nil {
		t.Fatalf("create account: no account in %s", acct.Body)
	}
	f.AccountID = acct.JSON201.Id.String()
	sub, err := c.CreateSubscriptionWithResponse(ctx, acct.JSON201.Id, client.SubscriptionCreate{
		Application: "Adobe Creative Cloud", Name: "Design Team", Seats: seats,
		Roles: []string{"viewer", "editor", "admin"},
	})
	noErr(t, "create subscription", err)
	asResponse(t, "create subscription", sub.HTTPResponse, sub.Body).expect(t, 201)
	if sub.JSON201 == nil {
		t.Fatalf("create subscription: no subscription in %s", sub.Body)
	}
	f.SubscriptionID = sub.JSON201.Id.String()
	group, err := c.CreateGroupWithResponse(ctx, acct.JSON201.Id, client.NameRequest{Name: "Designers"})
	noErr(t, "create group", err)
	asResponse(t, "create group", group.HTTPResponse, group.Body).expect(t, 201)
	if group.JSON201 == nil {
		t.Fatalf("create group: no group in %s", group.Body)
	}
	f.GroupID = group.JSON201.Id.String()
	return f
}

func (f fixture) path(rest string) string { return "/v1/accounts/" + f.AccountID + rest }

// inviteBody is a valid create-invitation body for a new person.
func (f fixture) inviteBody(email string) map[string]any {
	return map[string]any{
		"email": email, "first_name": "Jane", "last_name": "Doe",
		"subscription_id": f.SubscriptionID, "role": "editor", "group_ids": []string{f.GroupID},
		"inviter": map[string]any{"name": "Ada Admin", "email": "ada@acme.test"},
	}
}

func (f fixture) subscription(t *testing.T) subscription {
	t.Helper()
	res, err := typedPortal(t).GetSubscriptionWithResponse(context.Background(), mustID(t, f.AccountID), mustID(t, f.SubscriptionID))
	noErr(t, "get subscription", err)
	r := asResponse(t, "get subscription", res.HTTPResponse, res.Body).expect(t, 200)
	if res.JSON200 == nil {
		t.Fatalf("get subscription: no subscription in %s", r.Body)
	}
	var s subscription
	r.decode(t, &s)
	return s
}

func (f fixture) invitation(t *testing.T, c apiClient, id string) invitation {
	t.Helper()
	res, err := c.typed(t).GetInvitationWithResponse(context.Background(), mustID(t, f.AccountID), mustID(t, id))
	noErr(t, "get invitation", err)
	r := asResponse(t, "get invitation", res.HTTPResponse, res.Body).expect(t, 200)
	if res.JSON200 == nil {
		t.Fatalf("get invitation: no invitation in %s", r.Body)
	}
	var inv invitation
	r.decode(t, &inv)
	return inv
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var tokenInLink = regexp.MustCompile(`token=([A-Za-z0-9_\-]+)`)

// tokenOf extracts the invite token of a link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	m := tokenInLink.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no token in %q", link)
	}
	return m[1]
}

// waitEmail waits for the n-th email (1-based) to addr whose subject contains substr.
func waitEmail(t *testing.T, addr, substr string, n int) string {
	t.Helper()
	var text string
	eventually(t, 20*time.Second, fmt.Sprintf("email %d to %s about %q", n, addr, substr), func() bool {
		count := 0
		for _, e := range stack.Resend.EmailsTo(addr) {
			if strings.Contains(e.Subject, substr) {
				count++
				if count == n {
					text = e.Text
					return true
				}
			}
		}
		return false
	})
	return text
}

// scopedClient calls the API with a new token scoped to f's account.
func scopedClient(t *testing.T, f fixture) apiClient {
	t.Helper()
	account := uuid.MustParse(f.AccountID)
	token := "scoped-" + randomHex(16)
	if err := stack.Store.EnsureAPIToken(context.Background(), "account-"+randomHex(3), token, &account); err != nil {
		t.Fatal(err)
	}
	return apiClient{base: stack.API.URL, token: token}
}
