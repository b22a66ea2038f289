package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
)

// serverWith builds another server with the harness's configuration and dependencies, changed by f.
func (h *harness) serverWith(f func(*Deps)) *Server {
	d := h.deps()
	f(&d)
	return newServer(d)
}

// deadTemporal is a real Temporal client pointed at an address nothing listens on.
func deadTemporal(t *testing.T) client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c, err := client.NewLazyClient(client.Options{
		HostPort: addr, Namespace: stack.Cfg.TemporalNamespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// closedStore is a real store whose pool is closed.
func closedStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), stack.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return st
}

// within sends a request to s that gives up after d, as a client with a timeout would.
func within(t testing.TB, s *Server, d time.Duration, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return exchange(t, s, req, false)
}

// workflowExists reports whether Temporal has a workflow for the invitation id.
func workflowExists(t *testing.T, id uuid.UUID) bool {
	t.Helper()
	_, err := stack.Temporal.DescribeWorkflow(t.Context(), contract.InvitationWorkflowID(id), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// claimedID is the invitation id an Idempotency-Key of the harness account is bound to.
func (h *harness) claimedID(key string) uuid.UUID {
	h.t.Helper()
	var id uuid.UUID
	if err := stack.Store.Pool.QueryRow(context.Background(),
		`select invitation_id from idempotency_keys where account_id = $1 and key = $2`, h.account.ID, key).Scan(&id); err != nil {
		h.t.Fatalf("idempotency key %s: %v", key, err)
	}
	return id
}

// accountWorkflows lists the ids of the account's invitation workflows, by search attribute.
func (h *harness) accountWorkflows() []string {
	h.t.Helper()
	resp, err := stack.Temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("%s = '%s'", contract.SearchAccountID.GetName(), h.account.ID),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	for _, e := range resp.Executions {
		ids = append(ids, e.Execution.WorkflowId)
	}
	slices.Sort(ids)
	return ids
}

func TestCreateInvitation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := uniqueEmail("jane")
	body := h.inviteBody(email, fmt.Sprintf(`,"group_ids":["%s"],"phone":"+1 555 0100","inviter":{"name":"Ada","email":"ada@acme.test"}`, h.group.ID))
	before := time.Now()
	w := h.api("POST", h.accountPath("/invitations"), body)
	after := time.Now()
	got := decodeJSON[map[string]any](t, w, 201)

	id := got["id"].(string)
	if w.Header().Get("Location") != h.accountPath("/invitations/"+id) {
		t.Errorf("Location = %q", w.Header().Get("Location"))
	}
	if w.Header().Get("Idempotent-Replayed") != "" {
		t.Error("a first create says it is replayed")
	}
	for k, want := range map[string]any{
		"account_id": h.account.ID.String(), "email": email, "first_name": "Jane", "last_name": "Doe",
		"user_id": nil, "subscription_id": h.sub.ID.String(), "application": "analytics", "role": "editor",
		"status": "pending", "sends": 1.0, "phone": "+1 555 0100",
		"group_ids": []any{h.group.ID.String()}, "inviter": map[string]any{"name": "Ada", "email": "ada@acme.test"},
	} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	// The 201 may be read before or after the worker picked the invite email up.
	if d := fmt.Sprint(got["delivery"]); d != "map[error:<nil> status:queued]" && d != "map[error:<nil> status:sent]" {
		t.Errorf("delivery = %s", d)
	}
	times := map[string]time.Time{}
	for _, k := range []string{"expires_at", "created_at", "updated_at"} {
		v, err := time.Parse(time.RFC3339, got[k].(string))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		times[k] = v
	}
	if exp := times["expires_at"]; exp.Before(before.Add(168*time.Hour-time.Second)) || exp.After(after.Add(168*time.Hour+time.Second)) {
		t.Errorf("expires_at %s is not INVITATION_TTL (168h) after the request", exp)
	}
	u, err := url.Parse(got["invite_url"].(string))
	if err != nil || u.Scheme+"://"+u.Host != h.cfg.PublicBaseURL || u.Path != "/invite" {
		t.Fatalf("invite_url = %v", got["invite_url"])
	}
	if tokID, gen, err := h.srv.signer.Verify(u.Query().Get("token")); err != nil || tokID.String() != id || gen != 1 {
		t.Errorf("token verifies to %s %d %v", tokID, gen, err)
	}

	// The row holds what the workflow was given.
	invID := uuid.MustParse(id)
	row := h.row(invID)
	if row.AccountName != "Acme" || row.Subscription != "Team" || row.InviterName != "Ada" || row.InviterEmail != "ada@acme.test" ||
		row.UserID != nil || !slices.Equal(row.GroupIDs, []uuid.UUID{h.group.ID}) || row.Generation != 1 {
		t.Errorf("row = %+v", row)
	}

	// One workflow per invitation, on the configured task queue, with a summary that masks the address.
	desc, err := stack.Temporal.DescribeWorkflow(t.Context(), contract.InvitationWorkflowID(uuid.MustParse(id)), "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowType.Name != contract.WorkflowName || desc.TaskQueueName != h.cfg.TemporalTaskQueue {
		t.Errorf("workflow %s on %s", desc.WorkflowType.Name, desc.TaskQueueName)
	}
	if summary, err := desc.GetStaticSummary(); err != nil || summary != "Invite j…@acme.test to Acme / analytics as editor" {
		t.Errorf("summary = %q %v", summary, err)
	}
	if acc, _ := desc.TypedSearchAttributes.GetKeyword(contract.SearchAccountID); acc != h.account.ID.String() {
		t.Errorf("AccountId = %q", acc)
	}

	// The lifecycle settings reached the workflow: its expiry is the answer's, its reminder is
	// REMINDER_BEFORE (48h) ahead, and a resend waits for RESEND_MIN_INTERVAL (1m).
	var st contract.State
	eventually(t, 20*time.Second, "the invite email to go out", func() bool {
		st = workflowState(t, invID)
		return st.InviteSent && st.Delivery.Status == contract.DeliverySent
	})
	if !st.ExpiresAt.Truncate(time.Second).Equal(times["expires_at"].Truncate(time.Second)) || st.Generation != 1 {
		t.Errorf("workflow state %+v, answer's expiry %s", st, times["expires_at"])
	}
	if want := "Reminder due " + st.ExpiresAt.Add(-48*time.Hour).UTC().Format(time.RFC3339); !strings.Contains(st.WaitingFor, want) {
		t.Errorf("waiting for %q, want %q", st.WaitingFor, want)
	}
	w = h.api("POST", h.accountPath("/invitations/"+id+"/resend"), "")
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 30 || ra > 60 {
		t.Errorf("Retry-After = %q, want the rest of a minute", w.Header().Get("Retry-After"))
	}

	// The email carries the link, and the invitation then says it was sent.
	eventually(t, 10*time.Second, "the email to "+email, func() bool { return len(stack.Resend.EmailsTo(email)) == 1 })
	if text := stack.Resend.EmailsTo(email)[0].Text; !strings.Contains(text, got["invite_url"].(string)) {
		t.Errorf("email lacks %s:\n%s", got["invite_url"], text)
	}
	eventually(t, 10*time.Second, "the invitation to show the email sent", func() bool {
		v := decodeJSON[invitationView](t, h.api("GET", h.accountPath("/invitations/"+id), ""), 200)
		return v.Sends == 1 && v.Delivery != nil && v.Delivery.Status == "sent" && v.Delivery.Error == nil
	})
}

func TestCreateInvitationRefusals(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t, withSeats(2)), newHarness(t)
	path := h.accountPath("/invitations")
	email := uniqueEmail("Jane")

	decodeProblem(t, h.api("POST", path, strings.Replace(h.inviteBody(email, ""), h.sub.ID.String(), uuid.NewString(), 1)), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("POST", path, strings.Replace(h.inviteBody(email, ""), h.sub.ID.String(), other.sub.ID.String(), 1)), 404, contract.CodeNotFound)

	p := decodeProblem(t, h.api("POST", path, strings.Replace(h.inviteBody(email, ""), `"editor"`, `"owner"`, 1)), 422, contract.CodeValidation)
	if !hasField(&p, "role") || !strings.Contains(p.Errors[0].Message, "admin, editor") {
		t.Errorf("role: %+v", p.Errors)
	}
	// The account's own group, twice, is fine; the other account's is named by its index.
	p = decodeProblem(t, h.api("POST", path, h.inviteBody(email, fmt.Sprintf(`,"group_ids":["%s","%s","%s"]`, h.group.ID, h.group.ID, other.group.ID))), 422, contract.CodeValidation)
	if len(p.Errors) != 1 || p.Errors[0].Field != "group_ids[2]" {
		t.Errorf("groups: %+v", p.Errors)
	}

	// Two seats: one used by a member, one held by a pending invitation.
	memberEmail := uniqueEmail("member")
	h.member(memberEmail)
	existing := h.pending(email)
	decodeProblem(t, h.api("POST", path, h.inviteBody(strings.ToUpper(memberEmail), "")), 409, contract.CodeAlreadyMember)
	p = decodeProblem(t, h.api("POST", path, h.inviteBody(strings.ToLower(email), "")), 409, contract.CodeDuplicateInvitation)
	if p.InvitationID != existing.ID.String() || !strings.Contains(p.Detail, existing.ID.String()) {
		t.Errorf("duplicate: %+v", p)
	}
	decodeProblem(t, h.api("POST", path, h.inviteBody(uniqueEmail("june"), "")), 409, contract.CodeSeatsExhausted)

	// None of the refused requests started a workflow: the account has the two it made. A
	// workflow's search attributes are set by its first task, which an update-with-start
	// waits for, so one started by a refused request would be listed by now.
	want := []string{contract.InvitationWorkflowID(existing.ID)}
	for _, inv := range decodeJSON[invitationListView](t, h.api("GET", path+"?status=accepted", ""), 200).Items {
		want = append(want, contract.InvitationWorkflowID(inv.ID))
	}
	slices.Sort(want)
	eventually(t, 10*time.Second, "Temporal's visibility to list the account's workflows", func() bool {
		return slices.Equal(h.accountWorkflows(), want)
	})
	time.Sleep(time.Second)
	if got := h.accountWorkflows(); !slices.Equal(got, want) {
		t.Errorf("the account's workflows are %v, want %v", got, want)
	}
	if s := h.subscription(); *s.SeatsUsed != 1 || *s.SeatsReserved != 1 {
		t.Errorf("subscription = %+v", s)
	}
}

