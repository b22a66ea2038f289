package server

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows"
)

func (h *harness) invitationBody(extra string) string {
	return fmt.Sprintf(`{"email":"jane@acme.test","first_name":"Jane","last_name":"Doe","subscription_id":"%s","role":"editor"%s}`, h.sub.ID, extra)
}

func appError(code string, details ...any) error {
	return temporal.NewApplicationErrorWithOptions("refused: "+code, code, temporal.ApplicationErrorOptions{NonRetryable: true, Details: details})
}

func TestCreateInvitation(t *testing.T) {
	h := newHarness(t)
	body := h.invitationBody(fmt.Sprintf(`,"group_ids":["%s"],"phone":"+1 555 0100","inviter":{"name":"Ada","email":"ada@acme.test"}`, h.group.ID))
	w := h.api("POST", h.accountPath("/invitations"), body)
	got := decodeJSON[map[string]any](t, w, 201)

	id := got["id"].(string)
	if w.Header().Get("Location") != h.accountPath("/invitations/"+id) {
		t.Errorf("Location = %q", w.Header().Get("Location"))
	}
	for k, want := range map[string]any{
		"account_id": h.account.ID.String(), "email": "jane@acme.test", "first_name": "Jane", "last_name": "Doe",
		"user_id": nil, "subscription_id": h.sub.ID.String(), "application": "analytics", "role": "editor",
		"status": "pending", "sends": 0.0, "phone": "+1 555 0100",
		"group_ids": []any{h.group.ID.String()}, "delivery": map[string]any{"status": "queued", "error": nil},
		"inviter": map[string]any{"name": "Ada", "email": "ada@acme.test"},
	} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	for _, k := range []string{"expires_at", "created_at", "updated_at"} {
		if _, err := time.Parse(time.RFC3339, got[k].(string)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	u, err := url.Parse(got["invite_url"].(string))
	if err != nil || u.Host != "localhost:8080" || u.Path != "/invite" {
		t.Fatalf("invite_url = %v", got["invite_url"])
	}
	if tokID, gen, err := h.srv.signer.Verify(u.Query().Get("token")); err != nil || tokID.String() != id || gen != 1 {
		t.Errorf("token verifies to %s %d %v", tokID, gen, err)
	}

	if len(h.temporal.starts) != 1 {
		t.Fatalf("%d starts", len(h.temporal.starts))
	}
	in, opts := h.temporal.starts[0], h.temporal.startOpts[0]
	if opts.ID != "invitation:"+id || opts.TaskQueue != "onboarding" || opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Errorf("start options = %+v", opts)
	}
	if opts.StaticSummary != "Invite j…@acme.test to Acme / analytics as editor" {
		t.Errorf("summary = %q", opts.StaticSummary)
	}
	if in.Settings.TTL != 168*time.Hour || in.Settings.ReminderBefore != 48*time.Hour || in.Settings.ResendMinInterval != time.Minute {
		t.Errorf("settings = %+v", in.Settings)
	}
	if in.AccountName != "Acme" || in.SubscriptionName != "Team" || in.Inviter.Name != "Ada" || len(in.GroupIDs) != 1 || in.UserID != "" {
		t.Errorf("input = %+v", in)
	}
}

func TestCreateInvitationForExistingUser(t *testing.T) {
	h := newHarness(t)
	user := store.User{ID: uuid.New(), Email: "Old@Acme.test", FirstName: "Old", LastName: "Timer"}
	h.store.users[user.ID] = user
	body := fmt.Sprintf(`{"user_id":"%s","subscription_id":"%s","role":"admin"}`, user.ID, h.sub.ID)
	got := decodeJSON[map[string]any](t, h.api("POST", h.accountPath("/invitations"), body), 201)
	if got["user_id"] != user.ID.String() || got["email"] != "Old@Acme.test" || got["first_name"] != "Old" {
		t.Fatalf("invitation = %v", got)
	}
	decodeProblem(t, h.api("POST", h.accountPath("/invitations"),
		fmt.Sprintf(`{"user_id":"%s","subscription_id":"%s","role":"admin"}`, uuid.New(), h.sub.ID)), 404, codeNotFound)
}

func TestCreateInvitationRefusals(t *testing.T) {
	h := newHarness(t)
	path := h.accountPath("/invitations")

	decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), h.sub.ID.String(), uuid.NewString(), 1)), 404, codeNotFound)
	other, _ := h.store.CreateAccount(t.Context(), "Other")
	otherSub, _ := h.store.CreateSubscription(t.Context(), other.ID, "x", "y", 5, []string{"editor"})
	decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), h.sub.ID.String(), otherSub.ID.String(), 1)), 404, codeNotFound)

	p := decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), `"editor"`, `"owner"`, 1)), 422, codeValidation)
	if !hasField(&p, "role") || !strings.Contains(p.Errors[0].Message, "admin, editor") {
		t.Errorf("role: %+v", p.Errors)
	}
	otherGroup, _ := h.store.CreateGroup(t.Context(), other.ID, "Theirs")
	p = decodeProblem(t, h.api("POST", path, h.invitationBody(fmt.Sprintf(`,"group_ids":["%s","%s","%s"]`, h.group.ID, h.group.ID, otherGroup.ID))), 422, codeValidation)
	if len(p.Errors) != 1 || p.Errors[0].Field != "group_ids[2]" {
		t.Errorf("groups: %+v", p.Errors)
	}

	member := store.User{ID: uuid.New(), Email: "member@acme.test"}
	h.store.users[member.ID] = member
	h.store.members[h.account.ID] = []uuid.UUID{member.ID}
	decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), "jane@acme.test", "MEMBER@acme.test", 1)), 409, codeAlreadyMember)

	existing := h.pending("Jane@Acme.test")
	p = decodeProblem(t, h.api("POST", path, h.invitationBody("")), 409, codeDuplicateInvitation)
	if p.InvitationID != existing.ID.String() || !strings.Contains(p.Detail, existing.ID.String()) {
		t.Errorf("duplicate: %+v", p)
	}

	full := h.sub
	full.SeatsReserved = full.Seats
	h.store.subs[full.ID] = full
	decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), "jane@", "june@", 1)), 409, codeSeatsExhausted)
	if len(h.temporal.starts) != 0 {
		t.Errorf("a refused request started %d workflows", len(h.temporal.starts))
	}
}

