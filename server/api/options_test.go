package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/accountpolicy"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/problem"
)

// The create body's options (CONTRACT.md "Invitation options"), the account's policy on create
// and renew (allowed_email_domains, allowed_redirect_origins), and their limits, over the API.

// uniqueAt is uniqueEmail at another domain: users are global, so the local part is unique.
func uniqueAt(local, domain string) string {
	return local + "+" + randomHex(4) + "@" + domain
}

// putSettings sets the harness account's settings through the API.
func (h *harness) putSettings(domains, origins []string) {
	h.t.Helper()
	if domains == nil {
		domains = []string{}
	}
	if origins == nil {
		origins = []string{}
	}
	decodeJSON[accountpolicy.Settings](h.t, h.api("PUT", h.accountPath("/settings"), settingsJSON(domains, origins)), 200)
}

// detail reads one invitation through the API.
func (h *harness) detail(id uuid.UUID) invitationDetailView {
	h.t.Helper()
	return decodeJSON[invitationDetailView](h.t, h.api("GET", h.accountPath("/invitations/"+id.String()), ""), 200)
}

// invitationsFor lists the account's invitations for email through the API.
func (h *harness) invitationsFor(email string) []invitationView {
	h.t.Helper()
	return decodeJSON[invitationListView](h.t, h.api("GET", h.accountPath("/invitations?email="+url.QueryEscape(email)), ""), 200).Items
}

// users lists the account's users through the API.
func (h *harness) users() []accountUserView {
	h.t.Helper()
	return decodeJSON[accountUsersView](h.t, h.api("GET", h.accountPath("/users"), ""), 200).Items
}

// userEntry is the users-list entry for email.
func (h *harness) userEntry(email string) accountUserView {
	h.t.Helper()
	for _, u := range h.users() {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	h.t.Fatalf("no users-list entry for %s", email)
	return accountUserView{}
}

// previewOf is the invitee's preview of the invitation's current link, as raw JSON fields.
func (h *harness) previewOf(inv invitationView) map[string]any {
	h.t.Helper()
	u, err := url.Parse(*inv.InviteURL)
	if err != nil {
		h.t.Fatal(err)
	}
	return decodeJSON[map[string]any](h.t, h.do("GET", "/v1/invitations/preview?token="+url.QueryEscape(u.Query().Get("token")), ""), 200)
}

// emailRows counts the emails the worker recorded for the invitation (the dev mailbox keeps
// every email there, sent or not).
func emailRows(t testing.TB, id uuid.UUID) int {
	t.Helper()
	var n int
	if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from emails where invitation_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fieldsOf lists the fields a problem's errors[] names, in order.
func fieldsOf(p problem.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// sameJSON reports whether a and b are the same JSON value (Postgres' jsonb reorders keys and
// reformats white space).
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// nested is a metadata object nested depth levels deep: {"a":{"a":...{"a":1}...}}.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// rawField is one field of an answer's JSON, as sent.
func rawField(t testing.TB, w *httptest.ResponseRecorder, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	v, ok := m[field]
	if !ok {
		t.Fatalf("no %q in %s", field, w.Body)
	}
	return string(v)
}

// expires_in sets the invitation's validity: expires_at is created_at + expires_in, the
// object shows it, and the workflow's timer follows it. Without it, INVITATION_TTL applies and
// is shown.
func TestCreateOptionExpiresIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, n := range []int64{60, 3600, int64(h.cfg.InvitationTTLMax / time.Second)} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := h.with(t)
			got := h.create(h.inviteBody(uniqueEmail("ttl"), fmt.Sprintf(`,"expires_in":%d`, n)))
			if got.ExpiresIn == nil || *got.ExpiresIn != n {
				t.Fatalf("expires_in = %v, want %d", got.ExpiresIn, n)
			}
			if d := got.ExpiresAt.Sub(got.CreatedAt) - time.Duration(n)*time.Second; d < -time.Second || d > time.Second {
				t.Errorf("expires_at %s is not created_at %s + %ds", got.ExpiresAt, got.CreatedAt, n)
			}
			again := h.detail(got.ID)
			if again.ExpiresIn == nil || *again.ExpiresIn != n || !again.ExpiresAt.Equal(got.ExpiresAt) {
				t.Errorf("GET: expires_in %v expires_at %s, the 201's %s", again.ExpiresIn, again.ExpiresAt, got.ExpiresAt)
			}
			if row := h.row(got.ID); row.ExpiresIn != time.Duration(n)*time.Second || !row.ExpiresAt.Equal(got.ExpiresAt) {
				t.Errorf("row: expires_in %s expires_at %s", row.ExpiresIn, row.ExpiresAt)
			}
			if st := workflowState(t, got.ID); !st.ExpiresAt.Truncate(time.Microsecond).Equal(got.ExpiresAt) {
				t.Errorf("the workflow expires it at %s, the answer says %s", st.ExpiresAt, got.ExpiresAt)
			}
		})
	}
	// Absent: INVITATION_TTL, shown as its seconds.
	got := h.create(h.inviteBody(uniqueEmail("default-ttl"), ""))
	ttl := int64(h.cfg.InvitationTTL / time.Second)
	if got.ExpiresIn == nil || *got.ExpiresIn != ttl {
		t.Errorf("default expires_in = %v, want %d", got.ExpiresIn, ttl)
	}
	if d := got.ExpiresAt.Sub(got.CreatedAt) - h.cfg.InvitationTTL; d < -time.Second || d > time.Second {
		t.Errorf("default expires_at %s is not created_at %s + INVITATION_TTL", got.ExpiresAt, got.CreatedAt)
	}
}

