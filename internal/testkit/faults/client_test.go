package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/testkit/apitest"

	"github.com/google/uuid"
)

// HTTP helpers: the API as the portal and the invitee call it.

// response is an HTTP answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

func (r response) expect(t *testing.T, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

// problem is the RFC 9457 body of an error answer.
type problem struct {
	Status       int    `json:"status"`
	Detail       string `json:"detail"`
	Code         string `json:"code"`
	InvitationID string `json:"invitation_id"`
}

// code returns the problem code of an error answer, or "" for a success.
func (r response) code() string {
	if r.Status < 400 {
		return ""
	}
	var p problem
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

func (r response) expectProblem(t *testing.T, status int, code string) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d %s; body %s", r.Status, status, code, r.Body)
	}
	var p problem
	r.decode(t, &p)
	if p.Code != code {
		t.Fatalf("problem %+v, want code %s", p, code)
	}
	return p
}

// retrySafe reports whether an answer asks the client to try again later: 503 unavailable
// (a dependency is down or slow), with Retry-After.
func (r response) retrySafe() bool {
	return r.Status == http.StatusServiceUnavailable && r.code() == "unavailable"
}

// apiClient calls one API server, with or without an API token.
type apiClient struct {
	base  string
	token string
}

// do calls the API and fails the test on a transport error or a 500 (a 503 is allowed: the
// tests that inject faults judge it).
func (c apiClient) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	r, err := c.call(method, path, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		t.Errorf("%s %s answered %d: %s", method, path, r.Status, r.Body)
	}
	return r
}

// call is do without a *testing.T, for goroutines.
func (c apiClient) call(method, path string, body any, header ...string) (response, error) {
	r, err := apitest.Call(c.base, c.token, method, path, body, header...)
	return response(r), err
}

// acceptBody is a valid accept request for a new user.
func acceptBody(token string) map[string]any {
	return map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true}
}

// invitation is the contract's invitation object.
type invitation struct {
	ID             string    `json:"id"`
	AccountID      string    `json:"account_id"`
	Email          string    `json:"email"`
	UserID         *string   `json:"user_id"`
	SubscriptionID string    `json:"subscription_id"`
	Status         string    `json:"status"`
	InviteURL      *string   `json:"invite_url"`
	ExpiresAt      time.Time `json:"expires_at"`
	Sends          int       `json:"sends"`
	Delivery       *struct {
		Status string  `json:"status"`
		Error  *string `json:"error"`
	} `json:"delivery"`
	Events []struct {
		At     time.Time `json:"at"`
		Type   string    `json:"type"`
		Detail string    `json:"detail"`
	} `json:"events"`
}

