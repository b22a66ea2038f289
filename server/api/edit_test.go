package api

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/apiview"
)

// PATCH /v1/accounts/{account_id}/invitations/{id}: CONTRACT.md "Editing a pending invitation".

// patch edits an invitation with the portal's token.
func (h *harness) patch(id uuid.UUID, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.api("PATCH", h.accountPath("/invitations/"+id.String()), body, headers...)
}

// edited edits an invitation, expecting 200, and returns the answer.
func (h *harness) edited(id uuid.UUID, body string, headers ...string) invitationView {
	h.t.Helper()
	return decodeJSON[invitationView](h.t, h.patch(id, body, headers...), 200)
}

// updatedEvents waits for at least n invitation.updated events of the invitation in the
// account's feed (numbering what is committed) and returns them all, oldest first, as the
// feed's type filter answers them.
func (h *harness) updatedEvents(id uuid.UUID, n int) []apiview.Event {
	h.t.Helper()
	var mine []apiview.Event
	eventually(h.t, 30*time.Second, fmt.Sprintf("%d updated events of %s", n, id), func() bool {
		h.storeEvents(0)
		all, _ := h.feed("&type="+contract.PublicUpdated, 100, "")
		mine = mine[:0]
		for _, e := range all {
			if e.Type != contract.PublicUpdated {
				h.t.Fatalf("the type filter let a %s event through", e.Type)
			}
			if e.Data.Invitation.ID == id {
				mine = append(mine, e)
			}
		}
		return len(mine) >= n
	})
	return mine
}