// The longest expires_in is the configured INVITATION_TTL_MAX, on create and on edit.
func TestExpiresInConfiguredMax(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withConfig(func(c *config.Config) { c.InvitationTTLMax = 2 * time.Hour; c.InvitationTTL = time.Hour }))
	path := h.accountPath("/invitations")
	p := decodeProblem(t, h.api("POST", path, h.inviteBody(uniqueEmail("max"), `,"expires_in":7201`)), 422, contract.CodeValidation)
	if !slices.Equal(fieldsOf(p), []string{"expires_in"}) || !strings.Contains(p.Errors[0].Message, "7200") {
		t.Errorf("errors = %+v", p.Errors)
	}
	got := h.create(h.inviteBody(uniqueEmail("max"), `,"expires_in":7200`))
	if *got.ExpiresIn != 7200 {
		t.Errorf("expires_in = %d", *got.ExpiresIn)
	}
	p = decodeProblem(t, h.api("PATCH", path+"/"+got.ID.String(), `{"expires_in":7201}`), 422, contract.CodeValidation)
	if !slices.Equal(fieldsOf(p), []string{"expires_in"}) {
		t.Errorf("PATCH errors = %+v", p.Errors)
	}
	decodeJSON[invitationView](t, h.api("PATCH", path+"/"+got.ID.String(), `{"expires_in":7200}`), 200)
}

