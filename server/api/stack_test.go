package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
)

// The package's tests run the API over the real service: Postgres, a Temporal dev server and a
// real worker, started once by TestMain (main_test.go) with internal/testkit/stack. Resend's remote
// API is the only stand-in. Everything a test needs (accounts, subscriptions, groups,
// invitations and their states) it makes through the API.

// TestStack is the running service, handed over by TestMain. TestMain is in the external test
// package because internal/testkit/stack imports this package; the package's own tests need the
// unexported server (its engine, signer, limits and clock), so they get the stack through UseStack.
type TestStack struct {
	// Cfg has the contract's durations; ShortCfg second-scale TTL, reminder and resend interval.
	Cfg, ShortCfg config.Config
	DBURL         string
	Store         *store.Store
	Temporal      client.Client
	Resend        *resendtest.Server
	// Token is an unscoped API token (the portal's).
	Token string
	// Logs returns everything the stack (worker, Temporal SDK, stacktest's own API) logged.
	Logs func() string
}

var stack TestStack

// portalToken is the stack's unscoped API token.
var portalToken string

// UseStack gives the package's tests the stack TestMain started.
func UseStack(s TestStack) {
	stack = s
	portalToken = s.Token
	s.Resend.InjectFaults(func(e resendtest.Email) *resendtest.Fault {
		for _, to := range e.To {
			if f, ok := resendFaults.Load(strings.ToLower(to)); ok {
				return f.(*resendtest.Fault)
			}
		}
		return nil
	})
}

// resendFaults holds, by lower-cased recipient, the answer Resend gives instead of sending.
var resendFaults sync.Map

// failEmailsTo makes Resend refuse every email to addr until the test ends.
func failEmailsTo(t testing.TB, addr string, f resendtest.Fault) {
	key := strings.ToLower(addr)
	resendFaults.Store(key, &f)
	t.Cleanup(func() { resendFaults.Delete(key) })
}

// harness is a server over the stack with an account of its own (one subscription, one
// group, and an API token scoped to the account), made through the API.
type harness struct {
	t    testing.TB
	srv  *Server
	cfg  config.Config
	logs *syncLog // what this server logged
	// account, sub and group are as the API created them.
	account store.Account
	sub     store.Subscription
	group   store.Group
	// scopedToken is an API token allowed on account only.
	scopedToken string
	// responsesOnly: the OpenAPI validator judges answers only (fuzz inputs; see exchange).
	responsesOnly bool
	// limitKeys is the key space of this harness's rate-limit buckets in Postgres: its own, so
	// parallel tests (all from httptest's one client address) never spend each other's budget.
	limitKeys string
}

type harnessSettings struct {
	cfg         config.Config
	seats       int
	accountName string
}

type harnessOption func(*harnessSettings)

// shortTTL serves with the stack's short durations (seconds-long TTL, reminder and resend
// interval), for tests that need an invitation to expire.
func shortTTL() harnessOption { return func(s *harnessSettings) { s.cfg = stack.ShortCfg } }

// withSeats sets the harness subscription's seats (10 by default).
func withSeats(n int) harnessOption { return func(s *harnessSettings) { s.seats = n } }

// withAccountName names the harness account ("Acme" by default).
func withAccountName(name string) harnessOption {
	return func(s *harnessSettings) { s.accountName = name }
}

// withConfig adjusts the server's configuration.
func withConfig(f func(*config.Config)) harnessOption { return func(s *harnessSettings) { f(&s.cfg) } }

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	if stack.Store == nil {
		t.Fatal("no stack: TestMain (main_test.go) did not start one")
	}
	set := harnessSettings{cfg: stack.Cfg, seats: 10, accountName: "Acme"}
	for _, o := range opts {
		o(&set)
	}
	logs := &syncLog{}
	h := &harness{t: t, cfg: set.cfg, logs: logs, limitKeys: "test-" + randomHex(6) + ":"}
	h.srv = newServer(h.deps())

	name, _ := json.Marshal(set.accountName)
	acc := decodeJSON[accountView](t, h.api("POST", "/v1/accounts", `{"name":`+string(name)+`}`), 201)
	h.account = store.Account{ID: acc.ID, Name: acc.Name}
	sub := decodeJSON[subscriptionView](t, h.api("POST", h.accountPath("/subscriptions"),
		fmt.Sprintf(`{"application":"analytics","name":"Team","seats":%d,"roles":["admin","editor"]}`, set.seats)), 201)
	h.sub = store.Subscription{ID: sub.ID, AccountID: acc.ID, Application: sub.Application, Name: sub.Name, Seats: sub.Seats, Roles: sub.Roles}
	g := decodeJSON[groupView](t, h.api("POST", h.accountPath("/groups"), `{"name":"Ops"}`), 201)
	h.group = store.Group{ID: g.ID, AccountID: acc.ID, Name: g.Name}
	h.scopedToken = "scoped-" + randomHex(16)
	if err := stack.Store.EnsureAPIToken(context.Background(), "acme-admin-"+randomHex(4), h.scopedToken, &acc.ID); err != nil {
		t.Fatal(err)
	}
	return h
}