func TestCreateInvitationWorkflowOutcomes(t *testing.T) {
	h := newHarness(t)
	path := h.accountPath("/invitations")
	winner := uuid.New()
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{appError(workflows.ErrSeatsExhausted), 409, codeSeatsExhausted},
		{appError(workflows.ErrAlreadyMember), 409, codeAlreadyMember},
		{appError(workflows.ErrDuplicateInvitation), 409, codeDuplicateInvitation},
		{temporal.NewApplicationError("activity failed", "SomeGoError"), 503, codeUnavailable},
		{serviceerror.NewUnavailable("connection refused"), 503, codeUnavailable},
		{serviceerror.NewDeadlineExceeded("deadline"), 503, codeUnavailable},
		{client.NewWorkflowUpdateServiceTimeoutOrCanceledError(fmt.Errorf("timeout")), 503, codeUnavailable},
	} {
		h.temporal.onStart = func(in workflows.InvitationInput) (any, error) {
			if tc.code == codeDuplicateInvitation { // the race winner committed meanwhile
				inv := h.invitationFrom(in)
				inv.ID = winner
				h.store.put(inv)
			}
			return nil, tc.err
		}
		w := h.api("POST", path, h.invitationBody(""))
		p := decodeProblem(t, w, tc.status, tc.code)
		if tc.status == 503 && w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: no Retry-After", tc.err)
		}
		if tc.code == codeDuplicateInvitation && p.InvitationID != winner.String() {
			t.Errorf("duplicate names %q", p.InvitationID)
		}
		delete(h.store.invitations, winner)
	}
}