// send_email false creates a pending invitation with its link and sends nothing; a resend
// sends the first email, with the same link.
func TestCreateOptionSendEmailFalse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := uniqueEmail("quiet")
	w := h.api("POST", h.accountPath("/invitations"), h.inviteBody(email, `,"send_email":false`))
	got := decodeJSON[invitationView](t, w, 201)
	if got.Status != "pending" || got.Sends != 0 || got.Delivery != nil || got.InviteURL == nil || got.SendEmail {
		t.Fatalf("created = %+v (delivery %+v)", got, got.Delivery)
	}
	if d := rawField(t, w, "delivery"); d != "null" {
		t.Errorf("delivery = %s, want null", d)
	}
	if s := rawField(t, w, "send_email"); s != "false" {
		t.Errorf("send_email = %s", s)
	}
	// The link works: the invitee can preview it.
	if p := h.previewOf(got); p["status"] != "pending" || p["email"] != email {
		t.Errorf("preview = %v", p)
	}

	// Nothing is sent, or recorded to send, after a while; an edit sends nothing either.
	if e := decodeJSON[invitationView](t, h.api("PATCH", h.accountPath("/invitations/"+got.ID.String()), `{"message":"still quiet","expires_in":7200}`), 200); e.Sends != 0 || e.Delivery != nil {
		t.Errorf("edited = %+v", e)
	}
	time.Sleep(4 * time.Second)
	if n := len(stack.Resend.EmailsTo(email)); n != 0 {
		t.Fatalf("%d emails to %s", n, email)
	}
	if n := emailRows(t, got.ID); n != 0 {
		t.Fatalf("%d email rows for the invitation", n)
	}
	again := h.detail(got.ID)
	if again.Sends != 0 || again.Delivery != nil || again.InviteURL == nil || *again.InviteURL != *got.InviteURL || again.SendEmail {
		t.Fatalf("after a while = %+v (delivery %+v)", again.invitationView, again.Delivery)
	}
	if st := workflowState(t, got.ID); st.InviteSent || st.Sends != 0 {
		t.Errorf("workflow state %+v", st)
	}

	// A resend sends the first email, with the same link.
	resent := decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+got.ID.String()+"/resend"), ""), 200)
	if resent.Status != "pending" || resent.InviteURL == nil || *resent.InviteURL != *got.InviteURL || !resent.ExpiresAt.Equal(again.ExpiresAt) {
		t.Errorf("resend = %+v", resent)
	}
	eventually(t, 20*time.Second, "the first email to "+email, func() bool { return len(stack.Resend.EmailsTo(email)) == 1 })
	if text := stack.Resend.EmailsTo(email)[0].Text; !strings.Contains(text, *got.InviteURL) {
		t.Errorf("the email lacks the link %s:\n%s", *got.InviteURL, text)
	}
	eventually(t, 20*time.Second, "the invitation to show one send", func() bool {
		v := h.detail(got.ID)
		return v.Sends == 1 && v.Delivery != nil && v.Delivery.Status == contract.DeliverySent
	})
	time.Sleep(time.Second)
	if n := len(stack.Resend.EmailsTo(email)); n != 1 {
		t.Errorf("%d emails after one resend", n)
	}
}