// TestCreateInvitationWorkflowOutcomes: the workflow's refusals reach the client with their
// code. A request under an Idempotency-Key that the API refused is replayed without the API's
// pre-checks (the key names an invitation that does not exist), so the replay starts the
// workflow, whose create meets the same rule in its transaction.
func TestCreateInvitationWorkflowOutcomes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/invitations")
	memberEmail := uniqueEmail("member")
	h.member(memberEmail)
	held := h.pending(uniqueEmail("held"))
	full := decodeJSON[subscriptionView](t, h.api("POST", h.accountPath("/subscriptions"),
		`{"application":"crm","name":"Full","seats":1,"roles":["editor"]}`), 201)
	h.create(strings.Replace(h.inviteBody(uniqueEmail("seat"), ""), h.sub.ID.String(), full.ID.String(), 1))

	for _, tc := range []struct {
		name, body string
		code       contract.Code
		names      uuid.UUID
	}{
		{"seats", strings.Replace(h.inviteBody(uniqueEmail("june"), ""), h.sub.ID.String(), full.ID.String(), 1), contract.CodeSeatsExhausted, uuid.Nil},
		{"member", h.inviteBody(strings.ToUpper(memberEmail), ""), contract.CodeAlreadyMember, uuid.Nil},
		{"duplicate", h.inviteBody(strings.ToUpper(held.Email), ""), contract.CodeDuplicateInvitation, held.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "outcome-" + tc.name
			decodeProblem(t, h.api("POST", path, tc.body, "Idempotency-Key", key), 409, tc.code)
			claimed := h.claimedID(key)
			if workflowExists(t, claimed) {
				t.Fatal("the API's pre-check started a workflow")
			}
			p := decodeProblem(t, h.api("POST", path, tc.body, "Idempotency-Key", key), 409, tc.code)
			if !workflowExists(t, claimed) {
				t.Fatal("the replay did not reach the workflow")
			}
			if tc.names != uuid.Nil && (p.InvitationID != tc.names.String() || !strings.Contains(p.Detail, tc.names.String())) {
				t.Errorf("duplicate names %q: %s", p.InvitationID, p.Detail)
			}
			if _, err := stack.Store.GetInvitation(t.Context(), claimed); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused create left invitation %s (%v)", claimed, err)
			}
		})
	}
	if s := h.subscription(); *s.SeatsUsed != 1 || *s.SeatsReserved != 1 {
		t.Errorf("subscription = %+v", s)
	}

	// Temporal unreachable: 503 with Retry-After, and nothing recorded.
	dead := h.serverWith(func(d *Deps) { d.Temporal = deadTemporal(t) })
	email := uniqueEmail("unreachable")
	w := within(t, dead, 5*time.Second, "POST", path, h.inviteBody(email, ""), "Authorization", "Bearer "+portalToken, "Content-Type", "application/json")
	decodeProblem(t, w, 503, contract.CodeUnavailable)
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if l := decodeJSON[invitationListView](t, h.api("GET", path+"?email="+url.QueryEscape(email), ""), 200); len(l.Items) != 0 {
		t.Errorf("an unreachable Temporal left %+v", l.Items)
	}
}

func TestCreateInvitationIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/invitations")
	email := uniqueEmail("jane")
	body := h.inviteBody(email, "")
	first := h.create(body, "Idempotency-Key", "k1")
	w := h.api("POST", path, strings.Replace(body, `"Jane"`, `"  Jane "`, 1), "Idempotency-Key", "k1")
	again := decodeJSON[invitationView](t, w, 201)
	if again.ID != first.ID || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay = %v %v", again.ID, w.Header())
	}
	decodeProblem(t, h.api("POST", path, strings.Replace(body, "editor", "admin", 1), "Idempotency-Key", "k1"), 422, contract.CodeIdempotencyConflict)
	p := decodeProblem(t, h.api("POST", path, body, "Idempotency-Key", strings.Repeat("k", 256)), 422, contract.CodeValidation)
	if !hasField(&p, "Idempotency-Key") {
		t.Errorf("errors = %+v", p.Errors)
	}
	// One invitation and one workflow for the key.
	if got := h.accountWorkflows(); len(got) > 1 {
		t.Errorf("workflows %v for one key", got)
	}
	if l := decodeJSON[invitationListView](t, h.api("GET", path, ""), 200); len(l.Items) != 1 || l.Items[0].ID != first.ID {
		t.Errorf("invitations %+v", l.Items)
	}

	// A request that failed before its workflow started (Temporal unreachable) bound its key to
	// an invitation id; the retry skips the pre-checks and creates that invitation.
	dead := h.serverWith(func(d *Deps) { d.Temporal = deadTemporal(t) })
	body = h.inviteBody(uniqueEmail("joe"), "")
	decodeProblem(t, within(t, dead, 5*time.Second, "POST", path, body, "Authorization", "Bearer "+portalToken,
		"Content-Type", "application/json", "Idempotency-Key", "k2"), 503, contract.CodeUnavailable)
	claimed := h.claimedID("k2")
	got := h.create(body, "Idempotency-Key", "k2")
	if got.ID != claimed || got.Status != "pending" {
		t.Errorf("retry created %s (%s), want the claimed %s", got.ID, got.Status, claimed)
	}
}