func TestCreateInvitationIdempotency(t *testing.T) {
	h := newHarness(t)
	path := h.accountPath("/invitations")
	first := decodeJSON[map[string]any](t, h.api("POST", path, h.invitationBody(""), "Idempotency-Key", "k1"), 201)
	w := h.api("POST", path, strings.Replace(h.invitationBody(""), `"Jane"`, `"  Jane "`, 1), "Idempotency-Key", "k1")
	again := decodeJSON[map[string]any](t, w, 201)
	if again["id"] != first["id"] || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay = %v %v", again["id"], w.Header())
	}
	if len(h.temporal.starts) != 1 {
		t.Errorf("%d starts for one key", len(h.temporal.starts))
	}
	decodeProblem(t, h.api("POST", path, strings.Replace(h.invitationBody(""), "editor", "admin", 1), "Idempotency-Key", "k1"), 422, codeIdempotencyConflict)
	p := decodeProblem(t, h.api("POST", path, h.invitationBody(""), "Idempotency-Key", strings.Repeat("k", 256)), 422, codeValidation)
	if !hasField(&p, "Idempotency-Key") {
		t.Errorf("errors = %+v", p.Errors)
	}

	// A retry of a request whose workflow is still creating skips the pre-checks (which would
	// see its own invitation as a duplicate) and joins the same workflow.
	h.temporal.onStart = func(in workflows.InvitationInput) (any, error) { return nil, serviceerror.NewUnavailable("slow") }
	body := strings.Replace(h.invitationBody(""), "jane@", "joe@", 1)
	decodeProblem(t, h.api("POST", path, body, "Idempotency-Key", "k2"), 503, codeUnavailable)
	var joined string
	h.temporal.onStart = func(in workflows.InvitationInput) (any, error) {
		joined = in.InvitationID
		inv := h.invitationFrom(in)
		h.store.put(inv)
		return workflows.State{Status: workflows.StatusPending}, nil
	}
	got := decodeJSON[map[string]any](t, h.api("POST", path, body, "Idempotency-Key", "k2"), 201)
	if got["id"] != joined || joined != h.temporal.starts[len(h.temporal.starts)-2].InvitationID {
		t.Errorf("retry did not reuse the invitation id: %v %s", got["id"], joined)
	}
}

func TestInvitationReads(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("r@acme.test")
	h.store.events[inv.ID] = []store.Event{{At: time.Now(), Type: "created", Detail: "invited as editor"}}
	got := decodeJSON[map[string]any](t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()), ""), 200)
	if got["id"] != inv.ID.String() || len(got["events"].([]any)) != 1 || got["invite_url"] == nil {
		t.Fatalf("get = %v", got)
	}
	link := decodeJSON[map[string]any](t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"/link"), ""), 200)
	if link["invite_url"] != got["invite_url"] {
		t.Errorf("link = %v", link)
	}

	other, _ := h.store.CreateAccount(t.Context(), "Other")
	decodeProblem(t, h.api("GET", "/v1/accounts/"+other.ID.String()+"/invitations/"+inv.ID.String(), ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+uuid.NewString()), ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/xyz/link"), ""), 404, codeNotFound)

	inv.Status, inv.DeliveryStatus, inv.DeliveryError = "revoked", "failed", "mailbox full"
	h.store.put(inv)
	got = decodeJSON[map[string]any](t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()), ""), 200)
	if got["invite_url"] != nil || fmt.Sprint(got["delivery"]) != "map[error:mailbox full status:failed]" {
		t.Errorf("revoked = %v", got)
	}
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"/link"), ""), 409, codeInvalidState)
}