// message is trimmed, keeps its line breaks as \n, is shown on the invitation and the
// preview, and is in both parts of the invite email: as text in the text part, escaped in the
// HTML part (never as markup).
func TestCreateOptionMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := uniqueEmail("note")
	sent := "  Welcome aboard, Jane!\r\nSee <b>hi</b> & \"x\"\n  "
	want := "Welcome aboard, Jane!\nSee <b>hi</b> & \"x\""
	got := h.create(h.inviteBody(email, `,"inviter":{"name":"Ada","email":"ada@acme.test"},"message":`+jsonString(sent)))
	if got.Message == nil || *got.Message != want {
		t.Fatalf("message = %q, want %q", deref(got.Message), want)
	}
	if v := h.detail(got.ID); v.Message == nil || *v.Message != want {
		t.Errorf("GET message = %q", deref(v.Message))
	}
	if p := h.previewOf(got); p["message"] != want {
		t.Errorf("preview message = %v", p["message"])
	}

	eventually(t, 20*time.Second, "the invite email to "+email, func() bool { return len(stack.Resend.EmailsTo(email)) == 1 })
	e := stack.Resend.EmailsTo(email)[0]
	l1, l2 := strings.Index(e.Text, "Welcome aboard, Jane!"), strings.Index(e.Text, `See <b>hi</b> & "x"`)
	if l1 < 0 || l2 < 0 || l1 > l2 || !strings.Contains(e.Text[l1:l2], "\n") {
		t.Errorf("the text part lacks the note's two lines:\n%s", e.Text)
	}
	if strings.Contains(e.HTML, "<b>hi</b>") || strings.Contains(e.HTML, "<b>") {
		t.Errorf("the HTML part has the note's markup unescaped:\n%s", e.HTML)
	}
	h1 := strings.Index(e.HTML, "Welcome aboard, Jane!")
	h2 := strings.Index(e.HTML, "See &lt;b&gt;hi&lt;/b&gt; &amp; ")
	if h1 < 0 || h2 < 0 || h1 > h2 || !strings.Contains(e.HTML[h1:h2], "<br") {
		t.Errorf("the HTML part lacks the note's two lines, escaped:\n%s", e.HTML)
	}
	if !strings.Contains(e.HTML, "&#34;x&#34;") && !strings.Contains(e.HTML, "&quot;x&quot;") {
		t.Errorf("the HTML part lacks the escaped quotes:\n%s", e.HTML)
	}

	// Absent, or only white space: no note.
	plain := h.create(h.inviteBody(uniqueEmail("no-note"), ""))
	blank := h.create(h.inviteBody(uniqueEmail("blank-note"), `,"message":"  \n "`))
	for _, v := range []invitationView{plain, blank} {
		if v.Message != nil {
			t.Errorf("message = %q, want null", *v.Message)
		}
		if p := h.previewOf(v); p["message"] != nil {
			t.Errorf("preview message = %v, want null", p["message"])
		}
	}
	// 500 characters, not bytes.
	long := strings.Repeat("é", 500)
	if v := h.create(h.inviteBody(uniqueEmail("long-note"), `,"message":`+jsonString(long))); v.Message == nil || *v.Message != long {
		t.Errorf("a 500-character message came back as %q", deref(v.Message))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// metadata round-trips on the invitation, is in its events, is the invited entry's on the
// users list, and is copied onto the membership on acceptance; {} when none was given.
func TestCreateOptionMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	meta := `{ "crm_id" : "C-42", "tier": {"name": "gold", "seats": [1, 2.5, -3]}, "flag": true, "none": null, "é": "ü" }`
	email, plainEmail := uniqueEmail("meta"), uniqueEmail("no-meta")
	got := h.create(h.inviteBody(email, `,"metadata":`+meta))
	if !sameJSON(t, got.Metadata, []byte(meta)) {
		t.Fatalf("metadata = %s, want %s", got.Metadata, meta)
	}
	if v := h.detail(got.ID); !sameJSON(t, v.Metadata, []byte(meta)) {
		t.Errorf("GET metadata = %s", v.Metadata)
	}
	w := h.api("POST", h.accountPath("/invitations"), h.inviteBody(plainEmail, ""))
	plain := decodeJSON[invitationView](t, w, 201)
	if m := rawField(t, w, "metadata"); m != "{}" {
		t.Errorf("metadata without one = %s, want {}", m)
	}
	// null is absent.
	if v := h.create(h.inviteBody(uniqueEmail("null-meta"), `,"metadata":null`)); string(v.Metadata) != "{}" {
		t.Errorf("metadata null = %s, want {}", v.Metadata)
	}

	// The invited entries of the users list.
	if u := h.userEntry(email); u.State != "invited" || !sameJSON(t, u.Metadata, []byte(meta)) {
		t.Errorf("invited entry = %+v (metadata %s)", u, u.Metadata)
	}
	if u := h.userEntry(plainEmail); u.State != "invited" || string(u.Metadata) != "{}" {
		t.Errorf("invited entry without metadata = %+v (metadata %s)", u, u.Metadata)
	}

	// Accepted: the membership has it.
	for _, inv := range []invitationView{got, plain} {
		decodeJSON[acceptView](t, h.accept(h.token(h.row(inv.ID))), 200)
	}
	if u := h.userEntry(email); u.State != "active" || u.UserID == nil || !sameJSON(t, u.Metadata, []byte(meta)) {
		t.Errorf("member entry = %+v (metadata %s)", u, u.Metadata)
	}
	if u := h.userEntry(plainEmail); u.State != "active" || string(u.Metadata) != "{}" {
		t.Errorf("member entry without metadata = %+v (metadata %s)", u, u.Metadata)
	}
	raw := h.api("GET", h.accountPath("/users"), "").Body.String()
	if strings.Contains(raw, `"metadata":null`) {
		t.Errorf("a users-list entry has null metadata: %s", raw)
	}

	// The events carry it.
	events := h.storeEvents(4, contract.PublicCreated, contract.PublicAccepted)
	for _, e := range events {
		if e.Invitation.ID != got.ID {
			continue
		}
		if !sameJSON(t, e.Invitation.Metadata, []byte(meta)) {
			t.Errorf("%s event metadata = %s", e.Type, e.Invitation.Metadata)
		}
	}
	feed, _ := h.feed("&type=invitation.accepted", 100, "")
	found := false
	for _, e := range feed {
		if e.Data.Invitation.ID == got.ID {
			found = true
			if !sameJSON(t, e.Data.Invitation.Metadata, []byte(meta)) {
				t.Errorf("accepted event metadata = %s", e.Data.Invitation.Metadata)
			}
		}
	}
	if !found {
		t.Errorf("no accepted event for %s in %+v", got.ID, feed)
	}
}

