package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/client"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
)

// The error codes of CONTRACT.md, each produced through HTTP at least once.

// preview is the invitee's view of an invitation.
type preview struct {
	AccountName      string    `json:"account_name"`
	Application      string    `json:"application"`
	Role             string    `json:"role"`
	Email            string    `json:"email"`
	Status           string    `json:"status"`
	ExpiresAt        time.Time `json:"expires_at"`
	RequiresPassword bool      `json:"requires_password"`
}

// previewOf is the invitee's preview of token (the generated client).
func previewOf(t *testing.T, token string) response {
	t.Helper()
	res, err := invitee().typed(t).PreviewInvitationWithResponse(context.Background(), &client.PreviewInvitationParams{Token: token})
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	return asResponse(t, "preview", res.HTTPResponse, res.Body)
}

// decline declines token (the generated client).
func decline(t *testing.T, token string) response {
	t.Helper()
	res, err := invitee().typed(t).DeclineInvitationWithResponse(context.Background(), client.DeclineRequest{Token: token})
	if err != nil {
		t.Fatalf("decline: %v", err)
	}
	return asResponse(t, "decline", res.HTTPResponse, res.Body)
}

// action runs resend, renew or revoke on an invitation of f (the generated client; a name or
// an id the document has no operation for is sent as is).
func (f fixture) action(t *testing.T, c apiClient, id, name string) response {
	t.Helper()
	acc, errA := uuid.Parse(f.AccountID)
	inv, errI := uuid.Parse(id)
	if errA != nil || errI != nil {
		return c.do(t, "POST", f.path("/invitations/"+id+"/"+name), nil)
	}
	ctx, tc := context.Background(), c.typed(t)
	var (
		res  *http.Response
		body []byte
		err  error
	)
	switch name {
	case "resend":
		var r *client.ResendInvitationResponse
		if r, err = tc.ResendInvitationWithResponse(ctx, acc, inv, nil); err == nil {
			res, body = r.HTTPResponse, r.Body
		}
	case "renew":
		var r *client.RenewInvitationResponse
		if r, err = tc.RenewInvitationWithResponse(ctx, acc, inv); err == nil {
			res, body = r.HTTPResponse, r.Body
		}
	case "revoke":
		var r *client.RevokeInvitationResponse
		if r, err = tc.RevokeInvitationWithResponse(ctx, acc, inv); err == nil {
			res, body = r.HTTPResponse, r.Body
		}
	default:
		return c.do(t, "POST", f.path("/invitations/"+id+"/"+name), nil)
	}
	noErr(t, name, err)
	return asResponse(t, name, res, body)
}