// with is the harness bound to another test (a subtest, or a fuzz input): same server and
// account, failures reported to t.
func (h *harness) with(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// deps are the harness server's dependencies: the stack's, with the harness's configuration
// and a logger of its own.
func (h *harness) deps() Deps {
	return Deps{
		Config:   h.cfg,
		Store:    stack.Store,
		Temporal: stack.Temporal,
		Signer:   invitetoken.NewSigner(h.cfg.TokenSecret, h.cfg.TokenSecretPrevious...),
		Hasher:   password.NewHasher(2),
		Logger:   slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Servers of one harness share its buckets, as replicas of one deployment do.
		RateLimitKeys: h.limitKeys,
	}
}

// syncLog is a log sink the test reads while the server writes.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// do sends a request to the harness server; headers alternate names and values.
func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.send(h.srv, newRequest(method, path, body, headers...))
}

// send serves req on s, checked against the OpenAPI document (see exchange).
func (h *harness) send(s *Server, req *http.Request) *httptest.ResponseRecorder {
	h.t.Helper()
	return exchange(h.t, s, req, h.responsesOnly)
}

// serve sends a request to s, checked against the OpenAPI document (see exchange).
func serve(t testing.TB, s *Server, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return exchange(t, s, newRequest(method, path, body, headers...), false)
}

// newRequest is a test request; headers alternate names and values.
func newRequest(method, path, body string, headers ...string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// api sends an authenticated JSON request with the portal's token.
func (h *harness) api(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(method, path, body, append([]string{"Authorization", "Bearer " + portalToken, "Content-Type", "application/json"}, headers...)...)
}

func (h *harness) accountPath(rest string) string {
	return "/v1/accounts/" + h.account.ID.String() + rest
}

// uniqueEmail is an address no other test uses: users are global, so two tests inviting the
// same address would see each other's users.
func uniqueEmail(local string) string {
	return local + "+" + randomHex(4) + "@acme.test"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// inviteBody is a create-invitation body for a new person on the harness subscription, as
// editor; extra adds fields (",\"phone\":...").
func (h *harness) inviteBody(email, extra string) string {
	return fmt.Sprintf(`{"email":%q,"first_name":"Jane","last_name":"Doe","subscription_id":"%s","role":"editor"%s}`, email, h.sub.ID, extra)
}

// create creates an invitation through the API and returns its answer.
func (h *harness) create(body string, headers ...string) invitationView {
	h.t.Helper()
	return decodeJSON[invitationView](h.t, h.api("POST", h.accountPath("/invitations"), body, headers...), 201)
}

// pending creates a pending invitation for email through the API and returns its row.
func (h *harness) pending(email string) store.Invitation {
	h.t.Helper()
	return h.row(h.create(h.inviteBody(email, "")).ID)
}

// row reads an invitation's row.
func (h *harness) row(id uuid.UUID) store.Invitation {
	h.t.Helper()
	inv, err := stack.Store.GetInvitation(context.Background(), id)
	if err != nil {
		h.t.Fatalf("invitation %s: %v", id, err)
	}
	return inv
}

// token is the invite token of the invitation's current link.
func (h *harness) token(inv store.Invitation) string {
	return h.srv.signer.Sign(inv.ID, inv.Generation)
}

// accept accepts an invite token through the API, as a new user with a good password.
func (h *harness) accept(token string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do("POST", "/v1/invitations/accept", fmt.Sprintf(`{"token":%q,"password":"Str0ng-Password","accept_terms":true}`, token))
}

// member makes email an active user of the harness account (invited and accepted) and
// returns the user's id.
func (h *harness) member(email string) uuid.UUID {
	h.t.Helper()
	inv := h.pending(email)
	got := decodeJSON[acceptView](h.t, h.accept(h.token(inv)), 200)
	if got.UserID == nil {
		h.t.Fatalf("accept answered no user id")
	}
	return *got.UserID
}

// waitStatus waits until the invitation's row has status and returns it.
func (h *harness) waitStatus(id uuid.UUID, status contract.Status, timeout time.Duration) store.Invitation {
	h.t.Helper()
	var inv store.Invitation
	eventually(h.t, timeout, "invitation "+id.String()+" to be "+string(status), func() bool {
		inv = h.row(id)
		return inv.Status == status
	})
	return inv
}

// expired creates an invitation and waits for it to expire; the harness must use shortTTL.
func (h *harness) expired(email string) store.Invitation {
	h.t.Helper()
	if h.cfg.InvitationTTL > time.Minute {
		h.t.Fatal("expired needs a harness with shortTTL()")
	}
	inv := h.pending(email)
	return h.waitStatus(inv.ID, "expired", h.cfg.InvitationTTL+20*time.Second)
}

// subscription reads the harness subscription through the API, with its seat counts.
func (h *harness) subscription() subscriptionView {
	h.t.Helper()
	return decodeJSON[subscriptionView](h.t, h.api("GET", h.accountPath("/subscriptions/"+h.sub.ID.String()), ""), 200)
}

// workflowState asks the invitation's workflow for its state.
func workflowState(t testing.TB, id uuid.UUID) contract.State {
	t.Helper()
	v, err := stack.Temporal.QueryWorkflow(t.Context(), contract.InvitationWorkflowID(id), "", contract.QueryState)
	if err != nil {
		t.Fatal(err)
	}
	var st contract.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// decodeProblem checks the problem's status, code and media type and returns it.
func decodeProblem(t testing.TB, w *httptest.ResponseRecorder, status int, code contract.Code) problem.Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != code || p.Status != status || p.Type != problem.TypePrefix+string(code) || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem = %+v, want code %s", p, code)
	}
	return p
}

func decodeJSON[T any](t testing.TB, w *httptest.ResponseRecorder, status int) T {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	return v
}