// redirect_url must have an origin in the account's allowed_redirect_origins (none by
// default); the preview shows it only while its origin is allowed.
func TestCreateOptionRedirectURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/invitations")
	good := "https://app.acme.test/welcome?from=invite#top"
	seatsBefore := *h.subscription().SeatsReserved

	refused := func(t *testing.T, redirect string) {
		t.Helper()
		email := uniqueEmail("redirect")
		p := decodeProblem(t, h.with(t).api("POST", path, h.inviteBody(email, `,"redirect_url":`+jsonString(redirect))), 422, contract.CodeRedirectNotAllowed)
		if !slices.Equal(fieldsOf(p), []string{"redirect_url"}) {
			t.Errorf("%q: errors = %+v", redirect, p.Errors)
		}
		if l := h.with(t).invitationsFor(email); len(l) != 0 {
			t.Errorf("%q: a refused create left %+v", redirect, l)
		}
	}
	// No origins allowed (the default): every redirect is refused.
	t.Run("no origins", func(t *testing.T) { refused(t, good) })

	h.putSettings(nil, []string{"https://app.acme.test"})
	for _, r := range []string{
		"javascript:alert(1)",
		"//evil.example/x",
		"/relative",
		"relative/path",
		"https://app.acme.test.evil.example/",
		"https://evil.example/https://app.acme.test/",
		"https://app.acme.test@evil.example/",
		"http://app.acme.test/welcome",
		"https://app.acme.test:8443/welcome",
		"data:text/html,<script>alert(1)</script>",
	} {
		t.Run(r, func(t *testing.T) { refused(t, r) })
	}
	if s := h.subscription(); *s.SeatsReserved != seatsBefore {
		t.Errorf("refused creates changed the seats: %+v", s)
	}

	// An allowed origin: kept on the invitation and shown by the preview.
	got := h.create(h.inviteBody(uniqueEmail("redirect-ok"), `,"redirect_url":`+jsonString(good)))
	if got.RedirectURL == nil || *got.RedirectURL != good {
		t.Fatalf("redirect_url = %q, want %q", deref(got.RedirectURL), good)
	}
	if v := h.detail(got.ID); v.RedirectURL == nil || *v.RedirectURL != good {
		t.Errorf("GET redirect_url = %q", deref(v.RedirectURL))
	}
	if p := h.previewOf(got); p["redirect_url"] != good {
		t.Errorf("preview redirect_url = %v, want %q", p["redirect_url"], good)
	}
	// Without one: null.
	plain := h.create(h.inviteBody(uniqueEmail("no-redirect"), ""))
	if plain.RedirectURL != nil {
		t.Errorf("redirect_url = %q, want null", *plain.RedirectURL)
	}
	if p := h.previewOf(plain); p["redirect_url"] != nil {
		t.Errorf("preview redirect_url = %v, want null", p["redirect_url"])
	}

	// The origin removed from the settings: the preview no longer gives it.
	h.putSettings(nil, []string{"https://other.acme.test"})
	if p := h.previewOf(got); p["redirect_url"] != nil {
		t.Errorf("preview redirect_url after the origin was removed = %v, want null", p["redirect_url"])
	}
	h.putSettings(nil, nil)
	if p := h.previewOf(got); p["redirect_url"] != nil {
		t.Errorf("preview redirect_url with no origins = %v, want null", p["redirect_url"])
	}
	// Allowed again: shown again.
	h.putSettings(nil, []string{"https://app.acme.test"})
	if p := h.previewOf(got); p["redirect_url"] != good {
		t.Errorf("preview redirect_url with the origin back = %v", p["redirect_url"])
	}
}