func TestInvitationReads(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	email := uniqueEmail("r")
	failEmailsTo(t, email, resendtest.Fault{Status: 422, Message: "mailbox full"})
	inv := h.pending(email)
	base := h.accountPath("/invitations/" + inv.ID.String())

	got := decodeJSON[invitationDetailView](t, h.api("GET", base, ""), 200)
	if got.ID != inv.ID || got.InviteURL == nil || len(got.Events) == 0 || got.Events[0].Type != "created" ||
		!strings.HasPrefix(got.Events[0].Detail, "invited as editor") {
		t.Fatalf("get = %+v", got)
	}
	link := decodeJSON[linkView](t, h.api("GET", base+"/link", ""), 200)
	if link.InviteURL != *got.InviteURL || !link.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("link = %+v", link)
	}

	decodeProblem(t, h.api("GET", other.accountPath("/invitations/"+inv.ID.String()), ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+uuid.NewString()), ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/xyz/link"), ""), 404, contract.CodeNotFound)

	// Resend refuses the invite email for good: the invitation says so, revoked or not.
	eventually(t, 20*time.Second, "the failed delivery to be recorded", func() bool {
		return h.row(inv.ID).DeliveryStatus == "failed"
	})
	decodeJSON[invitationView](t, h.api("POST", base+"/revoke", ""), 200)
	got = decodeJSON[invitationDetailView](t, h.api("GET", base, ""), 200)
	if got.Status != "revoked" || got.InviteURL != nil || got.Delivery == nil || got.Delivery.Status != "failed" ||
		got.Delivery.Error == nil || !strings.Contains(*got.Delivery.Error, "mailbox full") {
		t.Errorf("revoked = %+v (delivery %+v)", got, got.Delivery)
	}
	decodeProblem(t, h.api("GET", base+"/link", ""), 409, contract.CodeInvalidState)
}