// TestErrorsUnauthorized: a portal route without a usable API token answers 401 whatever is
// wrong with the header; the invitee routes need no token at all.
func TestErrorsUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	inv := f.createInvitation(t, portal(), unique("Unauth"))
	routes := []struct{ method, path string }{
		{"GET", f.path("/invitations")},
		{"GET", f.path("/invitations/" + inv.ID)},
		{"POST", f.path("/invitations/" + inv.ID + "/revoke")},
		{"GET", f.path("/subscriptions/" + f.SubscriptionID)},
		{"GET", f.path("/users")},
		{"POST", "/v1/accounts"},
		{"GET", "/v1/accounts/" + uuid.NewString() + "/users"}, // 401 before any 404
	}
	headers := []struct{ name, value string }{
		{"no header", ""},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("portal:"+stack.Token))},
		{"token without scheme", stack.Token},
		{"scheme without token", "Bearer"},
		{"scheme and blank", "Bearer    "},
		{"unknown token", "Bearer unknown-" + randomHex(16)},
		{"token with bad characters", "Bearer " + stack.Token + "\"<>"},
		{"almost the token", "Bearer " + stack.Token[:len(stack.Token)-1]},
	}
	for _, rt := range routes {
		for _, h := range headers {
			req := portal().request(t, rt.method, rt.path, nil)
			req.Header.Del("Authorization")
			if h.value != "" {
				req.Header.Set("Authorization", h.value)
			}
			r := send(t, req)
			if r.Status != 401 {
				t.Errorf("%s %s with %s: status %d, want 401; body %s", rt.method, rt.path, h.name, r.Status, r.Body)
				continue
			}
			r.expectProblem(t, 401, "unauthorized")
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %s: WWW-Authenticate %q", rt.path, h.name, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// Nothing happened: the revoke above was refused.
	if got := f.invitation(t, portal(), inv.ID); got.Status != "pending" {
		t.Fatalf("status %s after unauthorised revokes", got.Status)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	req := portal().request(t, "GET", f.path("/users"), nil)
	req.Header.Set("Authorization", "bearer "+stack.Token)
	send(t, req).expect(t, 200)

	// The invitee routes need no token.
	token := tokenOf(t, *inv.InviteURL)
	previewOf(t, token).expect(t, 200)
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42"}).
		expectProblem(t, 422, "terms_not_accepted")
}

// TestErrorsForbidden: a token scoped to account A is refused on every portal route of
// account B (and cannot create accounts or subscriptions), and works on A's other routes.
func TestErrorsForbidden(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t, 5), newFixture(t, 5)
	accountA := uuid.MustParse(a.AccountID)
	scoped := scopedClient(t, a)
	invB := b.createInvitation(t, portal(), unique("Bee"))

	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"GET", b.path("/subscriptions/" + b.SubscriptionID), nil},
		{"POST", b.path("/subscriptions"), map[string]any{"application": "X", "name": "Y", "seats": 1, "roles": []string{"r"}}},
		{"POST", b.path("/groups"), map[string]any{"name": "Intruders"}},
		{"POST", b.path("/invitations"), b.inviteBody(unique("Intruder"))},
		{"GET", b.path("/invitations"), nil},
		{"GET", b.path("/invitations/" + invB.ID), nil},
		{"POST", b.path("/invitations/" + invB.ID + "/resend"), nil},
		{"GET", b.path("/invitations/" + invB.ID + "/link"), nil},
		{"POST", b.path("/invitations/" + invB.ID + "/renew"), nil},
		{"POST", b.path("/invitations/" + invB.ID + "/revoke"), nil},
		{"GET", b.path("/users"), nil},
		// An unknown account is forbidden too, so a scoped token cannot probe which exist.
		{"GET", "/v1/accounts/" + uuid.NewString() + "/users", nil},
		// A scoped token has no business creating accounts.
		{"POST", "/v1/accounts", map[string]any{"name": "Sneaky"}},
	} {
		r := scoped.do(t, rt.method, rt.path, rt.body)
		if r.Status != 403 {
			t.Errorf("%s %s with A's token: status %d, want 403; body %s", rt.method, rt.path, r.Status, r.Body)
			continue
		}
		r.expectProblem(t, 403, "forbidden")
	}
	// B is untouched: one invitation, still pending, one seat held, no group added.
	var list struct{ Items []invitation }
	portal().do(t, "GET", b.path("/invitations"), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Status != "pending" {
		t.Fatalf("B's invitations after the refused calls: %+v", list.Items)
	}
	if s := b.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("B's subscription %+v", s)
	}
	portal().do(t, "POST", b.path("/groups"), map[string]any{"name": "Intruders"}).expect(t, 201)

	// On A the same token works on every route but the subscriptions' creation: the seats an
	// account has are what the portal sold it.
	scoped.do(t, "GET", a.path("/subscriptions/"+a.SubscriptionID), nil).expect(t, 200)
	scoped.do(t, "POST", a.path("/subscriptions"), map[string]any{"application": "X", "name": "Y", "seats": 1, "roles": []string{"r"}}).
		expectProblem(t, 403, "forbidden")
	var subs int
	if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from subscriptions where account_id = $1`, accountA).Scan(&subs); err != nil || subs != 1 {
		t.Fatalf("%d subscriptions on A after the refused create (%v), want its one", subs, err)
	}
	scoped.do(t, "POST", a.path("/groups"), map[string]any{"name": "Insiders"}).expect(t, 201)
	invA := a.createInvitation(t, scoped, unique("Ay"))
	scoped.do(t, "GET", a.path("/invitations"), nil).expect(t, 200)
	a.invitation(t, scoped, invA.ID)
	scoped.do(t, "GET", a.path("/invitations/"+invA.ID+"/link"), nil).expect(t, 200)
	a.action(t, scoped, invA.ID, "resend").expectProblem(t, 429, "rate_limited") // authorised, but just sent
	a.action(t, scoped, invA.ID, "renew").expectProblem(t, 409, "invalid_state") // authorised, but pending
	var revoked invitation
	a.action(t, scoped, invA.ID, "revoke").expect(t, 200).decode(t, &revoked)
	if revoked.Status != "revoked" {
		t.Fatalf("revoke with the scoped token answered %+v", revoked)
	}
	scoped.do(t, "GET", a.path("/users"), nil).expect(t, 200)
	// B's invitation is not reachable through A's path either.
	scoped.do(t, "GET", a.path("/invitations/"+invB.ID), nil).expectProblem(t, 404, "not_found")
	scoped.do(t, "POST", a.path("/invitations/"+invB.ID+"/revoke"), nil).expectProblem(t, 404, "not_found")
}

// TestErrorsNotFound: unknown or foreign accounts, subscriptions, invitations and users, ids
// that are not UUIDs, and paths no route matches.
func TestErrorsNotFound(t *testing.T) {
	t.Parallel()
	f, other := newFixture(t, 3), newFixture(t, 3)
	otherInv := other.createInvitation(t, portal(), unique("Other"))
	unknown := uuid.NewString()

	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/accounts/" + unknown + "/users"},
		{"GET", "/v1/accounts/" + unknown + "/invitations"},
		{"GET", "/v1/accounts/" + unknown + "/subscriptions/" + f.SubscriptionID},
		{"POST", "/v1/accounts/" + unknown + "/groups"},
		{"GET", "/v1/accounts/not-a-uuid/users"},
		{"GET", "/v1/accounts/" + strings.ToUpper(strings.ReplaceAll(f.AccountID, "-", "")) + "/users"},
		{"GET", "/v1/accounts/{" + f.AccountID + "}/users"},
		{"GET", f.path("/subscriptions/" + unknown)},
		{"GET", f.path("/subscriptions/" + other.SubscriptionID)},
		{"GET", f.path("/subscriptions/nope")},
		{"GET", f.path("/invitations/" + unknown)},
		{"GET", f.path("/invitations/" + unknown + "/link")},
		{"POST", f.path("/invitations/" + unknown + "/resend")},
		{"POST", f.path("/invitations/" + unknown + "/renew")},
		{"POST", f.path("/invitations/" + unknown + "/revoke")},
		{"GET", f.path("/invitations/" + otherInv.ID)},
		{"GET", f.path("/invitations/" + otherInv.ID + "/link")},
		{"POST", f.path("/invitations/" + otherInv.ID + "/resend")},
		{"POST", f.path("/invitations/" + otherInv.ID + "/renew")},
		{"POST", f.path("/invitations/" + otherInv.ID + "/revoke")},
		{"GET", f.path("/invitations/12345")},
		{"POST", f.path("/invitations/" + otherInv.ID[:35] + "/revoke")},
		{"GET", "/v1/nope"},
		{"GET", "/v2/accounts/" + f.AccountID + "/users"},
		{"GET", f.path("/nope")},
		{"GET", f.path("/users/")},
		{"POST", f.path("/invitations/" + otherInv.ID + "/accept")},
		{"GET", "/"},
	} {
		r := portal().do(t, p.method, p.path, nil)
		if r.Status != 404 {
			t.Errorf("%s %s: status %d, want 404; body %s", p.method, p.path, r.Status, r.Body)
			continue
		}
		r.expectProblem(t, 404, "not_found")
	}
	if got := other.invitation(t, portal(), otherInv.ID); got.Status != "pending" {
		t.Fatalf("the other account's invitation is %s after calls through the wrong account", got.Status)
	}

	// A subscription or user named in the body that is unknown, or of another account.
	email := unique("Nobody")
	body := f.inviteBody(email)
	body["subscription_id"] = unknown
	portal().do(t, "POST", f.path("/invitations"), body).expectProblem(t, 404, "not_found")
	body["subscription_id"] = other.SubscriptionID
	body["group_ids"] = []string{}
	portal().do(t, "POST", f.path("/invitations"), body).expectProblem(t, 404, "not_found")
	portal().do(t, "POST", f.path("/invitations"), map[string]any{
		"user_id": unknown, "subscription_id": f.SubscriptionID, "role": "viewer",
	}).expectProblem(t, 404, "not_found")
	// Nothing was left behind.
	var list struct{ Items []invitation }
	portal().do(t, "GET", f.path("/invitations"), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused creates left invitations %+v", list.Items)
	}
	if s := other.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("the other subscription %+v: a refused create took a seat", s)
	}
}

// TestErrorsValidation: every bad field is named in errors[].field.
func TestErrorsValidation(t *testing.T) {
	t.Parallel()
	f, other := newFixture(t, 3), newFixture(t, 3)
	with := func(changes map[string]any, drop ...string) map[string]any {
		b := f.inviteBody(unique("Val"))
		for k, v := range changes {
			b[k] = v
		}
		for _, k := range drop {
			delete(b, k)
		}
		return b
	}
	invitations := f.path("/invitations")
	for _, tc := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"missing email", with(nil, "email"), []string{"email"}},
		{"empty email", with(map[string]any{"email": ""}), []string{"email"}},
		{"invalid email", with(map[string]any{"email": "not-an-email"}), []string{"email"}},
		{"email without domain", with(map[string]any{"email": "jane@"}), []string{"email"}},
		{"email with display name", with(map[string]any{"email": "Jane Doe <jane@example.test>"}), []string{"email"}},
		{"email with CRLF", with(map[string]any{"email": "jane@example.test\r\nBcc: x@example.test"}), []string{"email"}},
		{"user_id and email", map[string]any{"user_id": uuid.NewString(), "email": unique("Both"),
			"subscription_id": f.SubscriptionID, "role": "viewer"}, []string{"email"}},
		{"user_id and names", map[string]any{"user_id": uuid.NewString(), "first_name": "A", "last_name": "B",
			"subscription_id": f.SubscriptionID, "role": "viewer"}, []string{"first_name", "last_name"}},
		{"user_id not a UUID", map[string]any{"user_id": "42", "subscription_id": f.SubscriptionID, "role": "viewer"}, []string{"user_id"}},
		{"missing names", with(nil, "first_name", "last_name"), []string{"first_name", "last_name"}},
		{"missing role", with(nil, "role"), []string{"role"}},
		{"blank role", with(map[string]any{"role": "   "}), []string{"role"}},
		{"role not in subscription", with(map[string]any{"role": "owner"}), []string{"role"}},
		{"role in another case", with(map[string]any{"role": "Editor"}), []string{"role"}},
		{"missing subscription", with(nil, "subscription_id"), []string{"subscription_id"}},
		{"subscription not a UUID", with(map[string]any{"subscription_id": "sub-1"}), []string{"subscription_id"}},
		{"unknown group", with(map[string]any{"group_ids": []string{uuid.NewString()}}), []string{"group_ids[0]"}},
		{"group of another account", with(map[string]any{"group_ids": []string{f.GroupID, other.GroupID}}), []string{"group_ids[1]"}},
		{"group not a UUID", with(map[string]any{"group_ids": []string{f.GroupID, "g"}}), []string{"group_ids[1]"}},
		{"bad inviter email", with(map[string]any{"inviter": map[string]any{"name": "Ada", "email": "ada"}}), []string{"inviter.email"}},
		{"inviter without name", with(map[string]any{"inviter": map[string]any{"email": "ada@acme.test"}}), []string{"inviter.name"}},
		{"bad phone", with(map[string]any{"phone": "call me maybe"}), []string{"phone"}},
		{"several at once", with(map[string]any{"email": "x"}, "role", "last_name"), []string{"email", "role", "last_name"}},
		{"unknown field", with(map[string]any{"emial": "typo@example.test"}), []string{"emial"}},
		{"unknown nested field", with(map[string]any{"inviter": map[string]any{"name": "Ada", "email": "ada@acme.test", "title": "CEO"}}), []string{"inviter.title"}},
		{"email a number", with(map[string]any{"email": 42}), []string{"email"}},
		{"group_ids a string", with(map[string]any{"group_ids": f.GroupID}), []string{"group_ids"}},
		{"group id a number", with(map[string]any{"group_ids": []any{1}}), []string{"group_ids[0]"}},
		{"inviter a string", with(map[string]any{"inviter": "Ada"}), []string{"inviter"}},
		{"subscription_id an object", with(map[string]any{"subscription_id": map[string]any{"id": f.SubscriptionID}}), []string{"subscription_id"}},
		{"role true", with(map[string]any{"role": true}), []string{"role"}},
		{"malformed JSON", `{"email": "a@example.test",`, []string{"body"}},
		{"single quotes", `{'email': 'a@example.test'}`, []string{"body"}},
		{"two objects", `{} {}`, []string{"body"}},
		{"array body", `[]`, []string{"body"}},
		{"duplicate key", `{"role":"viewer","role":"editor"}`, []string{"role"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			portal().do(t, "POST", invitations, tc.body).expectInvalid(t, tc.fields...)
		})
	}
	// No invitation was recorded and no seat taken by any of them.
	if s := f.subscription(t); s.SeatsReserved != 0 {
		t.Fatalf("subscription %+v after refused creates", s)
	}

	// The Idempotency-Key header is checked too.
	portal().do(t, "POST", invitations, f.inviteBody(unique("K")), "Idempotency-Key", strings.Repeat("k", 256)).
		expectInvalid(t, "Idempotency-Key")
	portal().do(t, "POST", invitations, f.inviteBody(unique("K")), "Idempotency-Key", "has space").
		expectInvalid(t, "Idempotency-Key")
	req := portal().request(t, "POST", invitations, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Idempotency-Key", "one")
	req.Header.Add("Idempotency-Key", "two")
	send(t, req).expectInvalid(t, "Idempotency-Key")

	// The list's query parameters.
	for _, tc := range []struct {
		query  string
		fields []string
	}{
		{"status=bogus", []string{"status"}},
		{"status=PENDING", []string{"status"}},
		{"limit=0", []string{"limit"}},
		{"limit=101", []string{"limit"}},
		{"limit=-1", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"limit=2.5", []string{"limit"}},
		{"cursor=not-a-cursor", []string{"cursor"}},
		{"cursor=" + base64.RawURLEncoding.EncodeToString(make([]byte, 25)), []string{"cursor"}},
		{"email=" + url.QueryEscape(strings.Repeat("a", 250)+"@example.test"), []string{"email"}},
		{"status=bogus&limit=1000&cursor=x", []string{"status", "limit", "cursor"}},
	} {
		portal().do(t, "GET", f.path("/invitations?"+tc.query), nil).expectInvalid(t, tc.fields...)
	}

	// Catalog bodies: bad seats and the rest.
	subs := f.path("/subscriptions")
	sub := func(seats any) map[string]any {
		return map[string]any{"application": "App", "name": "Plan", "seats": seats, "roles": []string{"viewer"}}
	}
	for _, seats := range []any{0, -1, 1.5, "3", nil, 1_000_001, 1e30, false, []int{3}} {
		portal().do(t, "POST", subs, sub(seats)).expectInvalid(t, "seats")
	}
	portal().do(t, "POST", subs, `{"application":"App","name":"Plan","seats":99999999999999999999999,"roles":["viewer"]}`).
		expectInvalid(t, "seats")
	portal().do(t, "POST", subs, map[string]any{"application": "App", "name": "Plan", "seats": 3, "roles": []string{}}).
		expectInvalid(t, "roles")
	portal().do(t, "POST", subs, map[string]any{"application": "App", "name": "Plan", "seats": 3, "roles": []string{"a", "a"}}).
		expectInvalid(t, "roles[1]")
	portal().do(t, "POST", subs, map[string]any{}).expectInvalid(t, "application", "name", "seats", "roles")
	portal().do(t, "POST", "/v1/accounts", map[string]any{}).expectInvalid(t, "name")
	portal().do(t, "POST", "/v1/accounts", map[string]any{"name": "Acme", "nmae": "typo"}).expectInvalid(t, "nmae")
	portal().do(t, "POST", f.path("/groups"), map[string]any{"name": strings.Repeat("g", 101)}).expectInvalid(t, "name")

	// Invitee bodies.
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": 5}).expectInvalid(t, "token")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": "x", "accept_terms": "yes"}).expectInvalid(t, "accept_terms")
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": "x", "remember_me": true}).expectInvalid(t, "remember_me")
	invitee().do(t, "POST", "/v1/invitations/decline", `{"token":`).expectInvalid(t, "body")
}

// TestErrorsConflicts: duplicate_invitation (naming the pending one), already_member and
// seats_exhausted, none of which leaves anything behind.
func TestErrorsConflicts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	email := unique("Dupe.Person")
	inv := f.createInvitation(t, portal(), email)

	// The same address in another case is the same person.
	p := portal().do(t, "POST", f.path("/invitations"), f.inviteBody(strings.ToUpper(email))).
		expectProblem(t, 409, "duplicate_invitation")
	if !strings.Contains(p.Detail, inv.ID) || p.InvitationID != inv.ID {
		t.Fatalf("duplicate_invitation %+v does not name %s", p, inv.ID)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v after a duplicate", s)
	}

	// Once accepted, the person is a member.
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200)
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(email)).expectProblem(t, 409, "already_member")
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(strings.ToUpper(email))).expectProblem(t, 409, "already_member")

	// Two seats: one used, one held by a second invitation; a third finds none.
	f.createInvitation(t, portal(), unique("Second"))
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Third"))).expectProblem(t, 409, "seats_exhausted")
	if s := f.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 1 || s.SeatsAvailable != 0 {
		t.Fatalf("subscription %+v", s)
	}
	var list struct{ Items []invitation }
	portal().do(t, "GET", f.path("/invitations"), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d invitations, want 2: refused creates must leave nothing", len(list.Items))
	}
}

// TestErrorsInvalidState: every action that does not fit the invitation's status.
func TestErrorsInvalidState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)

	accepted := f.createInvitation(t, portal(), unique("Accepted"))
	accept(t, tokenOf(t, *accepted.InviteURL)).expect(t, 200)
	for _, name := range []string{"resend", "revoke", "renew"} {
		f.action(t, portal(), accepted.ID, name).expectProblem(t, 409, "invalid_state")
	}
	portal().do(t, "GET", f.path("/invitations/"+accepted.ID+"/link"), nil).expectProblem(t, 409, "invalid_state")
	decline(t, tokenOf(t, *accepted.InviteURL)).expectProblem(t, 409, "invalid_state")
	if got := f.invitation(t, portal(), accepted.ID); got.Status != "accepted" {
		t.Fatalf("status %s, want accepted", got.Status)
	}

	pending := f.createInvitation(t, portal(), unique("Pending"))
	f.action(t, portal(), pending.ID, "renew").expectProblem(t, 409, "invalid_state")

	declined := f.createInvitation(t, portal(), unique("Declined"))
	token := tokenOf(t, *declined.InviteURL)
	decline(t, token).expect(t, 200)
	accept(t, token).expectProblem(t, 409, "invalid_state")
	decline(t, token).expect(t, 200) // the same decline again: a retry gets the first answer
	for _, name := range []string{"resend", "revoke", "renew"} {
		f.action(t, portal(), declined.ID, name).expectProblem(t, 409, "invalid_state")
	}

	f.action(t, portal(), pending.ID, "revoke").expect(t, 200)
	f.action(t, portal(), pending.ID, "revoke").expectProblem(t, 409, "invalid_state")
	if s := f.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 0 {
		t.Fatalf("subscription %+v", s)
	}
}

// TestIdempotencyKey: a replay with the same key and body answers the same invitation (201)
// and sends nothing more; the same key with another body is refused; keys are per account.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	email := unique("Idem")
	key := "idem-" + randomHex(8)
	body := f.inviteBody(email)

	var first, again invitation
	portal().do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expect(t, 201).decode(t, &first)
	portal().do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expect(t, 201).decode(t, &again)
	// (expires_at is compared in TestExpiresAtConsistent, which covers every answer.)
	if again.ID != first.ID || again.InviteURL == nil || *again.InviteURL != *first.InviteURL || again.Status != "pending" {
		t.Fatalf("replay answered %+v, want the first invitation %+v", again, first)
	}
	// The same request spelled differently (key order, upper-case ids) is the same request.
	raw := `{"role":"editor","inviter":{"email":"ada@acme.test","name":"Ada Admin"},"group_ids":["` + strings.ToUpper(f.GroupID) +
		`"],"subscription_id":"` + strings.ToUpper(f.SubscriptionID) + `","last_name":"Doe","first_name":"Jane","email":"` + email + `"}`
	portal().do(t, "POST", f.path("/invitations"), raw, "Idempotency-Key", key).expect(t, 201).decode(t, &again)
	if again.ID != first.ID {
		t.Fatalf("equivalent replay created %s, want %s", again.ID, first.ID)
	}

	changed := f.inviteBody(email)
	changed["role"] = "viewer"
	portal().do(t, "POST", f.path("/invitations"), changed, "Idempotency-Key", key).expectProblem(t, 422, "idempotency_conflict")
	portal().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Else")), "Idempotency-Key", key).
		expectProblem(t, 422, "idempotency_conflict")

	// A refused request under a new key: its replay is refused the same way (the replay skips
	// the API's pre-checks and meets the database's uniqueness rule instead).
	refusedKey := "refused-" + randomHex(8)
	for range 2 {
		p := portal().do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", refusedKey).
			expectProblem(t, 409, "duplicate_invitation")
		if !strings.Contains(p.Detail, first.ID) {
			t.Fatalf("duplicate_invitation detail %q does not name %s", p.Detail, first.ID)
		}
	}

	// One invitation, one seat, one email.
	waitEmail(t, email, "invited you", 1)
	eventually(t, 10*time.Second, "the invite email to be recorded", func() bool {
		return hasEvents(f.invitation(t, portal(), first.ID), "email_sent")
	})
	var list struct{ Items []invitation }
	portal().do(t, "GET", f.path("/invitations?email="+url.QueryEscape(email)), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Sends != 1 {
		t.Fatalf("invitations for %s: %+v, want one sent once", email, list.Items)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v, want one seat held", s)
	}
	if n := len(stack.Resend.EmailsTo(email)); n != 1 {
		t.Fatalf("%d emails to %s, want 1", n, email)
	}

	// Keys belong to an account: the same key elsewhere is a new request.
	g := newFixture(t, 1)
	var elsewhere invitation
	portal().do(t, "POST", g.path("/invitations"), g.inviteBody(email), "Idempotency-Key", key).expect(t, 201).decode(t, &elsewhere)
	if elsewhere.ID == first.ID || elsewhere.AccountID != g.AccountID {
		t.Fatalf("the key in another account answered %+v", elsewhere)
	}
}

// TestTokenInvalid: malformed, truncated, forged, foreign-secret, unknown and impossible
// tokens all answer the same 404 token_invalid, on preview, accept and decline alike.
func TestTokenInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	inv := f.createInvitation(t, portal(), unique("Tok"))
	token := tokenOf(t, *inv.InviteURL)
	id := uuid.MustParse(inv.ID)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	signer := invitetoken.NewSigner(stack.Cfg.TokenSecret)
	bad := map[string]string{
		"empty":                "",
		"malformed":            "not-a-token",
		"garbage characters":   "%%%<script>",
		"truncated by one":     token[:len(token)-1],
		"truncated to half":    token[:len(token)/2],
		"one extra character":  token + "A",
		"forged (first char)":  flip(token, 0),
		"forged (middle char)": flip(token, len(token)/2),
		"forged (in the tag)":  flip(token, len(token)-10),
		"padded":               token + "=",
		"standard base64":      strings.NewReplacer("-", "+", "_", "/").Replace(token) + "+/",
		"another secret":       invitetoken.NewSigner([]byte("another-deployment-secret-of-32-bytes!!")).Sign(id, 1),
		"unknown invitation":   signer.Sign(uuid.New(), 1),
		"future generation":    signer.Sign(id, 2),
		"generation zero":      signer.Sign(id, 0),
	}
	if bad["forged (middle char)"] == token {
		t.Fatal("flip did not change the token")
	}
	var first []byte
	for name, tok := range bad {
		for _, r := range []response{
			previewOf(t, tok),
			invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tok, "password": "Correct-Horse-42", "accept_terms": true}),
			decline(t, tok),
		} {
			if r.Status != 404 {
				t.Errorf("%s token: status %d, want 404; body %s", name, r.Status, r.Body)
				continue
			}
			r.expectProblem(t, 404, "token_invalid")
			if first == nil {
				first = r.Body
			} else if string(r.Body) != string(first) {
				t.Errorf("%s token: body %s differs from %s: the answer must not tell the cases apart", name, r.Body, first)
			}
		}
	}
	// The real link still works and nothing changed.
	var pv preview
	previewOf(t, token).expect(t, 200).decode(t, &pv)
	if pv.Status != "pending" {
		t.Fatalf("preview %+v after the bad tokens", pv)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 || s.SeatsUsed != 0 {
		t.Fatalf("subscription %+v", s)
	}
}

// TestPasswordPolicy: each missing class of the policy is refused with password_policy,
// naming the password field; a good password then succeeds.
func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	inv := f.createInvitation(t, portal(), unique("Pw"))
	token := tokenOf(t, *inv.InviteURL)
	for name, pw := range map[string]any{
		"missing":               nil,
		"empty":                 "",
		"too short":             "Ab1!ab1!a", // 9 characters, every class
		"no upper-case":         "correct-horse-42",
		"no lower-case":         "CORRECT-HORSE-42",
		"no digit or symbol":    "CorrectHorseBattery",
		"only spaces":           strings.Repeat(" ", 12),
		"over 128 (documented)": "Aa1!" + strings.Repeat("x", 125),
		"short in characters":   "Ää1ÄäÄä1Ä", // 9 runes, more bytes
		"letters only unicode":  "ÄÖÜäöüßÄÖÜäöü",
	} {
		body := map[string]any{"token": token, "accept_terms": true}
		if pw != nil {
			body["password"] = pw
		}
		r := invitee().do(t, "POST", "/v1/invitations/accept", body)
		if r.Status != 422 {
			t.Errorf("password %s: status %d, want 422; body %s", name, r.Status, r.Body)
			continue
		}
		p := r.expectProblem(t, 422, "password_policy")
		if len(p.Errors) != 1 || p.Errors[0].Field != "password" || p.Detail == "" {
			t.Errorf("password %s: problem %+v, want one error naming password", name, p)
		}
	}
	var pv preview
	previewOf(t, token).expect(t, 200).decode(t, &pv)
	if pv.Status != "pending" {
		t.Fatalf("refused passwords changed the invitation: %+v", pv)
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Ää1ÄäÄä1Äx", "accept_terms": true}).expect(t, 200)
}

// TestTermsNotAccepted: accept_terms missing, null or false.
func TestTermsNotAccepted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	inv := f.createInvitation(t, portal(), unique("Terms"))
	token := tokenOf(t, *inv.InviteURL)
	for _, body := range []string{
		`{"token":"` + token + `","password":"Correct-Horse-42"}`,
		`{"token":"` + token + `","password":"Correct-Horse-42","accept_terms":false}`,
		`{"token":"` + token + `","password":"Correct-Horse-42","accept_terms":null}`,
	} {
		p := invitee().do(t, "POST", "/v1/invitations/accept", body).expectProblem(t, 422, "terms_not_accepted")
		if len(p.Errors) != 1 || p.Errors[0].Field != "accept_terms" {
			t.Errorf("%s: problem %+v, want one error naming accept_terms", body, p)
		}
	}
	accept(t, token).expect(t, 200)
}

// TestResendRateLimited: on the portal API (60 s interval) a resend right after creation is
// refused with 429 and a Retry-After; on the short API it succeeds after a second with the
// same link, one more send, the same expiry, and a second email carrying that link. The
// invitation's events tell the story in order.
func TestResendRateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	inv := f.createInvitation(t, portal(), unique("Rate"))
	r := f.action(t, portal(), inv.ID, "resend")
	r.expectProblem(t, 429, "rate_limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q, want whole seconds in 1..60", r.Header.Get("Retry-After"))
	}
	if got := f.invitation(t, portal(), inv.ID); got.Sends != 1 {
		t.Fatalf("sends %d after a refused resend, want 1", got.Sends)
	}

	email := unique("Rate.Short")
	created := f.createInvitation(t, short(), email)
	firstText := waitEmail(t, email, "invited you", 1)
	if !strings.Contains(firstText, *created.InviteURL) {
		t.Fatalf("first email lacks %s", *created.InviteURL)
	}
	var resent invitation
	eventually(t, 5*time.Second, "the resend interval to pass", func() bool {
		r := f.action(t, short(), created.ID, "resend")
		if r.Status == 429 {
			r.expectProblem(t, 429, "rate_limited")
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q, want at least 1", r.Header.Get("Retry-After"))
			}
			return false
		}
		r.expect(t, 200).decode(t, &resent)
		return true
	})
	if time.Since(created.CreatedAt) < shortResend {
		t.Fatalf("resend allowed %s after creation, sooner than %s", time.Since(created.CreatedAt), shortResend)
	}
	if resent.Status != "pending" || resent.InviteURL == nil || *resent.InviteURL != *created.InviteURL ||
		resent.Sends != 2 || !resent.ExpiresAt.Equal(created.ExpiresAt) {
		t.Fatalf("resent invitation %+v; want pending, same link and expiry as %+v, sends 2", resent, created)
	}
	second := waitEmail(t, email, "invited you", 2)
	if !strings.Contains(second, *created.InviteURL) {
		t.Fatalf("second email lacks the same link %s:\n%s", *created.InviteURL, second)
	}

	f.action(t, short(), created.ID, "revoke").expect(t, 200)
	got := f.invitation(t, short(), created.ID)
	if len(got.Events) < 4 || got.Events[0].Type != "created" || got.Events[len(got.Events)-1].Type != "revoked" {
		t.Fatalf("events %+v: want created first and revoked last", got.Events)
	}
	sent := 0
	for i, e := range got.Events {
		if e.Type == "email_sent" {
			sent++
		}
		if i > 0 && e.At.Before(got.Events[i-1].At) {
			t.Fatalf("events out of order: %+v", got.Events)
		}
		if e.Detail == "" {
			t.Errorf("event %s has no detail", e.Type)
		}
	}
	if sent < 2 {
		t.Fatalf("events %+v: want two email_sent", got.Events)
	}
}