// storyCount counts the invitation's story events of type typ.
func (h *harness) storyCount(id uuid.UUID, typ string) int {
	h.t.Helper()
	n := 0
	for _, e := range h.detail(id).Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Each field of a PATCH is applied, and only it; the link, the generation and the seat stay;
// each edit writes one invitation.updated event carrying the edited invitation.
func TestEditInvitation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sales := decodeJSON[groupView](t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 201)
	email := uniqueEmail("edit")
	created := h.create(h.inviteBody(email, fmt.Sprintf(`,"group_ids":[%q],"message":"first note","metadata":{"a":1}`, h.group.ID)))
	id := created.ID
	seats := h.subscription()

	same := func(t *testing.T, got invitationView, what string) {
		t.Helper()
		if got.ID != id || got.Status != "pending" || got.InviteURL == nil || *got.InviteURL != *created.InviteURL ||
			got.Email != email || got.SubscriptionID != h.sub.ID {
			t.Errorf("%s: %+v", what, got)
		}
		if row := h.row(id); row.Generation != 1 {
			t.Errorf("%s: generation %d", what, row.Generation)
		}
	}

	// role
	got := h.edited(id, `{"role":"admin"}`)
	same(t, got, "role")
	if got.Role != "admin" || !slices.Equal(got.GroupIDs, []uuid.UUID{h.group.ID}) || deref(got.Message) != "first note" ||
		!sameJSON(t, got.Metadata, []byte(`{"a":1}`)) || !got.ExpiresAt.Equal(created.ExpiresAt) {
		t.Errorf("after the role edit: %+v", got)
	}
	if !got.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("updated_at %s did not move from %s", got.UpdatedAt, created.UpdatedAt)
	}

	// group_ids: replaced (a repeat counted once), then cleared.
	got = h.edited(id, fmt.Sprintf(`{"group_ids":[%q,%q]}`, sales.ID, sales.ID))
	same(t, got, "groups")
	if !slices.Equal(got.GroupIDs, []uuid.UUID{sales.ID}) || got.Role != "admin" {
		t.Errorf("after the groups edit: %+v", got)
	}
	got = h.edited(id, `{"group_ids":[]}`)
	if len(got.GroupIDs) != 0 || got.GroupIDs == nil {
		t.Errorf("after clearing the groups: %v", got.GroupIDs)
	}
	// null leaves them.
	got = h.edited(id, `{"group_ids":null,"role":"editor"}`)
	if len(got.GroupIDs) != 0 || got.Role != "editor" {
		t.Errorf("after a null group_ids: %+v", got)
	}

	// message: trimmed, line breaks kept; metadata: replaced as a whole.
	got = h.edited(id, `{"message":"  Hi Jane,\r\nwelcome!  "}`)
	if deref(got.Message) != "Hi Jane,\nwelcome!" {
		t.Errorf("message = %q", deref(got.Message))
	}
	got = h.edited(id, `{"metadata":{"b":{"c":[true]}}}`)
	if !sameJSON(t, got.Metadata, []byte(`{"b":{"c":[true]}}`)) || deref(got.Message) != "Hi Jane,\nwelcome!" {
		t.Errorf("metadata = %s (message %q)", got.Metadata, deref(got.Message))
	}

	// expires_in counts from now; the link stays.
	before := time.Now()
	got = h.edited(id, `{"expires_in":7200}`)
	after := time.Now()
	same(t, got, "expiry")
	if got.ExpiresIn == nil || *got.ExpiresIn != 7200 ||
		got.ExpiresAt.Before(before.Add(2*time.Hour-time.Second)) || got.ExpiresAt.After(after.Add(2*time.Hour+time.Second)) {
		t.Errorf("after the expiry edit: expires_in %v, expires_at %s (request at %s)", got.ExpiresIn, got.ExpiresAt, before)
	}
	if st := workflowState(t, id); !st.ExpiresAt.Truncate(time.Microsecond).Equal(got.ExpiresAt) || st.Generation != 1 {
		t.Errorf("the workflow expires it at %s (generation %d), the answer says %s", st.ExpiresAt, st.Generation, got.ExpiresAt)
	}
	if link := decodeJSON[linkView](t, h.api("GET", h.accountPath("/invitations/"+id.String()+"/link"), ""), 200); link.InviteURL != *created.InviteURL || !link.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("link = %+v", link)
	}

	// Everything at once.
	got = h.edited(id, fmt.Sprintf(`{"role":"admin","group_ids":[%q,%q],"message":"last","metadata":{"z":"9"},"expires_in":3600}`, h.group.ID, sales.ID))
	same(t, got, "all")
	if got.Role != "admin" || !slices.Equal(got.GroupIDs, []uuid.UUID{h.group.ID, sales.ID}) || deref(got.Message) != "last" ||
		!sameJSON(t, got.Metadata, []byte(`{"z":"9"}`)) || *got.ExpiresIn != 3600 {
		t.Errorf("after editing everything: %+v", got)
	}
	// message "" clears the note.
	got = h.edited(id, `{"message":""}`)
	if got.Message != nil || got.Role != "admin" {
		t.Errorf("after clearing the message: %+v", got)
	}
	const edits = 9

	// GET and the row agree with the last answer; the seat is still the one it held.
	final := h.detail(id)
	if final.Role != got.Role || !slices.Equal(final.GroupIDs, got.GroupIDs) || final.Message != nil ||
		!sameJSON(t, final.Metadata, got.Metadata) || !final.ExpiresAt.Equal(got.ExpiresAt) || *final.InviteURL != *created.InviteURL {
		t.Errorf("GET = %+v, the last PATCH answered %+v", final.invitationView, got)
	}
	if row := h.row(id); row.Edits != edits || row.Role != "admin" || row.Generation != 1 {
		t.Errorf("row: %d edits, role %s, generation %d", row.Edits, row.Role, row.Generation)
	}
	if s := h.subscription(); *s.SeatsReserved != *seats.SeatsReserved || *s.SeatsUsed != *seats.SeatsUsed || s.Seats != seats.Seats {
		t.Errorf("seats %+v, before the edits %+v", s, seats)
	}
	// The invitee's link still works and shows the edit.
	if p := h.previewOf(final.invitationView); p["role"] != "admin" || p["message"] != nil {
		t.Errorf("preview = %v", p)
	}

	// One updated event per edit, each with the invitation as that edit left it; no link.
	events := h.updatedEvents(id, edits)
	if len(events) != edits {
		t.Fatalf("%d updated events, want %d", len(events), edits)
	}
	if n := h.storyCount(id, contract.EventUpdated); n != edits {
		t.Errorf("%d updated events in the story, want %d", n, edits)
	}
	if first := events[0].Data.Invitation; first.Role != "admin" || !slices.Equal(first.GroupIDs, []uuid.UUID{h.group.ID}) {
		t.Errorf("the first updated event: %+v", first)
	}
	if e := events[6].Data.Invitation; e.ExpiresIn == nil || *e.ExpiresIn != 7200 || !sameJSON(t, e.Metadata, []byte(`{"b":{"c":[true]}}`)) {
		t.Errorf("the expiry edit's event: %+v", e)
	}
	last := events[edits-1]
	if inv := last.Data.Invitation; inv.Role != "admin" || !slices.Equal(inv.GroupIDs, got.GroupIDs) || inv.Message != nil ||
		!sameJSON(t, inv.Metadata, []byte(`{"z":"9"}`)) || !inv.ExpiresAt.Equal(got.ExpiresAt) || inv.InviteURL != nil ||
		last.AccountID != h.account.ID || last.Data.UserID != nil {
		t.Errorf("the last updated event: %+v", last)
	}
	raw := h.api("GET", h.accountPath("/events?limit=100&type=invitation.updated"), "").Body.String()
	if strings.Contains(raw, "token=") || strings.Contains(raw, *created.InviteURL) {
		t.Errorf("the updated events carry the link: %s", raw)
	}
}