func TestInvitationActions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("a"))
	base := h.accountPath("/invitations/" + inv.ID.String())

	// Just sent: a resend waits for RESEND_MIN_INTERVAL.
	w := h.api("POST", base+"/resend", "")
	decodeProblem(t, w, 429, contract.CodeRateLimited)
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
	}
	decodeProblem(t, h.api("POST", base+"/renew", ""), 409, contract.CodeInvalidState)

	// Revoke names who did it (the API token's name) in the invitation's story.
	got := decodeJSON[invitationView](t, h.api("POST", base+"/revoke", ""), 200)
	if got.Status != "revoked" || got.InviteURL != nil {
		t.Errorf("revoked = %+v", got)
	}
	events := decodeJSON[invitationDetailView](t, h.api("GET", base, ""), 200).Events
	if i := slices.IndexFunc(events, func(e eventView) bool { return e.Type == "revoked" }); i < 0 || events[i].Detail != "revoked by bootstrap" {
		t.Errorf("events = %+v", events)
	}
	if s := h.subscription(); *s.SeatsReserved != 0 {
		t.Errorf("subscription = %+v", s)
	}

	// A finished invitation is answered from its row without asking Temporal: a server whose
	// Temporal is unreachable answers the same.
	dead := h.serverWith(func(d *Deps) { d.Temporal = deadTemporal(t) })
	for _, action := range []string{"resend", "renew", "revoke"} {
		w := within(t, dead, 5*time.Second, "POST", base+"/"+action, "", "Authorization", "Bearer "+portalToken)
		if p := decodeProblem(t, w, 409, contract.CodeInvalidState); !strings.Contains(p.Detail, "revoked") {
			t.Errorf("%s: detail %q", action, p.Detail)
		}
	}
}