// TestBodyTooLarge: a body over 1 MiB answers 413, whether announced or chunked; exactly
// 1 MiB is read (and judged on its content).
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	portal().do(t, "POST", "/v1/accounts", big).expectProblem(t, 413, "payload_too_large")
	portal().do(t, "POST", f.path("/invitations"), big).expectProblem(t, 413, "payload_too_large")
	invitee().do(t, "POST", "/v1/invitations/accept", big).expectProblem(t, 413, "payload_too_large")

	// Chunked: no Content-Length, so the limit bites while reading.
	req := invitee().request(t, "POST", "/v1/invitations/decline", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	if req.ContentLength != 0 {
		t.Fatalf("request has a length %d; want chunked", req.ContentLength)
	}
	send(t, req).expectProblem(t, 413, "payload_too_large")

	exact := `{"name":"` + strings.Repeat("a", 1<<20-len(`{"name":""}`)) + `"}`
	if len(exact) != 1<<20 {
		t.Fatalf("built %d bytes", len(exact))
	}
	portal().do(t, "POST", f.path("/groups"), exact).expectInvalid(t, "name")
}

// TestMethodNotAllowed: a known path with the wrong method answers 405 with Allow.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	inv := f.createInvitation(t, portal(), unique("Method"))
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", f.path("/invitations/" + inv.ID), "GET"},
		{"PUT", f.path("/invitations/" + inv.ID), "GET"},
		{"PATCH", f.path("/invitations"), "GET"},
		{"GET", f.path("/invitations/" + inv.ID + "/revoke"), "POST"},
		{"POST", f.path("/invitations/" + inv.ID + "/link"), "GET"},
		{"PUT", "/v1/accounts", "POST"},
		{"GET", "/v1/invitations/accept", "POST"},
		{"POST", "/v1/invitations/preview", "GET"},
		{"DELETE", f.path("/users"), "GET"},
		{"POST", "/healthz", "GET"},
	} {
		r := portal().do(t, tc.method, tc.path, nil)
		if r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405; body %s", tc.method, tc.path, r.Status, r.Body)
			continue
		}
		r.expectProblem(t, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q lacks %s", tc.method, tc.path, r.Header.Get("Allow"), tc.allow)
		}
	}
	if got := f.invitation(t, portal(), inv.ID); got.Status != "pending" {
		t.Fatalf("status %s after DELETE", got.Status)
	}
}