func TestInvitationActions(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("a@acme.test")
	base := h.accountPath("/invitations/" + inv.ID.String())

	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		return nil, appError(workflows.ErrRateLimited, workflows.RateLimitDetails{RetryAfter: 41200 * time.Millisecond})
	}
	w := h.api("POST", base+"/resend", "")
	decodeProblem(t, w, 429, codeRateLimited)
	if w.Header().Get("Retry-After") != "42" {
		t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
	}

	h.temporal.onUpdate = func(o updateOpts) (any, error) { return nil, appError(workflows.ErrInvalidState) }
	decodeProblem(t, h.api("POST", base+"/renew", ""), 409, codeInvalidState)

	newExpiry := time.Now().Add(240 * time.Hour).UTC().Truncate(time.Second)
	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		return workflows.State{InvitationID: inv.ID.String(), Status: workflows.StatusPending, Generation: 2, ExpiresAt: newExpiry}, nil
	}
	got := decodeJSON[invitationView](t, h.api("POST", base+"/renew", ""), 200)
	if !got.ExpiresAt.Equal(newExpiry) || got.InviteURL == nil {
		t.Fatalf("renewed = %+v", got)
	}
	u, _ := url.Parse(*got.InviteURL)
	if _, gen, _ := h.srv.signer.Verify(u.Query().Get("token")); gen != 2 {
		t.Errorf("renewed link has generation %d", gen)
	}

	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		if o.UpdateName != workflows.UpdateRevoke || o.WorkflowID != "invitation:"+inv.ID.String() || o.WaitForStage != client.WorkflowUpdateStageCompleted {
			t.Errorf("update options = %+v", o)
		}
		if req, ok := o.Args[0].(workflows.RevokeRequest); !ok || req.By != "portal" {
			t.Errorf("revoke args = %+v", o.Args)
		}
		return workflows.State{Status: workflows.StatusRevoked}, nil
	}
	if got := decodeJSON[invitationView](t, h.api("POST", base+"/revoke", ""), 200); got.Status != "revoked" || got.InviteURL != nil {
		t.Errorf("revoked = %+v", got)
	}

	// The workflow finished meanwhile: the row decides, and it is never a 500.
	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		inv.Status = "accepted"
		h.store.put(inv)
		return nil, serviceerror.NewNotFound("workflow execution already completed")
	}
	p := decodeProblem(t, h.api("POST", base+"/resend", ""), 409, codeInvalidState)
	if !strings.Contains(p.Detail, "accepted") {
		t.Errorf("detail = %q", p.Detail)
	}
	// A finished invitation is answered from its row without asking Temporal.
	calls := len(h.temporal.updates)
	decodeProblem(t, h.api("POST", base+"/revoke", ""), 409, codeInvalidState)
	if len(h.temporal.updates) != calls {
		t.Error("asked Temporal about a finished invitation")
	}
}

func TestInviteePreview(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("new@acme.test")
	inv.InviterName = "Ada"
	h.store.put(inv)
	token := h.srv.signer.Sign(inv.ID, 1)

	got := decodeJSON[map[string]any](t, h.do("GET", "/v1/invitations/preview?token="+token, ""), 200)
	for k, want := range map[string]any{"account_name": "Acme", "application": "analytics", "role": "editor",
		"email": "new@acme.test", "status": "pending", "requires_password": true,
		"inviter": map[string]any{"name": "Ada", "email": ""}} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}

	// Every bad token gets the same answer, byte for byte.
	forged := invitetokenOther().Sign(inv.ID, 1)
	var first string
	for _, bad := range []string{"", "x", token[:len(token)-1], forged, h.srv.signer.Sign(uuid.New(), 1), h.srv.signer.Sign(inv.ID, 2)} {
		w := h.do("GET", "/v1/invitations/preview?token="+url.QueryEscape(bad), "")
		decodeProblem(t, w, 404, codeTokenInvalid)
		if first == "" {
			first = w.Body.String()
		} else if w.Body.String() != first {
			t.Errorf("answers differ: %s vs %s", w.Body, first)
		}
	}

	inv.Generation = 2 // renewed: the first link is superseded
	h.store.put(inv)
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+token, ""), 410, codeInvitationExpired)
	inv.Generation, inv.Status = 1, "expired"
	h.store.put(inv)
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+token, ""), 410, codeInvitationExpired)
	inv.Status, inv.ExpiresAt = "pending", time.Now().Add(-time.Second) // the timer has not fired yet
	h.store.put(inv)
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+token, ""), 410, codeInvitationExpired)
	inv.Status = "revoked"
	h.store.put(inv)
	if got := decodeJSON[map[string]any](t, h.do("GET", "/v1/invitations/preview?token="+token, ""), 200); got["status"] != "revoked" {
		t.Errorf("revoked preview = %v", got)
	}
}