// Each option's limits: the refusal names the field, and nothing is created.
func TestCreateOptionLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withSeats(20))
	h.putSettings(nil, []string{"https://app.acme.test"})
	maxTTL := int64(h.cfg.InvitationTTLMax / time.Second)
	path := h.accountPath("/invitations")
	seatsBefore := *h.subscription().SeatsReserved

	big := `{"k":"` + strings.Repeat("a", maxMetadataBytes-7) + `"}` // 4097 bytes
	for _, tc := range []struct {
		name, extra, field string
	}{
		{"expires_in 59", `,"expires_in":59`, "expires_in"},
		{"expires_in 0", `,"expires_in":0`, "expires_in"},
		{"expires_in negative", `,"expires_in":-60`, "expires_in"},
		{"expires_in over the max", fmt.Sprintf(`,"expires_in":%d`, maxTTL+1), "expires_in"},
		{"expires_in not an integer", `,"expires_in":60.5`, "expires_in"},
		{"expires_in a string", `,"expires_in":"3600"`, "expires_in"},
		{"expires_in huge", `,"expires_in":99999999999999999999`, "expires_in"},
		{"send_email a string", `,"send_email":"false"`, "send_email"},
		{"message 501 characters", `,"message":` + jsonString(strings.Repeat("a", 501)), "message"},
		{"message control character", `,"message":"ring \u0007 the bell"`, "message"},
		{"message bidi override", `,"message":"abc \u202e cba"`, "message"},
		{"message NUL", `,"message":"a\u0000b"`, "message"},
		{"message not a string", `,"message":42`, "message"},
		{"metadata array", `,"metadata":[1]`, "metadata"},
		{"metadata string", `,"metadata":"x"`, "metadata"},
		{"metadata number", `,"metadata":3`, "metadata"},
		{"metadata bool", `,"metadata":true`, "metadata"},
		{"metadata over 4096 bytes", `,"metadata":` + big, "metadata"},
		{"metadata 17 levels", `,"metadata":` + nested(17), "metadata"},
		{"metadata 17 levels with arrays", `,"metadata":{"a":` + strings.Repeat("[", 16) + strings.Repeat("]", 16) + `}`, "metadata"},
		{"redirect_url with a space", `,"redirect_url":"https://app.acme.test/a b"`, "redirect_url"},
		{"redirect_url over 2048 characters", `,"redirect_url":"https://app.acme.test/` + strings.Repeat("a", 2048) + `"`, "redirect_url"},
		{"redirect_url control character", `,"redirect_url":"https://app.acme.test/\u0007"`, "redirect_url"},
		{"redirect_url not a string", `,"redirect_url":{}`, "redirect_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email := uniqueEmail("limit")
			p := decodeProblem(t, h.with(t).api("POST", path, h.inviteBody(email, tc.extra)), 422, contract.CodeValidation)
			if !slices.Equal(fieldsOf(p), []string{tc.field}) {
				t.Errorf("errors = %+v, want only %s", p.Errors, tc.field)
			}
			if !strings.Contains(p.Detail, tc.field) {
				t.Errorf("detail %q does not name %s", p.Detail, tc.field)
			}
			if l := h.with(t).invitationsFor(email); len(l) != 0 {
				t.Errorf("a refused create left %+v", l)
			}
		})
	}
	// Several bad options at once: each named.
	p := decodeProblem(t, h.api("POST", path, h.inviteBody(uniqueEmail("limits"),
		`,"expires_in":59,"message":"a\u0007","metadata":`+big+`,"redirect_url":"https://app.acme.test/a b"`)), 422, contract.CodeValidation)
	for _, f := range []string{"expires_in", "message", "metadata", "redirect_url"} {
		if !hasField(&p, f) {
			t.Errorf("errors %+v do not name %s", p.Errors, f)
		}
	}
	if s := h.subscription(); *s.SeatsReserved != seatsBefore {
		t.Errorf("refused creates changed the seats: %+v", s)
	}

	// The limits themselves are allowed: 4096 bytes serialised (compact: white space outside
	// strings does not count) and 16 levels.
	exact := `{ "k" : "` + strings.Repeat("a", maxMetadataBytes-8) + `" }`
	for _, tc := range []struct{ name, metadata string }{
		{"4096 bytes", exact},
		{"16 levels", nested(16)},
		{"16 levels with arrays", `{"a":` + strings.Repeat("[", 15) + strings.Repeat("]", 15) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.with(t).create(h.inviteBody(uniqueEmail("limit-ok"), `,"metadata":`+tc.metadata))
			if !sameJSON(t, got.Metadata, []byte(tc.metadata)) {
				t.Errorf("metadata = %.100s...", got.Metadata)
			}
		})
	}
}