// A new expires_in is when the invitation now expires: not before, and then it does.
func TestEditInvitationExpiryFires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("soon"))
	at := time.Now()
	got := h.edited(inv.ID, `{"expires_in":60}`)
	if d := got.ExpiresAt.Sub(at) - time.Minute; d < -time.Second || d > time.Second {
		t.Fatalf("expires_at %s is not a minute after the PATCH at %s", got.ExpiresAt, at)
	}
	var row = inv
	eventually(t, 90*time.Second, "the edited invitation to expire", func() bool {
		row = h.row(inv.ID)
		if row.Status != contract.StatusPending && row.Status != contract.StatusExpired {
			t.Fatalf("the invitation became %s", row.Status)
		}
		if row.Status == contract.StatusExpired && time.Since(at) < 55*time.Second {
			t.Fatalf("it expired %s after the PATCH, before its new expiry", time.Since(at))
		}
		return row.Status == contract.StatusExpired
	})
	if s := h.subscription(); *s.SeatsReserved != 0 {
		t.Errorf("the expiry did not release the seat: %+v", s)
	}
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token="+h.token(row), ""), 410, contract.CodeInvitationExpired)
	decodeProblem(t, h.patch(inv.ID, `{"role":"admin"}`), 409, contract.CodeInvalidState)
	// No reminder: 48h before the new expiry is before the first send.
	if n := len(stack.Resend.EmailsTo(inv.Email)); n != 1 {
		t.Errorf("%d emails to the invitee, want the invite alone", n)
	}

	// A renewal keeps the edited validity.
	before := time.Now()
	renewed := decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+inv.ID.String()+"/renew"), ""), 200)
	if renewed.ExpiresIn == nil || *renewed.ExpiresIn != 60 || renewed.ExpiresAt.Before(before.Add(time.Minute-time.Second)) ||
		renewed.ExpiresAt.After(time.Now().Add(time.Minute+time.Second)) {
		t.Errorf("renewed: expires_in %v, expires_at %s (renewed at %s)", renewed.ExpiresIn, renewed.ExpiresAt, before)
	}
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+inv.ID.String()+"/revoke"), ""), 200)
}