// count returns how many events of typ the invitation has.
func (inv invitation) count(typ string) int {
	n := 0
	for _, e := range inv.Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// countDetail returns how many events of typ the invitation has whose detail starts with prefix.
func (inv invitation) countDetail(typ, prefix string) int {
	n := 0
	for _, e := range inv.Events {
		if e.Type == typ && strings.HasPrefix(e.Detail, prefix) {
			n++
		}
	}
	return n
}

type subscription struct {
	ID             string `json:"id"`
	Seats          int    `json:"seats"`
	SeatsUsed      int    `json:"seats_used"`
	SeatsReserved  int    `json:"seats_reserved"`
	SeatsAvailable int    `json:"seats_available"`
}

// fixture is an account with one subscription and one group, made through the API.
type fixture struct {
	AccountID      string
	AccountName    string
	SubscriptionID string
	GroupID        string
}

func newFixture(t *testing.T, c apiClient, seats int) fixture {
	t.Helper()
	f := fixture{AccountName: "Acme " + randomHex(3)}
	var acct struct{ ID string }
	c.do(t, "POST", "/v1/accounts", map[string]any{"name": f.AccountName}).expect(t, 201).decode(t, &acct)
	f.AccountID = acct.ID
	var sub subscription
	c.do(t, "POST", "/v1/accounts/"+f.AccountID+"/subscriptions", map[string]any{
		"application": "Adobe Creative Cloud", "name": "Design Team", "seats": seats,
		"roles": []string{"viewer", "editor", "admin"},
	}).expect(t, 201).decode(t, &sub)
	f.SubscriptionID = sub.ID
	var group struct{ ID string }
	c.do(t, "POST", "/v1/accounts/"+f.AccountID+"/groups", map[string]any{"name": "Designers"}).expect(t, 201).decode(t, &group)
	f.GroupID = group.ID
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

// invite creates an invitation and returns it, failing on anything but 201.
func (f fixture) invite(t *testing.T, c apiClient, email string) invitation {
	t.Helper()
	var inv invitation
	c.do(t, "POST", f.path("/invitations"), f.inviteBody(email)).expect(t, 201).decode(t, &inv)
	if inv.InviteURL == nil {
		t.Fatalf("created invitation %+v has no invite_url", inv)
	}
	return inv
}

func (f fixture) invitation(t *testing.T, c apiClient, id string) invitation {
	t.Helper()
	var inv invitation
	c.do(t, "GET", f.path("/invitations/"+id), nil).expect(t, 200).decode(t, &inv)
	return inv
}

func (f fixture) subscription(t *testing.T, c apiClient) subscription {
	t.Helper()
	var s subscription
	c.do(t, "GET", f.path("/subscriptions/"+f.SubscriptionID), nil).expect(t, 200).decode(t, &s)
	return s
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

// SQL helpers: what Postgres holds, read with the tests' own pool.

// sqlInt runs a query returning one integer.
func sqlInt(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := env.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// provisioned is what Postgres holds for a person after an acceptance.
type provisioned struct {
	Users, Memberships, Seats int
}

func provisionedFor(t *testing.T, f fixture, email string) provisioned {
	t.Helper()
	return provisioned{
		Users: sqlInt(t, `select count(*) from users where lower(email) = lower($1)`, email),
		Memberships: sqlInt(t, `select count(*) from memberships m join users u on u.id = m.user_id
			where m.account_id = $1 and lower(u.email) = lower($2)`, uuid.MustParse(f.AccountID), email),
		Seats: sqlInt(t, `select count(*) from seats s join users u on u.id = s.user_id
			where s.subscription_id = $1 and lower(u.email) = lower($2)`, uuid.MustParse(f.SubscriptionID), email),
	}
}

// seatCounts reads a subscription's counters in SQL, with the pending and accepted rows they
// must agree with.
type seatCounts struct {
	Seats, Used, Reserved, PendingRows, AcceptedRows, SeatRows int
}

func seatsOf(t *testing.T, f fixture) seatCounts {
	t.Helper()
	var c seatCounts
	sub := uuid.MustParse(f.SubscriptionID)
	err := env.db.QueryRow(context.Background(), `
		select s.seats, s.seats_used, s.seats_reserved,
			(select count(*) from invitations i where i.subscription_id = s.id and i.status = 'pending'),
			(select count(*) from invitations i where i.subscription_id = s.id and i.status = 'accepted'),
			(select count(*) from seats x where x.subscription_id = s.id)
		from subscriptions s where s.id = $1`, sub).
		Scan(&c.Seats, &c.Used, &c.Reserved, &c.PendingRows, &c.AcceptedRows, &c.SeatRows)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consistent checks the seat counters against the rows: a pending invitation holds one
// reserved seat, an accepted one one used seat (each person has a seat row).
func (c seatCounts) consistent() error {
	if c.Reserved != c.PendingRows || c.Used != c.AcceptedRows || c.Used != c.SeatRows || c.Used+c.Reserved > c.Seats {
		return fmt.Errorf("seat counters disagree with the rows: %+v", c)
	}
	return nil
}

// emailsTo returns the emails the fake Resend accepted for addr whose subject contains substr.
func emailsTo(addr, substr string) int {
	n := 0
	for _, e := range env.resend.EmailsTo(addr) {
		if strings.Contains(e.Subject, substr) {
			n++
		}
	}
	return n
}

// waitEmails waits until n emails to addr about substr arrived.
func waitEmails(t *testing.T, addr, substr string, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d emails to %s about %q", n, addr, substr), func() bool {
		return emailsTo(addr, substr) >= n
	})
}