// allowed_email_domains: an address at a listed domain or one of its subdomains is invited;
// any other is refused with domain_not_allowed, and nothing is created.
func TestCreateDomainPolicy(t *testing.T) {
	t.Parallel()
	h, outside := newHarness(t), newHarness(t)
	path := h.accountPath("/invitations")
	h.putSettings([]string{"acme.test"}, nil)

	for _, email := range []string{uniqueAt("a", "acme.test"), uniqueAt("a", "eu.acme.test"), uniqueAt("A", "ACME.Test"), uniqueAt("a", "x.eu.acme.test")} {
		if got := h.create(h.inviteBody(email, "")); got.Status != "pending" {
			t.Errorf("%s: %+v", email, got)
		}
	}
	seatsBefore := *h.subscription().SeatsReserved
	for _, email := range []string{uniqueAt("a", "evilacme.test"), uniqueAt("a", "other.test"), uniqueAt("a", "acme.test.evil.example"), uniqueAt("a", "acme.testing")} {
		p := decodeProblem(t, h.api("POST", path, h.inviteBody(email, "")), 422, contract.CodeDomainNotAllowed)
		if !slices.Equal(fieldsOf(p), []string{"email"}) {
			t.Errorf("%s: errors = %+v", email, p.Errors)
		}
		if l := h.invitationsFor(email); len(l) != 0 {
			t.Errorf("%s: a refused create left %+v", email, l)
		}
		var n int
		if err := stack.Store.Pool.QueryRow(context.Background(), `select count(*) from invitations where lower(email) = lower($1)`, email).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d invitation rows (%v)", email, n, err)
		}
	}
	if s := h.subscription(); *s.SeatsReserved != seatsBefore {
		t.Errorf("refused creates changed the seats: %d reserved, %d before", *s.SeatsReserved, seatsBefore)
	}

	// An existing user invited by user_id is judged by their address.
	outsider := outside.member(uniqueAt("user", "other.test"))
	insider := outside.member(uniqueAt("user", "eu.acme.test"))
	byID := func(id uuid.UUID) string {
		return fmt.Sprintf(`{"user_id":%q,"subscription_id":%q,"role":"editor"}`, id, h.sub.ID)
	}
	p := decodeProblem(t, h.api("POST", path, byID(outsider)), 422, contract.CodeDomainNotAllowed)
	if strings.Contains(p.Detail, "other.test") {
		t.Errorf("the refusal names the user's address: %q", p.Detail)
	}
	if got := h.create(byID(insider)); got.UserID == nil || *got.UserID != insider {
		t.Errorf("invited by user_id: %+v", got)
	}

	// An IDN entry matches the address in either form, any case.
	idn := newHarness(t)
	idn.putSettings([]string{"bücher.example"}, nil)
	for _, email := range []string{uniqueAt("x", "BÜCHER.example"), uniqueAt("x", "xn--bcher-kva.example"), uniqueAt("x", "shop.bücher.example")} {
		if got := idn.create(idn.inviteBody(email, "")); got.Status != "pending" {
			t.Errorf("%s: %+v", email, got)
		}
	}
	for _, email := range []string{uniqueAt("x", "bucher.example"), uniqueAt("x", "xn--bcher-kva.example.evil")} {
		decodeProblem(t, idn.api("POST", idn.accountPath("/invitations"), idn.inviteBody(email, "")), 422, contract.CodeDomainNotAllowed)
	}

	// Empty lists: no restriction.
	h.putSettings(nil, nil)
	h.create(h.inviteBody(uniqueAt("a", "other.test"), ""))
}