// What an edit changed is what the invitee gets: the next email has the new note, and
// accepting gives the membership the new role, groups and metadata.
func TestEditInvitationCarriesThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shortTTL())
	sales := decodeJSON[groupView](t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 201)
	email := uniqueEmail("through")
	created := h.create(h.inviteBody(email, fmt.Sprintf(`,"group_ids":[%q],"message":"first note","metadata":{"v":1}`, h.group.ID)))
	got := h.edited(created.ID, fmt.Sprintf(`{"expires_in":3600,"role":"admin","group_ids":[%q],"message":"edited note","metadata":{"v":2}}`, sales.ID))
	if got.Role != "admin" || *got.ExpiresIn != 3600 {
		t.Fatalf("edited: %+v", got)
	}
	// Past the short INVITATION_TTL it was created with, it is still pending.
	time.Sleep(h.cfg.InvitationTTL + 2*time.Second)
	if row := h.row(created.ID); row.Status != contract.StatusPending {
		t.Fatalf("the edited invitation is %s after the TTL it was created with", row.Status)
	}

	eventually(t, 20*time.Second, "the invite email", func() bool { return len(stack.Resend.EmailsTo(email)) == 1 })
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+created.ID.String()+"/resend"), ""), 200)
	eventually(t, 20*time.Second, "the resent email", func() bool { return len(stack.Resend.EmailsTo(email)) == 2 })
	if e := stack.Resend.EmailsTo(email)[1]; !strings.Contains(e.Text, "edited note") || strings.Contains(e.Text, "first note") ||
		!strings.Contains(e.HTML, "edited note") {
		t.Errorf("the resent email does not carry the edited note:\n%s", e.Text)
	}

	if u := h.userEntry(email); u.State != "invited" || u.Role != "admin" || !slices.Equal(u.GroupIDs, []uuid.UUID{sales.ID}) ||
		!sameJSON(t, u.Metadata, []byte(`{"v":2}`)) {
		t.Errorf("invited entry = %+v (metadata %s)", u, u.Metadata)
	}
	decodeJSON[acceptView](t, h.accept(h.token(h.row(created.ID))), 200)
	if u := h.userEntry(email); u.State != "active" || u.Role != "admin" || !slices.Equal(u.GroupIDs, []uuid.UUID{sales.ID}) ||
		!sameJSON(t, u.Metadata, []byte(`{"v":2}`)) {
		t.Errorf("member entry = %+v (metadata %s)", u, u.Metadata)
	}
}

