package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows"
)

// fakeStore is an in-memory storage with just enough behaviour for handler tests.
type fakeStore struct {
	mu          sync.Mutex
	tokens      map[string]store.APIToken
	accounts    map[uuid.UUID]store.Account
	subs        map[uuid.UUID]store.Subscription
	groups      map[uuid.UUID]store.Group
	users       map[uuid.UUID]store.User
	members     map[uuid.UUID][]uuid.UUID // account -> active user ids
	invitations map[uuid.UUID]store.Invitation
	events      map[uuid.UUID][]store.Event
	idem        map[string]idemEntry
	pingErr     error
}

type idemEntry struct {
	hash []byte
	id   uuid.UUID
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		tokens: map[string]store.APIToken{}, accounts: map[uuid.UUID]store.Account{},
		subs: map[uuid.UUID]store.Subscription{}, groups: map[uuid.UUID]store.Group{},
		users: map[uuid.UUID]store.User{}, members: map[uuid.UUID][]uuid.UUID{},
		invitations: map[uuid.UUID]store.Invitation{}, events: map[uuid.UUID][]store.Event{},
		idem: map[string]idemEntry{},
	}
}

func (f *fakeStore) Ping(context.Context) error { return f.pingErr }

func (f *fakeStore) LookupAPIToken(_ context.Context, token string) (store.APIToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tokens[token]; ok {
		return t, nil
	}
	return store.APIToken{}, store.ErrNotFound
}

func (f *fakeStore) CreateAccount(_ context.Context, name string) (store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := store.Account{ID: uuid.New(), Name: name, CreatedAt: time.Now()}
	f.accounts[a.ID] = a
	return a, nil
}

func (f *fakeStore) GetAccount(_ context.Context, id uuid.UUID) (store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.accounts[id]; ok {
		return a, nil
	}
	return store.Account{}, store.ErrNotFound
}

func (f *fakeStore) CreateSubscription(_ context.Context, accountID uuid.UUID, application, name string, seats int, roles []string) (store.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := store.Subscription{ID: uuid.New(), AccountID: accountID, Application: application, Name: name, Seats: seats, Roles: roles}
	f.subs[s.ID] = s
	return s, nil
}

func (f *fakeStore) GetSubscription(_ context.Context, accountID, id uuid.UUID) (store.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.subs[id]; ok && s.AccountID == accountID {
		return s, nil
	}
	return store.Subscription{}, store.ErrNotFound
}

func (f *fakeStore) CreateGroup(_ context.Context, accountID uuid.UUID, name string) (store.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.groups {
		if g.AccountID == accountID && g.Name == name {
			return store.Group{}, store.ErrDuplicateGroup
		}
	}
	g := store.Group{ID: uuid.New(), AccountID: accountID, Name: name}
	f.groups[g.ID] = g
	return g, nil
}