func invitetokenOther() *invitetoken.Signer {
	return invitetoken.NewSigner([]byte("another-secret-another-secret-12"))
}

func TestInviteeAccept(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("new@acme.test")
	token := h.srv.signer.Sign(inv.ID, 1)
	userID := uuid.New()
	var gotReq workflows.AcceptRequest
	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		gotReq = o.Args[0].(workflows.AcceptRequest)
		return workflows.AcceptResult{UserID: userID.String()}, nil
	}
	accept := func(body string) string { return fmt.Sprintf(`{"token":"%s",%s}`, token, body) }

	p := decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password","accept_terms":false`)), 422, codeTermsNotAccepted)
	if !hasField(&p, "accept_terms") {
		t.Errorf("errors = %+v", p.Errors)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password"`)), 422, codeTermsNotAccepted)
	p = decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"password":"short","accept_terms":true`)), 422, codePasswordPolicy)
	if !hasField(&p, "password") || !strings.Contains(p.Detail, "10 characters") {
		t.Errorf("policy = %+v", p)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":true`)), 422, codePasswordPolicy)
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", `{"token":"forged","password":"Str0ng-Password","accept_terms":true}`), 404, codeTokenInvalid)
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":"yes"`)), 422, codeValidation)
	if len(h.temporal.updates) != 0 {
		t.Fatal("a refused accept reached Temporal")
	}

	got := decodeJSON[map[string]any](t, h.do("POST", "/v1/invitations/accept", accept(`"password":"Str0ng-Password","accept_terms":true`)), 200)
	if got["status"] != "accepted" || got["user_id"] != userID.String() {
		t.Fatalf("accept = %v", got)
	}
	if gotReq.Generation != 1 || strings.Contains(gotReq.PasswordHash, "Str0ng") {
		t.Fatalf("accept request = %+v", gotReq)
	}
	if ok, err := password.Verify(gotReq.PasswordHash, "Str0ng-Password"); !ok || err != nil {
		t.Errorf("hash does not verify: %v", err)
	}

	// An existing user needs no password; one given is ignored, not hashed.
	h.store.users[uuid.New()] = store.User{Email: "NEW@acme.test"}
	decodeJSON[map[string]any](t, h.do("POST", "/v1/invitations/accept", accept(`"password":"x","accept_terms":true`)), 200)
	if gotReq.PasswordHash != "" {
		t.Error("hashed a password nobody needs")
	}

	for status, want := range map[string]int{"accepted": 409, "declined": 409, "revoked": 409, "expired": 410} {
		inv.Status = status
		h.store.put(inv)
		w := h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":true`))
		if w.Code != want {
			t.Errorf("%s: %d", status, w.Code)
		}
	}

	// The workflow rejects or has finished: its verdict, or the row's, never a 500.
	inv.Status = "pending"
	h.store.put(inv)
	h.temporal.onUpdate = func(updateOpts) (any, error) { return nil, appError(workflows.ErrInvitationExpired) }
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":true`)), 410, codeInvitationExpired)
	h.temporal.onUpdate = func(updateOpts) (any, error) {
		inv.Status = "declined"
		h.store.put(inv)
		return nil, serviceerror.NewNotFound("workflow execution already completed")
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/accept", accept(`"accept_terms":true`)), 409, codeInvalidState)
}

func TestInviteeDecline(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("d@acme.test")
	token := h.srv.signer.Sign(inv.ID, 1)
	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		if req := o.Args[0].(workflows.DeclineRequest); req.Generation != 1 || o.UpdateName != workflows.UpdateDecline {
			t.Errorf("decline = %+v", o)
		}
		return workflows.State{Status: workflows.StatusDeclined}, nil
	}
	got := decodeJSON[map[string]any](t, h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`"}`), 200)
	if fmt.Sprint(got) != "map[status:declined]" {
		t.Errorf("decline = %v", got)
	}
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{}`), 404, codeTokenInvalid)
	decodeProblem(t, h.do("POST", "/v1/invitations/decline", `{"token":"`+token+`","reason":"x"}`), 422, codeValidation)
}