// Refused PATCHes name their field and change nothing.
func TestEditInvitationRefusals(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	inv := h.pending(uniqueEmail("refuse"))
	maxTTL := int64(h.cfg.InvitationTTLMax / time.Second)

	for _, tc := range []struct {
		name, body string
		fields     []string
	}{
		{"empty", `{}`, []string{"body"}},
		{"only nulls", `{"role":null,"group_ids":null,"message":null,"metadata":null,"expires_in":null}`, []string{"body"}},
		{"unknown field", `{"role":"admin","bogus":1}`, []string{"bogus"}},
		{"redirect_url is not editable", `{"redirect_url":"https://app.acme.test/"}`, []string{"redirect_url"}},
		{"status is not editable", `{"status":"accepted"}`, []string{"status"}},
		{"not an object", `[]`, []string{"body"}},
		{"role not of the subscription", `{"role":"owner"}`, []string{"role"}},
		{"role empty", `{"role":"  "}`, []string{"role"}},
		{"role not a string", `{"role":1}`, []string{"role"}},
		{"group of another account", fmt.Sprintf(`{"group_ids":[%q,%q]}`, h.group.ID, other.group.ID), []string{"group_ids[1]"}},
		{"unknown group", fmt.Sprintf(`{"group_ids":[%q]}`, uuid.New()), []string{"group_ids[0]"}},
		{"bad group id", `{"group_ids":["nope"]}`, []string{"group_ids[0]"}},
		{"group_ids not a list", fmt.Sprintf(`{"group_ids":%q}`, h.group.ID), []string{"group_ids"}},
		{"expires_in 59", `{"expires_in":59}`, []string{"expires_in"}},
		{"expires_in over the max", fmt.Sprintf(`{"expires_in":%d}`, maxTTL+1), []string{"expires_in"}},
		{"expires_in not an integer", `{"expires_in":60.5}`, []string{"expires_in"}},
		{"expires_in a string", `{"expires_in":"60"}`, []string{"expires_in"}},
		{"message 501 characters", `{"message":` + jsonString(strings.Repeat("a", 501)) + `}`, []string{"message"}},
		{"message control character", `{"message":"a\u0007b"}`, []string{"message"}},
		{"message bidi override", `{"message":"a\u202eb"}`, []string{"message"}},
		{"metadata array", `{"metadata":[1]}`, []string{"metadata"}},
		{"metadata string", `{"metadata":"x"}`, []string{"metadata"}},
		{"metadata over 4096 bytes", `{"metadata":{"k":"` + strings.Repeat("a", maxMetadataBytes) + `"}}`, []string{"metadata"}},
		{"metadata 17 levels", `{"metadata":` + nested(17) + `}`, []string{"metadata"}},
		{"several", `{"role":"admin","expires_in":59,"message":"a\u0007"}`, []string{"expires_in", "message"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decodeProblem(t, h.with(t).patch(inv.ID, tc.body), 422, contract.CodeValidation)
			got := fieldsOf(p)
			slices.Sort(got)
			if !slices.Equal(got, tc.fields) {
				t.Errorf("errors = %+v, want %v", p.Errors, tc.fields)
			}
		})
	}
	if p := decodeProblem(t, h.patch(inv.ID, `{"role":"owner"}`), 422, contract.CodeValidation); !strings.Contains(p.Errors[0].Message, "admin, editor") {
		t.Errorf("the role refusal does not list the roles: %+v", p.Errors)
	}
	decodeProblem(t, h.patch(inv.ID, "not json"), 422, contract.CodeValidation)
	decodeProblem(t, h.patch(inv.ID, ""), 422, contract.CodeValidation)
	decodeProblem(t, h.patch(inv.ID, `{"role":"admin"}`, "Content-Type", "text/plain"), 415, contract.CodeUnsupportedMediaType)
	decodeProblem(t, h.patch(inv.ID, `{"role":"admin"}`, "Idempotency-Key", strings.Repeat("k", 256)), 422, contract.CodeValidation)

	// Not this account's invitation, or none: 404, and it is unchanged.
	decodeProblem(t, other.api("PATCH", other.accountPath("/invitations/"+inv.ID.String()), `{"role":"admin"}`), 404, contract.CodeNotFound)
	decodeProblem(t, h.patch(uuid.New(), `{"role":"admin"}`), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("PATCH", h.accountPath("/invitations/xyz"), `{"role":"admin"}`), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("PATCH", "/v1/accounts/"+uuid.NewString()+"/invitations/"+inv.ID.String(), `{"role":"admin"}`), 404, contract.CodeNotFound)
	decodeProblem(t, h.do("PATCH", h.accountPath("/invitations/"+inv.ID.String()), `{"role":"admin"}`, "Content-Type", "application/json"), 401, contract.CodeUnauthorized)

	row := h.row(inv.ID)
	if row.Edits != 0 || row.Role != "editor" || !slices.Equal(row.GroupIDs, inv.GroupIDs) || !row.ExpiresAt.Equal(inv.ExpiresAt) || row.Message != "" {
		t.Errorf("refused PATCHes changed the invitation: %+v", row)
	}
	if n := h.storyCount(inv.ID, contract.EventUpdated); n != 0 {
		t.Errorf("%d updated events after refused PATCHes", n)
	}
}