// A renew sends a new link: it is refused for an address the account's settings no longer
// allow, and the invitation stays expired.
func TestRenewDomainPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shortTTL())
	inv := h.expired(uniqueEmail("renew"))
	renew := h.accountPath("/invitations/" + inv.ID.String() + "/renew")
	h.putSettings([]string{"other.example"}, nil)
	p := decodeProblem(t, h.api("POST", renew, ""), 422, contract.CodeDomainNotAllowed)
	if !slices.Equal(fieldsOf(p), []string{"email"}) {
		t.Errorf("errors = %+v", p.Errors)
	}
	if row := h.row(inv.ID); row.Status != contract.StatusExpired || row.Generation != inv.Generation {
		t.Errorf("after the refused renew: %s generation %d", row.Status, row.Generation)
	}
	if s := h.subscription(); *s.SeatsReserved != 0 {
		t.Errorf("the refused renew took a seat: %+v", s)
	}
	// The domain allowed again: renewed.
	h.putSettings([]string{"acme.test"}, nil)
	got := decodeJSON[invitationView](t, h.api("POST", renew, ""), 200)
	if got.Status != "pending" || h.row(inv.ID).Generation != inv.Generation+1 {
		t.Errorf("renewed = %+v", got)
	}
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+inv.ID.String()+"/revoke"), ""), 200)
}

// The options are part of the request an Idempotency-Key names: the same body (up to white
// space) replays, a different option is a conflict.
func TestCreateIdempotencyWithOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.putSettings(nil, []string{"https://app.acme.test"})
	path := h.accountPath("/invitations")
	email := uniqueEmail("idem")
	opts := `,"expires_in":7200,"send_email":false,"message":"Hello\nthere","metadata":{"crm":"42","n":[1,2]},"redirect_url":"https://app.acme.test/welcome"`
	body := h.inviteBody(email, opts)
	first := h.create(body, "Idempotency-Key", "opts-1")

	for _, replay := range []string{
		body,
		h.inviteBody(email, `,"expires_in":7200,"send_email":false,"message":"  Hello\r\nthere ","metadata":{ "crm" : "42", "n" : [1, 2] },"redirect_url":"https://app.acme.test/welcome"`),
	} {
		w := h.api("POST", path, replay, "Idempotency-Key", "opts-1")
		again := decodeJSON[invitationView](t, w, 201)
		if again.ID != first.ID || w.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay = %s %v", again.ID, w.Header())
		}
		if deref(again.Message) != "Hello\nthere" || *again.ExpiresIn != 7200 || again.SendEmail || deref(again.RedirectURL) != "https://app.acme.test/welcome" ||
			!sameJSON(t, again.Metadata, []byte(`{"crm":"42","n":[1,2]}`)) {
			t.Errorf("replay = %+v", again)
		}
	}
	for name, changed := range map[string]string{
		"message":      strings.Replace(body, `Hello\nthere`, `Hello\nyou`, 1),
		"no message":   strings.Replace(body, `,"message":"Hello\nthere"`, "", 1),
		"expires_in":   strings.Replace(body, "7200", "7260", 1),
		"send_email":   strings.Replace(body, `"send_email":false`, `"send_email":true`, 1),
		"metadata":     strings.Replace(body, `"crm":"42"`, `"crm":"43"`, 1),
		"redirect_url": strings.Replace(body, "/welcome", "/start", 1),
	} {
		if changed == body {
			t.Fatalf("%s: the body did not change", name)
		}
		decodeProblem(t, h.api("POST", path, changed, "Idempotency-Key", "opts-1"), 422, contract.CodeIdempotencyConflict)
	}
	if l := h.invitationsFor(email); len(l) != 1 || l[0].ID != first.ID {
		t.Errorf("invitations for the key: %+v", l)
	}
}