// TestRenew: an expired invitation renewed gets a second link (generation 2) and a new expiry,
// which the workflow holds too; the first link is superseded.
func TestRenew(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shortTTL())
	inv := h.expired(uniqueEmail("late"))
	oldToken := h.token(inv)
	before := time.Now()
	got := decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+inv.ID.String()+"/renew"), ""), 200)
	if got.Status != "pending" || got.InviteURL == nil || got.ExpiresAt.Before(before.Add(h.cfg.InvitationTTL-time.Second)) {
		t.Fatalf("renewed = %+v", got)
	}
	u, _ := url.Parse(*got.InviteURL)
	if id, gen, err := h.srv.signer.Verify(u.Query().Get("token")); err != nil || id != inv.ID || gen != 2 {
		t.Errorf("renewed link: %s generation %d %v", id, gen, err)
	}
	if st := workflowState(t, inv.ID); st.Generation != 2 || !st.ExpiresAt.Truncate(time.Microsecond).Equal(got.ExpiresAt) || st.Status != contract.StatusPending {
		t.Errorf("workflow state %+v, answer %s", st, got.ExpiresAt)
	}
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+oldToken, ""), 410, contract.CodeInvitationExpired)
	if s := h.subscription(); *s.SeatsReserved != 1 {
		t.Errorf("subscription = %+v", s)
	}
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+inv.ID.String()+"/revoke"), ""), 200)
}

// TestTerminatedWorkflow: when an invitation's workflow is gone (support terminated it), its
// row answers every use of its link and every action but revoke with a 409, never a 5xx; a
// revoke, which needs no workflow, closes the row and releases its seat.
func TestTerminatedWorkflow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("stuck"))
	token := h.token(inv)
	if err := stack.Temporal.TerminateWorkflow(t.Context(), contract.InvitationWorkflowID(inv.ID), "", "test: terminated by support"); err != nil {
		t.Fatal(err)
	}
	base := h.accountPath("/invitations/" + inv.ID.String())
	if p := decodeProblem(t, h.api("POST", base+"/resend", ""), 409, contract.CodeInvalidState); !strings.Contains(p.Detail, "pending") {
		t.Errorf("resend: detail %q", p.Detail)
	}
	decodeProblem(t, h.accept(token), 409, contract.CodeInvalidState)
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`"}`), 409, contract.CodeInvalidState)
	if got := h.row(inv.ID); got.Status != "pending" || got.UserID != nil {
		t.Errorf("row = %+v", got)
	}
	before := *h.subscription().SeatsReserved
	if got := decodeJSON[invitationView](t, h.api("POST", base+"/revoke", ""), 200); got.Status != contract.StatusRevoked {
		t.Errorf("revoke answered %+v", got)
	}
	if got := h.row(inv.ID); got.Status != "revoked" {
		t.Errorf("after the revoke, row = %+v", got)
	}
	if after := *h.subscription().SeatsReserved; after != before-1 {
		t.Errorf("seats reserved %d after the revoke, %d before: its seat is not released", after, before)
	}
	decodeProblem(t, h.api("POST", base+"/revoke", ""), 409, contract.CodeInvalidState)
}