// Only a pending invitation can be edited.
func TestEditInvitationStates(t *testing.T) {
	t.Parallel()
	h, short := newHarness(t), newHarness(t, shortTTL())
	accepted := h.pending(uniqueEmail("accepted"))
	decodeJSON[acceptView](t, h.accept(h.token(accepted)), 200)
	declined := h.pending(uniqueEmail("declined"))
	decodeJSON[declineView](t, h.do("POST", "/v1/invitations/decline", fmt.Sprintf(`{"token":%q}`, h.token(declined))), 200)
	revoked := h.pending(uniqueEmail("revoked"))
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+revoked.ID.String()+"/revoke"), ""), 200)

	for name, id := range map[string]uuid.UUID{"accepted": accepted.ID, "declined": declined.ID, "revoked": revoked.ID} {
		t.Run(name, func(t *testing.T) {
			for _, body := range []string{`{"role":"admin"}`, `{"expires_in":3600}`, `{"message":"late"}`} {
				p := decodeProblem(t, h.with(t).patch(id, body), 409, contract.CodeInvalidState)
				if !strings.Contains(p.Detail, name) {
					t.Errorf("detail %q does not say %s", p.Detail, name)
				}
			}
			if row := h.with(t).row(id); string(row.Status) != name || row.Edits != 0 || row.Role != "editor" {
				t.Errorf("row %s, %d edits, role %s", row.Status, row.Edits, row.Role)
			}
		})
	}

	expired := short.expired(uniqueEmail("expired"))
	for _, body := range []string{`{"role":"admin"}`, `{"expires_in":3600}`} {
		decodeProblem(t, short.patch(expired.ID, body), 409, contract.CodeInvalidState)
	}
	if row := short.row(expired.ID); row.Status != contract.StatusExpired || row.Edits != 0 || !row.ExpiresAt.Equal(expired.ExpiresAt) {
		t.Errorf("expired row after PATCHes: %s, %d edits, expires %s", row.Status, row.Edits, row.ExpiresAt)
	}
	// Renewed, it is pending again and can be edited; its link stays the renewed one.
	renewed := decodeJSON[invitationView](t, short.api("POST", short.accountPath("/invitations/"+expired.ID.String()+"/renew"), ""), 200)
	got := short.edited(expired.ID, `{"role":"admin"}`)
	if got.Role != "admin" || got.Status != "pending" || *got.InviteURL != *renewed.InviteURL {
		t.Errorf("edit after renew: %+v", got)
	}
	decodeJSON[invitationView](t, short.api("POST", short.accountPath("/invitations/"+expired.ID.String()+"/revoke"), ""), 200)
}