func (f *fakeStore) GroupsNotInAccount(_ context.Context, accountID uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var missing []uuid.UUID
	for _, id := range ids {
		if g, ok := f.groups[id]; !ok || g.AccountID != accountID {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

func (f *fakeStore) GetUser(_ context.Context, id uuid.UUID) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[id]; ok {
		return u, nil
	}
	return store.User{}, store.ErrNotFound
}

func (f *fakeStore) UserExistsWithEmail(_ context.Context, email string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if strings.EqualFold(u.Email, email) {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) IsActiveMember(_ context.Context, accountID uuid.UUID, userID *uuid.UUID, email string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.members[accountID] {
		if (userID != nil && *userID == id) || strings.EqualFold(f.users[id].Email, email) {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) PendingInvitationID(_ context.Context, accountID uuid.UUID, email string) (uuid.UUID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inv := range f.invitations {
		if inv.AccountID == accountID && strings.EqualFold(inv.Email, email) && inv.Status == "pending" {
			return inv.ID, nil
		}
	}
	return uuid.Nil, store.ErrNotFound
}

func (f *fakeStore) ClaimIdempotencyKey(_ context.Context, accountID uuid.UUID, key string, hash []byte, proposed uuid.UUID) (uuid.UUID, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := accountID.String() + "/" + key
	e, ok := f.idem[k]
	if !ok {
		e = idemEntry{hash: hash, id: proposed}
		f.idem[k] = e
	}
	return e.id, bytes.Equal(e.hash, hash), nil
}

func (f *fakeStore) GetInvitation(_ context.Context, id uuid.UUID) (store.Invitation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inv, ok := f.invitations[id]; ok {
		return inv, nil
	}
	return store.Invitation{}, store.ErrNotFound
}

func (f *fakeStore) InvitationEvents(_ context.Context, id uuid.UUID) ([]store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Event{}, f.events[id]...), nil
}

func (f *fakeStore) ListInvitations(_ context.Context, accountID uuid.UUID, status, email string, limit int, cursor *store.Cursor) ([]store.Invitation, *store.Cursor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []store.Invitation
	for _, inv := range f.invitations {
		if inv.AccountID == accountID && (status == "" || inv.Status == status) && (email == "" || strings.EqualFold(inv.Email, email)) {
			all = append(all, inv)
		}
	}
	slices.SortFunc(all, func(a, b store.Invitation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	if cursor != nil {
		i := slices.IndexFunc(all, func(inv store.Invitation) bool { return inv.ID == cursor.ID })
		all = all[i+1:]
	}
	if len(all) > limit {
		last := all[limit-1]
		return all[:limit], &store.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
	}
	return all, nil, nil
}

func (f *fakeStore) ListAccountUsers(context.Context, uuid.UUID) ([]store.AccountUser, error) {
	return []store.AccountUser{}, nil
}

func (f *fakeStore) put(inv store.Invitation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invitations[inv.ID] = inv
}

// fakeTemporal answers the calls the server makes; any other call panics on the nil
// embedded client, which a test would notice.
type fakeTemporal struct {
	client.Client
	mu        sync.Mutex
	startOpts []client.StartWorkflowOptions
	starts    []workflows.InvitationInput
	updates   []client.UpdateWorkflowOptions
	// onStart answers update-with-start; onUpdate answers an update.
	onStart   func(in workflows.InvitationInput) (any, error)
	onUpdate  func(opts client.UpdateWorkflowOptions) (any, error)
	healthErr error
}

// updateOpts shortens the fake's callback signatures.
type updateOpts = client.UpdateWorkflowOptions

type fakeStartOp struct {
	client.WithStartWorkflowOperation
	in workflows.InvitationInput
}

func (f *fakeTemporal) NewWithStartWorkflowOperation(opts client.StartWorkflowOptions, _ any, args ...any) client.WithStartWorkflowOperation {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startOpts = append(f.startOpts, opts)
	return &fakeStartOp{in: args[0].(workflows.InvitationInput)}
}

func (f *fakeTemporal) UpdateWithStartWorkflow(_ context.Context, opts client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	in := opts.StartWorkflowOperation.(*fakeStartOp).in
	f.mu.Lock()
	f.starts = append(f.starts, in)
	f.mu.Unlock()
	res, err := f.onStart(in)
	return fakeHandle{result: res, err: err}, nil
}

func (f *fakeTemporal) UpdateWorkflow(_ context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	f.updates = append(f.updates, opts)
	f.mu.Unlock()
	res, err := f.onUpdate(opts)
	return fakeHandle{result: res, err: err}, nil
}

func (f *fakeTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, f.healthErr
}

type fakeHandle struct {
	result any
	err    error
}

func (h fakeHandle) WorkflowID() string { return "" }
func (h fakeHandle) RunID() string      { return "" }
func (h fakeHandle) UpdateID() string   { return "" }
func (h fakeHandle) Get(_ context.Context, v any) error {
	if h.err != nil {
		return h.err
	}
	data, err := json.Marshal(h.result)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// harness is a server over fakes with one account, an unscoped and a scoped token.
type harness struct {
	t        *testing.T
	srv      *Server
	store    *fakeStore
	temporal *fakeTemporal
	logs     *bytes.Buffer
	account  store.Account
	sub      store.Subscription
	group    store.Group
}

const (
	portalToken = "portal-token-0123456789"
	scopedToken = "scoped-token-0123456789"
)

func newHarness(t *testing.T) *harness {
	t.Helper()
	fs := newFakeStore()
	ft := &fakeTemporal{}
	logs := &bytes.Buffer{}
	cfg := config.Config{
		TemporalTaskQueue: "onboarding",
		AcceptURLTemplate: "http://localhost:8080/invite?token={token}",
		InvitationTTL:     168 * time.Hour,
		ReminderBefore:    48 * time.Hour,
		ResendMinInterval: time.Minute,
	}
	srv := newServer(Deps{
		Config:   cfg,
		Temporal: ft,
		Signer:   invitetoken.NewSigner([]byte("0123456789abcdef0123456789abcdef")),
		Hasher:   password.NewHasher(1),
		Logger:   slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, fs)
	h := &harness{t: t, srv: srv, store: fs, temporal: ft, logs: logs}
	ctx := context.Background()
	h.account, _ = fs.CreateAccount(ctx, "Acme")
	h.sub, _ = fs.CreateSubscription(ctx, h.account.ID, "analytics", "Team", 2, []string{"admin", "editor"})
	h.group, _ = fs.CreateGroup(ctx, h.account.ID, "Ops")
	fs.tokens[portalToken] = store.APIToken{ID: uuid.New(), Name: "portal"}
	acc := h.account.ID
	fs.tokens[scopedToken] = store.APIToken{ID: uuid.New(), Name: "acme-admin", AccountID: &acc}
	// By default the workflow records what it is asked to, like the real create activity.
	ft.onStart = func(in workflows.InvitationInput) (any, error) {
		inv := h.invitationFrom(in)
		fs.put(inv)
		return workflows.State{InvitationID: in.InvitationID, Status: workflows.StatusPending, Generation: 1, ExpiresAt: inv.ExpiresAt}, nil
	}
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) invitationFrom(in workflows.InvitationInput) store.Invitation {
	now := time.Now().UTC()
	inv := store.Invitation{
		ID: uuid.MustParse(in.InvitationID), AccountID: uuid.MustParse(in.AccountID), AccountName: in.AccountName,
		SubscriptionID: uuid.MustParse(in.SubscriptionID), Subscription: in.SubscriptionName, Application: in.Application,
		Role: in.Role, GroupIDs: []uuid.UUID{}, Email: in.Email, FirstName: in.FirstName, LastName: in.LastName,
		Phone: in.Phone, InviterName: in.Inviter.Name, InviterEmail: in.Inviter.Email, Status: "pending", Generation: 1,
		ExpiresAt: now.Add(in.Settings.TTL), CreatedAt: now, UpdatedAt: now,
	}
	for _, g := range in.GroupIDs {
		inv.GroupIDs = append(inv.GroupIDs, uuid.MustParse(g))
	}
	if in.UserID != "" {
		id := uuid.MustParse(in.UserID)
		inv.UserID = &id
	}
	return inv
}

// pending stores a pending invitation of the harness account and returns it.
func (h *harness) pending(email string) store.Invitation {
	now := time.Now().UTC()
	inv := store.Invitation{
		ID: uuid.New(), AccountID: h.account.ID, AccountName: h.account.Name, SubscriptionID: h.sub.ID,
		Subscription: h.sub.Name, Application: h.sub.Application, Role: "editor", GroupIDs: []uuid.UUID{},
		Email: email, FirstName: "Jane", LastName: "Doe", Status: "pending", Generation: 1,
		ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now,
	}
	h.store.put(inv)
	return inv
}

// do sends a request; headers alternate names and values.
func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.srv.engine.ServeHTTP(w, req)
	return w
}

// api sends an authenticated JSON request with the portal token.
func (h *harness) api(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(method, path, body, append([]string{"Authorization", "Bearer " + portalToken, "Content-Type", "application/json"}, headers...)...)
}

func (h *harness) accountPath(rest string) string {
	return "/v1/accounts/" + h.account.ID.String() + rest
}

// decodeProblem checks the problem's status, code and media type and returns it.
func decodeProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code string) problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != code || p.Status != status || p.Type != problemTypePrefix+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem = %+v, want code %s", p, code)
	}
	return p
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder, status int) T {
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

var errBoom = errors.New("boom")