func TestInviteePreview(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := uniqueEmail("new")
	created := h.create(h.inviteBody(email, `,"inviter":{"name":"Ada","email":"ada@acme.test"}`))
	u, _ := url.Parse(*created.InviteURL)
	token := u.Query().Get("token")

	w := h.do("GET", "/v1/invitations/preview?token="+url.QueryEscape(token), "")
	got := decodeJSON[map[string]any](t, w, 200)
	for k, want := range map[string]any{"account_name": "Acme", "application": "analytics", "role": "editor",
		"email": email, "first_name": "Jane", "last_name": "Doe", "status": "pending", "requires_password": true,
		"expires_at": created.ExpiresAt.Format(time.RFC3339Nano), "inviter": map[string]any{"name": "Ada", "email": "ada@acme.test"}} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	plain := h.pending(uniqueEmail("plain"))
	if got := decodeJSON[map[string]any](t, h.do("GET", "/v1/invitations/preview?token="+h.token(plain), ""), 200); got["inviter"] != nil {
		t.Errorf("inviter = %v, want null", got["inviter"])
	}

	// Past its expiry, before the workflow's timer has recorded it, the link is expired: the
	// API does not trust a pending row whose time is up.
	h.srv.now = func() time.Time { return time.Now().Add(h.cfg.InvitationTTL + time.Minute) }
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+url.QueryEscape(token), ""), 410, contract.CodeInvitationExpired)
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", `{"token":"`+token+`","password":"Str0ng-Password","accept_terms":true}`), 410, contract.CodeInvitationExpired)
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`"}`), 410, contract.CodeInvitationExpired)
	if p := decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+created.ID.String()+"/link"), ""), 409, contract.CodeInvalidState); !strings.Contains(p.Detail, "expired") {
		t.Errorf("link: %q", p.Detail)
	}
	h.srv.now = time.Now
	if got := h.row(created.ID); got.Status != "pending" {
		t.Errorf("status %s", got.Status)
	}
}

func TestInviteeAccept(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := uniqueEmail("New.Person")
	inv := h.pending(email)
	token := h.token(inv)
	accept := func(body string) string { return fmt.Sprintf(`{"token":%q,%s}`, token, body) }

	p := decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password","accept_terms":false`)), 422, contract.CodeTermsNotAccepted)
	if !hasField(&p, "accept_terms") {
		t.Errorf("errors = %+v", p.Errors)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password"`)), 422, contract.CodeTermsNotAccepted)
	p = decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"short","accept_terms":true`)), 422, contract.CodePasswordPolicy)
	if !hasField(&p, "password") || !strings.Contains(p.Detail, "10 characters") {
		t.Errorf("policy = %+v", p)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":true`)), 422, contract.CodePasswordPolicy)
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", `{"token":"forged","password":"Str0ng-Password","accept_terms":true}`), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":"yes"`)), 422, contract.CodeValidation)
	if got := h.row(inv.ID); got.Status != "pending" {
		t.Fatalf("a refused accept changed the invitation: %s", got.Status)
	}
	if exists, err := stack.Store.UserExistsWithEmail(t.Context(), email); err != nil || exists {
		t.Fatalf("a refused accept made a user (%v)", err)
	}

	got := decodeJSON[map[string]any](t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password","accept_terms":true`)), 200)
	row := h.row(inv.ID)
	if got["status"] != "accepted" || row.Status != "accepted" || row.UserID == nil || got["user_id"] != row.UserID.String() {
		t.Fatalf("accept = %v, row %+v", got, row)
	}
	userID := *row.UserID
	// The workflow got a hash, never the password.
	hash := passwordHash(t, userID)
	if strings.Contains(hash, "Str0ng") {
		t.Fatal("the password is stored in clear")
	}
	if ok, err := password.Verify(hash, "Str0ng-Password"); !ok || err != nil {
		t.Errorf("hash does not verify: %v", err)
	}

	// An existing user signs in with their password: another is refused, theirs accepts, and
	// it is verified, not hashed again (the stored hash stays).
	other := newHarness(t)
	again := other.pending(strings.ToUpper(email))
	decodeProblem(t, other.do("POST", "/v1/invitations/accept", fmt.Sprintf(`{"token":%q,"password":"x","accept_terms":true}`, other.token(again))),
		422, contract.CodeCredentialsInvalid)
	got = decodeJSON[map[string]any](t, other.do("POST", "/v1/invitations/accept", fmt.Sprintf(`{"token":%q,"password":"Str0ng-Password","accept_terms":true}`, other.token(again))), 200)
	if got["user_id"] != userID.String() || passwordHash(t, userID) != hash {
		t.Errorf("existing user's accept = %v; hash changed: %v", got, passwordHash(t, userID) != hash)
	}

	// Invited by user id, the invitation takes the user's address and names.
	third := newHarness(t)
	byID := third.create(fmt.Sprintf(`{"user_id":"%s","subscription_id":"%s","role":"admin"}`, userID, third.sub.ID))
	if byID.UserID == nil || *byID.UserID != userID || byID.Email != email || byID.FirstName != "Jane" || byID.LastName != "Doe" {
		t.Errorf("invitation by user id = %+v", byID)
	}
	decodeProblem(t, third.api("POST", third.accountPath("/invitations"),
		fmt.Sprintf(`{"user_id":"%s","subscription_id":"%s","role":"admin"}`, uuid.New(), third.sub.ID)), 404, contract.CodeNotFound)
}