// A retry of a PATCH (no key) right after the first is the same edit: one event, the same
// state. The same body sent again after another edit is a new edit.
func TestEditInvitationRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("retry"))
	a, b := `{"role":"admin","message":"A"}`, `{"role":"editor","message":"B"}`

	first := h.edited(inv.ID, a)
	retry := h.edited(inv.ID, a)
	if retry.Role != "admin" || deref(retry.Message) != "A" || !retry.UpdatedAt.Equal(first.UpdatedAt) || !retry.ExpiresAt.Equal(first.ExpiresAt) ||
		*retry.InviteURL != *first.InviteURL {
		t.Errorf("retry answered %+v, the first %+v", retry, first)
	}
	// The same edit with its fields in another order, or other white space, is the same edit.
	reordered := h.edited(inv.ID, `{ "message" : " A ", "role" : "admin" }`)
	if !reordered.UpdatedAt.Equal(first.UpdatedAt) {
		t.Errorf("the reordered retry was applied again: updated_at %s, first %s", reordered.UpdatedAt, first.UpdatedAt)
	}
	h.updatedEvents(inv.ID, 1)
	time.Sleep(time.Second)
	if events := h.updatedEvents(inv.ID, 1); len(events) != 1 {
		t.Fatalf("%d updated events after one edit and its retries", len(events))
	}
	if row := h.row(inv.ID); row.Edits != 1 {
		t.Errorf("%d edits recorded, want 1", row.Edits)
	}

	// A, B, then A again: three edits, back to A.
	if got := h.edited(inv.ID, b); got.Role != "editor" || deref(got.Message) != "B" {
		t.Errorf("B: %+v", got)
	}
	again := h.edited(inv.ID, a)
	if again.Role != "admin" || deref(again.Message) != "A" || !again.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("A again: %+v", again)
	}
	if v := h.detail(inv.ID); v.Role != "admin" || deref(v.Message) != "A" {
		t.Errorf("GET after A, B, A: %+v", v.invitationView)
	}
	events := h.updatedEvents(inv.ID, 3)
	if len(events) != 3 {
		t.Fatalf("%d updated events after A, B, A", len(events))
	}
	for i, want := range []string{"admin", "editor", "admin"} {
		if events[i].Data.Invitation.Role != want {
			t.Errorf("updated event %d has role %s, want %s", i, events[i].Data.Invitation.Role, want)
		}
	}
	if n := h.storyCount(inv.ID, contract.EventUpdated); n != 3 {
		t.Errorf("%d updated events in the story, want 3", n)
	}

	// With an Idempotency-Key: the retry is the same edit; the key with another body is a
	// conflict, and changes nothing.
	c := `{"message":"C"}`
	keyed := h.edited(inv.ID, c, "Idempotency-Key", "edit-c")
	replay := h.edited(inv.ID, c, "Idempotency-Key", "edit-c")
	if deref(keyed.Message) != "C" || deref(replay.Message) != "C" || !replay.UpdatedAt.Equal(keyed.UpdatedAt) {
		t.Errorf("keyed edit %+v, its replay %+v", keyed, replay)
	}
	decodeProblem(t, h.patch(inv.ID, `{"message":"E"}`, "Idempotency-Key", "edit-c"), 422, contract.CodeIdempotencyConflict)
	if v := h.detail(inv.ID); deref(v.Message) != "C" {
		t.Errorf("after the conflicting key: message %q", deref(v.Message))
	}
	time.Sleep(time.Second)
	if events := h.updatedEvents(inv.ID, 4); len(events) != 4 {
		t.Errorf("%d updated events, want 4 (A, B, A, C)", len(events))
	}
	// A key is the invitation's own: the same key on another invitation is another edit.
	otherInv := h.pending(uniqueEmail("retry-other"))
	if got := h.edited(otherInv.ID, `{"message":"E"}`, "Idempotency-Key", "edit-c"); deref(got.Message) != "E" {
		t.Errorf("the key on another invitation: %+v", got)
	}
}

// A token scoped to the account edits its invitations; another account's it cannot reach.
func TestEditInvitationScopedToken(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	mine, theirs := h.pending(uniqueEmail("mine")), other.pending(uniqueEmail("theirs"))
	scoped := func(path, body string) *httptest.ResponseRecorder {
		return h.do("PATCH", path, body, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json")
	}
	got := decodeJSON[invitationView](t, scoped(h.accountPath("/invitations/"+mine.ID.String()), `{"role":"admin","metadata":{"by":"scoped"}}`), 200)
	if got.Role != "admin" || !sameJSON(t, got.Metadata, []byte(`{"by":"scoped"}`)) {
		t.Errorf("scoped edit: %+v", got)
	}
	var detail string
	for _, e := range h.detail(mine.ID).Events {
		if e.Type == contract.EventUpdated {
			detail = e.Detail
		}
	}
	if !strings.Contains(detail, "acme-admin-") || !strings.Contains(detail, "role admin") {
		t.Errorf("the updated story event says %q", detail)
	}

	decodeProblem(t, scoped(other.accountPath("/invitations/"+theirs.ID.String()), `{"role":"admin"}`), 403, contract.CodeForbidden)
	decodeProblem(t, scoped(h.accountPath("/invitations/"+theirs.ID.String()), `{"role":"admin"}`), 404, contract.CodeNotFound)
	if row := other.row(theirs.ID); row.Role != "editor" || row.Edits != 0 {
		t.Errorf("the other account's invitation changed: %+v", row)
	}
}