func passwordHash(t *testing.T, userID uuid.UUID) string {
	t.Helper()
	var hash string
	if err := stack.Store.Pool.QueryRow(context.Background(), `select coalesce(password_hash, '') from users where id = $1`, userID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	return hash
}

func TestInviteeDecline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("d"))
	token := h.token(inv)
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{}`), 404, contract.CodeTokenInvalid)
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`","reason":"x"}`), 422, contract.CodeValidation)
	w := h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`"}`)
	if w.Code != 200 || w.Body.String() != `{"status":"declined"}` {
		t.Errorf("decline = %d %s", w.Code, w.Body)
	}
	if got := h.row(inv.ID); got.Status != "declined" {
		t.Errorf("status %s", got.Status)
	}
	if s := h.subscription(); *s.SeatsReserved != 0 {
		t.Errorf("subscription = %+v", s)
	}
	// The same decline again is a retry: it gets the first answer, and nothing changes.
	if w := h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`"}`); w.Code != 200 || w.Body.String() != `{"status":"declined"}` {
		t.Errorf("repeated decline = %d %s", w.Code, w.Body)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", `{"token":"`+token+`","password":"Correct-Horse-42","accept_terms":true}`), 409, contract.CodeInvalidState)
}

// A create whose Postgres step outlasted its budget ends its workflow run with nothing recorded
// (503). Temporal keeps answering that outcome to the create's update id, even after the run
// closed, so a retry under the same Idempotency-Key must start a fresh run rather than be
// handed the old failure for good. Here the subscription's row is locked for longer than the
// create's 10 s budget, so the first run's create fails; the request (or its retry) then
// succeeds once the lock is gone, and exactly one invitation holds one seat.
func TestCreateAfterATimedOutCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/invitations")
	body := h.inviteBody(uniqueEmail("slow"), "")

	tx, err := stack.Store.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `select 1 from subscriptions where id = $1 for update`, h.sub.ID); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(11 * time.Second) // past the create's 10 s schedule-to-close budget
		_ = tx.Rollback(context.Background())
		close(released)
	}()

	var w *httptest.ResponseRecorder
	for attempt := 0; ; attempt++ {
		w = h.api("POST", path, body, "Idempotency-Key", "timed-out-create")
		if w.Code != 503 || attempt == 5 {
			break
		}
		<-released
	}
	inv := decodeJSON[invitationView](t, w, 201)
	if inv.Status != "pending" {
		t.Fatalf("created %+v", inv)
	}
	<-released
	if l := decodeJSON[invitationListView](t, h.api("GET", path, ""), 200); len(l.Items) != 1 || l.Items[0].ID != inv.ID {
		t.Errorf("invitations %+v, want the one created", l.Items)
	}
	var reserved int
	if err := stack.Store.Pool.QueryRow(t.Context(), `select seats_reserved from subscriptions where id = $1`, h.sub.ID).Scan(&reserved); err != nil || reserved != 1 {
		t.Errorf("seats_reserved = %d (%v), want 1", reserved, err)
	}
}
