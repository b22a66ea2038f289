package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Version 2's invitation options (expires_in, send_email, message, metadata, redirect_url),
// the edit of a pending invitation (PATCH) and the account's settings (allowed email domains
// and redirect origins), end to end through the public API, as the portal and the invitee
// meet them.

// optInvitation is the invitation object with the options' fields.
type optInvitation struct {
	invitation
	ExpiresIn   *int64          `json:"expires_in"`
	SendEmail   *bool           `json:"send_email"`
	Message     *string         `json:"message"`
	Metadata    json.RawMessage `json:"metadata"`
	RedirectURL *string         `json:"redirect_url"`
}

// optUser is a users-list entry with its metadata.
type optUser struct {
	accountUser
	Metadata json.RawMessage `json:"metadata"`
}

// accountSettings is the body of GET and PUT .../settings.
type accountSettings struct {
	AllowedEmailDomains    []string `json:"allowed_email_domains"`
	AllowedRedirectOrigins []string `json:"allowed_redirect_origins"`
}

// optPreview is the invitee's preview with the options' fields.
type optPreview struct {
	Status      string    `json:"status"`
	Role        string    `json:"role"`
	ExpiresAt   time.Time `json:"expires_at"`
	Message     *string   `json:"message"`
	RedirectURL *string   `json:"redirect_url"`
}

// createRaw posts f's usual body for email with opts merged in (a nil value removes a field).
func (f fixture) createRaw(t *testing.T, c apiClient, email string, opts map[string]any) response {
	t.Helper()
	body := f.inviteBody(email)
	for k, v := range opts {
		if v == nil {
			delete(body, k)
			continue
		}
		body[k] = v
	}
	return c.do(t, "POST", f.path("/invitations"), body)
}

// createWith creates an invitation with options and returns it.
func (f fixture) createWith(t *testing.T, c apiClient, email string, opts map[string]any) optInvitation {
	t.Helper()
	var inv optInvitation
	f.createRaw(t, c, email, opts).expect(t, 201).decode(t, &inv)
	if inv.InviteURL == nil {
		t.Fatalf("created invitation %+v has no invite_url", inv)
	}
	return inv
}

func (f fixture) getOpt(t *testing.T, c apiClient, id string) optInvitation {
	t.Helper()
	res, err := c.typed(t).GetInvitationWithResponse(context.Background(), mustID(t, f.AccountID), mustID(t, id))
	noErr(t, "get invitation", err)
	r := asResponse(t, "get invitation", res.HTTPResponse, res.Body).expect(t, 200)
	if res.JSON200 == nil {
		t.Fatalf("get invitation: no invitation in %s", r.Body)
	}
	var inv optInvitation
	r.decode(t, &inv)
	return inv
}

func (f fixture) patch(t *testing.T, c apiClient, id string, body any) response {
	t.Helper()
	return c.do(t, "PATCH", f.path("/invitations/"+id), body)
}

// putSettings replaces f's settings and returns them as answered.
func (f fixture) putSettings(t *testing.T, domains, origins []string) accountSettings {
	t.Helper()
	var st accountSettings
	portal().do(t, "PUT", f.path("/settings"), accountSettings{AllowedEmailDomains: domains, AllowedRedirectOrigins: origins}).
		expect(t, 200).decode(t, &st)
	return st
}

func (f fixture) settings(t *testing.T) accountSettings {
	t.Helper()
	var st accountSettings
	portal().do(t, "GET", f.path("/settings"), nil).expect(t, 200).decode(t, &st)
	return st
}

// optUsers is f's users list by lower-cased email, with metadata.
func (f fixture) optUsers(t *testing.T) map[string]optUser {
	t.Helper()
	var out struct{ Items []optUser }
	portal().do(t, "GET", f.path("/users"), nil).expect(t, 200).decode(t, &out)
	m := map[string]optUser{}
	for _, u := range out.Items {
		m[strings.ToLower(u.Email)] = u
	}
	return m
}

func optPreviewOf(t *testing.T, token string) optPreview {
	t.Helper()
	var pv optPreview
	previewOf(t, token).expect(t, 200).decode(t, &pv)
	return pv
}

// sameJSON reports whether got holds the same JSON value as want (key order and spacing aside).
func sameJSON(t *testing.T, got json.RawMessage, want any) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("not JSON: %s (%v)", got, err)
		return false
	}
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

// asRaw is v (a decoded JSON value) as raw JSON.
func asRaw(t *testing.T, v any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// feedOf is the feed's events of one invitation, in feed order.
func (f fixture) feedOf(t *testing.T, id, query string) []feedEvent {
	t.Helper()
	var out []feedEvent
	for _, e := range f.feed(t, query) {
		if e.Data.Invitation["id"] == id {
			out = append(out, e)
		}
	}
	return out
}

// emailsAbout are the emails to addr whose subject contains substr.
func emailsAbout(addr, substr string) int {
	n := 0
	for _, e := range stack.Resend.EmailsTo(addr) {
		if strings.Contains(e.Subject, substr) {
			n++
		}
	}
	return n
}

// hostedPage is the HTML of the invite page of token, which must answer 200 with the invite view.
func hostedPage(t *testing.T, token string) string {
	t.Helper()
	resp, err := http.Get(stack.API.URL + "/invite?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), `data-view="invite"`) {
		t.Fatalf("the hosted page answered %d:\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// within reports whether a and b are at most d apart.
func within(a, b time.Time, d time.Duration) bool {
	diff := a.Sub(b)
	return diff >= -d && diff <= d
}

// TestOptionExpiresIn: expires_in sets this invitation's validity (expires_at = created_at +
// expires_in), and every answer agrees; absent, it is INVITATION_TTL; outside 60 ≤ n ≤
// INVITATION_TTL_MAX it is refused naming the field.
func TestOptionExpiresIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	inv := f.createWith(t, portal(), unique("Exp.In"), map[string]any{"expires_in": 3600})
	if inv.ExpiresIn == nil || *inv.ExpiresIn != 3600 {
		t.Errorf("expires_in answered %v, want 3600", inv.ExpiresIn)
	}
	if want := inv.CreatedAt.Add(time.Hour); !within(inv.ExpiresAt, want, 2*time.Second) {
		t.Errorf("expires_at %s, want created_at %s + 1h = %s", inv.ExpiresAt, inv.CreatedAt, want)
	}
	if got := f.getOpt(t, portal(), inv.ID); !got.ExpiresAt.Equal(inv.ExpiresAt) || got.ExpiresIn == nil || *got.ExpiresIn != 3600 {
		t.Errorf("GET answers expires_at %s expires_in %v; create answered %s", got.ExpiresAt, got.ExpiresIn, inv.ExpiresAt)
	}
	if l := f.link(t, inv.ID); !l.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Errorf("link expires_at %s, invitation's %s", l.ExpiresAt, inv.ExpiresAt)
	}
	if pv := optPreviewOf(t, tokenOf(t, *inv.InviteURL)); !pv.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Errorf("preview expires_at %s, invitation's %s", pv.ExpiresAt, inv.ExpiresAt)
	}

	// Absent: INVITATION_TTL (168h).
	def := f.createWith(t, portal(), unique("Exp.Default"), nil)
	if want := def.CreatedAt.Add(stack.Cfg.InvitationTTL); !within(def.ExpiresAt, want, 2*time.Second) {
		t.Errorf("without expires_in, expires_at %s, want %s", def.ExpiresAt, want)
	}
	if def.ExpiresIn == nil || *def.ExpiresIn != int64(stack.Cfg.InvitationTTL/time.Second) {
		t.Errorf("without expires_in, expires_in answered %v, want INVITATION_TTL in seconds", def.ExpiresIn)
	}

	// The bounds.
	maxSeconds := int64(stack.Cfg.InvitationTTLMax / time.Second)
	atMax := f.createWith(t, portal(), unique("Exp.Max"), map[string]any{"expires_in": maxSeconds})
	if want := atMax.CreatedAt.Add(stack.Cfg.InvitationTTLMax); !within(atMax.ExpiresAt, want, 2*time.Second) {
		t.Errorf("expires_in INVITATION_TTL_MAX: expires_at %s, want %s", atMax.ExpiresAt, want)
	}
	for _, bad := range []any{59, 0, -60, maxSeconds + 1, "3600", 3600.5, true} {
		f.createRaw(t, portal(), unique("Exp.Bad"), map[string]any{"expires_in": bad}).expectInvalid(t, "expires_in")
	}
	if s := f.subscription(t); s.SeatsReserved != 3 {
		t.Errorf("subscription %+v: refused creates took seats", s)
	}
}

// TestOptionSendEmailFalse: send_email false creates the invitation without any email: the
// 201 has sends 0 and no delivery, its invite_url opens the hosted page, and nothing reaches
// the address; a resend then sends the first email, with that same link.
func TestOptionSendEmailFalse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	email := unique("Quiet.Quinn")
	r := f.createRaw(t, portal(), email, map[string]any{"send_email": false}).expect(t, 201)
	var inv optInvitation
	r.decode(t, &inv)
	var raw map[string]json.RawMessage
	r.decode(t, &raw)
	if inv.Sends != 0 || string(raw["delivery"]) != "null" || inv.Status != "pending" || inv.InviteURL == nil {
		t.Fatalf("created %s: want pending with sends 0, delivery null and an invite_url", r.Body)
	}
	if inv.SendEmail == nil || *inv.SendEmail {
		t.Errorf("send_email answered %v, want false", inv.SendEmail)
	}
	token := tokenOf(t, *inv.InviteURL)
	if pv := optPreviewOf(t, token); pv.Status != "pending" {
		t.Fatalf("the link previews as %+v", pv)
	}
	// The hosted page of the link, as the invitee's browser gets it.
	if page := hostedPage(t, token); !strings.Contains(page, f.AccountName) {
		t.Fatalf("the hosted page does not name the account:\n%s", page)
	}

	// Nothing is sent: not now, not a little later.
	time.Sleep(2 * time.Second)
	if n := len(stack.Resend.EmailsTo(email)); n != 0 {
		t.Fatalf("%d emails reached %s, created with send_email false", n, email)
	}
	got := f.getOpt(t, portal(), inv.ID)
	if got.Sends != 0 || got.Delivery != nil || got.Status != "pending" {
		t.Fatalf("later, the invitation has sends %d delivery %+v status %s", got.Sends, got.Delivery, got.Status)
	}
	if types := typesByInvitation(f.feed(t, ""))[inv.ID]; slices.Contains(types, "invitation.sent") {
		t.Errorf("feed %v has invitation.sent for an invitation never emailed", types)
	}

	// A resend sends the first email, with the link the portal already has.
	var resent optInvitation
	f.action(t, portal(), inv.ID, "resend").expect(t, 200).decode(t, &resent)
	if resent.InviteURL == nil || *resent.InviteURL != *inv.InviteURL || !resent.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Errorf("resend answered link %v expiring %s; want the same link %s and expiry %s", resent.InviteURL, resent.ExpiresAt, *inv.InviteURL, inv.ExpiresAt)
	}
	text := waitEmail(t, email, "invited you", 1)
	if !strings.Contains(text, *inv.InviteURL) {
		t.Errorf("the first email lacks the invitation's link %s:\n%s", *inv.InviteURL, text)
	}
	eventually(t, 10*time.Second, "the first send to be recorded", func() bool {
		g := f.getOpt(t, portal(), inv.ID)
		return g.Sends == 1 && g.Delivery != nil && g.Delivery.Status == "sent"
	})
	eventually(t, 10*time.Second, "invitation.sent in the feed", func() bool {
		return slices.Contains(typesByInvitation(f.feed(t, ""))[inv.ID], "invitation.sent")
	})
	time.Sleep(500 * time.Millisecond)
	if n := len(stack.Resend.EmailsTo(email)); n != 1 {
		t.Errorf("%d emails reached %s after one resend, want 1", n, email)
	}
	// The link the portal shared works.
	accept(t, token).expect(t, 200)
}

// TestOptionMessage: the inviter's note is on the invitation, in the preview, and in both
// parts of the invite email, literally in the text part and escaped in the HTML part.
func TestOptionMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5)
	email := unique("Noted.Nora")
	msg := "Welcome aboard, Jane!\nBring <b>snacks</b> & \"tea\" <a href=\"https://evil.test\">here</a>"
	inv := f.createWith(t, portal(), email, map[string]any{"message": "  " + msg + "\r\n"})
	if inv.Message == nil || *inv.Message != msg {
		t.Fatalf("message answered %q, want %q (trimmed)", deref(inv.Message), msg)
	}
	if got := f.getOpt(t, portal(), inv.ID); got.Message == nil || *got.Message != msg {
		t.Errorf("GET answers message %q", deref(got.Message))
	}
	if pv := optPreviewOf(t, tokenOf(t, *inv.InviteURL)); pv.Message == nil || *pv.Message != msg {
		t.Errorf("preview answers message %q", deref(pv.Message))
	}

	text := waitEmail(t, email, "invited you", 1)
	for _, want := range []string{"Ada Admin wrote:", "Welcome aboard, Jane!", `Bring <b>snacks</b> & "tea" <a href="https://evil.test">here</a>`} {
		if !strings.Contains(text, want) {
			t.Errorf("the text part lacks %q:\n%s", want, text)
		}
	}
	var html string
	for _, e := range stack.Resend.EmailsTo(email) {
		if strings.Contains(e.Subject, "invited you") {
			html = e.HTML
		}
	}
	for _, want := range []string{"Welcome aboard, Jane!<br>Bring", "&lt;b&gt;snacks&lt;/b&gt;", "&amp;", "&lt;a href="} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML part lacks %q:\n%s", want, html)
		}
	}
	for _, bad := range []string{"<b>snacks", `<a href="https://evil.test"`, "evil.test\">"} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML part holds the message's markup %q unescaped:\n%s", bad, html)
		}
	}

	// The reminder carries the note too (short API: the reminder comes after 3 s).
	remindedEmail := unique("Reminded.Rose")
	f.createWith(t, short(), remindedEmail, map[string]any{"message": msg})
	if text := waitEmail(t, remindedEmail, "Reminder", 1); !strings.Contains(text, "Ada Admin wrote:") || !strings.Contains(text, "Welcome aboard, Jane!") {
		t.Errorf("the reminder lacks the note:\n%s", text)
	}

	// Without a message: null, and the email has no note.
	plainEmail := unique("Plain.Pat")
	plain := f.createWith(t, portal(), plainEmail, nil)
	if plain.Message != nil {
		t.Errorf("without a message, message answered %q", *plain.Message)
	}
	if text := waitEmail(t, plainEmail, "invited you", 1); strings.Contains(text, "wrote:") {
		t.Errorf("an email without a message has a note:\n%s", text)
	}

	// Plain text of at most 500 characters.
	f.createRaw(t, portal(), unique("Long"), map[string]any{"message": strings.Repeat("é", 501)}).expectInvalid(t, "message")
	f.createRaw(t, portal(), unique("Bell"), map[string]any{"message": "ring \a the bell"}).expectInvalid(t, "message")
	f.createRaw(t, portal(), unique("NotText"), map[string]any{"message": 42}).expectInvalid(t, "message")
	f.createWith(t, portal(), unique("Exactly500"), map[string]any{"message": strings.Repeat("é", 500)})
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// TestOptionMetadata: the portal's metadata comes back on the invitation (create, GET, list),
// in the events feed's data.invitation, and on the users-list entry, invited and then active.
func TestOptionMetadata(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	email := unique("Meta.Mia")
	meta := map[string]any{"crm_id": "c-42", "tags": []any{"vip", "emea"}, "nested": map[string]any{"level": 2.0, "ok": true, "none": nil},
		"note": "<b>&</b>"}
	inv := f.createWith(t, portal(), email, map[string]any{"metadata": meta})
	if !sameJSON(t, inv.Metadata, meta) {
		t.Fatalf("create answered metadata %s, want %v", inv.Metadata, meta)
	}
	if got := f.getOpt(t, portal(), inv.ID); !sameJSON(t, got.Metadata, meta) {
		t.Errorf("GET answers metadata %s", got.Metadata)
	}
	var list struct{ Items []optInvitation }
	portal().do(t, "GET", f.path("/invitations"), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 1 || !sameJSON(t, list.Items[0].Metadata, meta) {
		t.Errorf("list answers %+v", list.Items)
	}
	if u, ok := f.optUsers(t)[email]; !ok || u.State != "invited" || !sameJSON(t, u.Metadata, meta) {
		t.Errorf("the invited person is listed as %+v metadata %s", u.accountUser, u.Metadata)
	}

	// The feed: invitation.created carries the metadata, and no link.
	eventually(t, 10*time.Second, "invitation.created in the feed", func() bool {
		return len(f.feedOf(t, inv.ID, "&type=invitation.created")) == 1
	})
	created := f.feedOf(t, inv.ID, "&type=invitation.created")[0]
	if !sameJSON(t, asRaw(t, created.Data.Invitation["metadata"]), meta) {
		t.Errorf("invitation.created carries metadata %v, want %v", created.Data.Invitation["metadata"], meta)
	}
	if _, has := created.Data.Invitation["invite_url"]; has {
		t.Errorf("an event carries invite_url: %v", created.Data.Invitation)
	}

	// Accepted: the membership has the invitation's metadata, and so does the accepted event.
	var out struct {
		UserID string `json:"user_id"`
	}
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200).decode(t, &out)
	u := f.optUsers(t)[email]
	if u.State != "active" || u.UserID == nil || *u.UserID != out.UserID || !sameJSON(t, u.Metadata, meta) {
		t.Errorf("the member is listed as %+v metadata %s, want active with %v", u.accountUser, u.Metadata, meta)
	}
	eventually(t, 10*time.Second, "invitation.accepted in the feed", func() bool {
		return len(f.feedOf(t, inv.ID, "&type=invitation.accepted")) == 1
	})
	if acc := f.feedOf(t, inv.ID, "&type=invitation.accepted")[0]; !sameJSON(t, asRaw(t, acc.Data.Invitation["metadata"]), meta) {
		t.Errorf("invitation.accepted carries metadata %v", acc.Data.Invitation["metadata"])
	}

	// None given: {} on the invitation and on the users list.
	bareEmail := unique("Meta.None")
	bare := f.createWith(t, portal(), bareEmail, nil)
	if !sameJSON(t, bare.Metadata, map[string]any{}) {
		t.Errorf("without metadata, metadata answered %s, want {}", bare.Metadata)
	}
	if u := f.optUsers(t)[bareEmail]; !sameJSON(t, u.Metadata, map[string]any{}) {
		t.Errorf("without metadata, the users list has %s, want {}", u.Metadata)
	}

	// A JSON object of at most 4 KiB.
	for _, bad := range []any{[]any{1, 2}, "crm", 42, map[string]any{"big": strings.Repeat("x", 4100)}} {
		f.createRaw(t, portal(), unique("Meta.Bad"), map[string]any{"metadata": bad}).expectInvalid(t, "metadata")
	}
}

// TestOptionRedirectNeedsAllowedOrigin: an account's settings start empty, and without an
// allowed origin no redirect_url is accepted (and nothing is created).
func TestOptionRedirectNeedsAllowedOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	if st := f.settings(t); st.AllowedEmailDomains == nil || st.AllowedRedirectOrigins == nil ||
		len(st.AllowedEmailDomains) != 0 || len(st.AllowedRedirectOrigins) != 0 {
		t.Fatalf("a new account's settings %+v, want two empty lists", st)
	}
	r := f.createRaw(t, portal(), unique("Redirected"), map[string]any{"redirect_url": "https://app.example.test/welcome"})
	p := r.expectProblem(t, 422, "redirect_not_allowed")
	if len(p.Errors) != 1 || p.Errors[0].Field != "redirect_url" {
		t.Errorf("redirect_not_allowed names %+v, want redirect_url", p.Errors)
	}
	f.createRaw(t, portal(), unique("Spaced"), map[string]any{"redirect_url": "https://app.example.test/a b"}).expectInvalid(t, "redirect_url")
	if l := f.list(t, ""); len(l.Items) != 0 {
		t.Fatalf("refused creates made invitations: %+v", l.Items)
	}
	if s := f.subscription(t); s.SeatsAvailable != 1 {
		t.Fatalf("subscription %+v: a refused create holds a seat", s)
	}
	// Without a redirect_url, nothing changes.
	if inv := f.createWith(t, portal(), unique("Stay"), nil); inv.RedirectURL != nil {
		t.Errorf("redirect_url answered %q without one", *inv.RedirectURL)
	}
}

// TestEditPendingRoleAndMetadata: PATCH changes a pending invitation's role and metadata
// (replaced as a whole) and keeps its link, expiry and the rest; the feed tells of it with
// invitation.updated; the person who accepts becomes a member with the new role and metadata.
func TestEditPendingRoleAndMetadata(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	email := unique("Edited.Eve")
	inv := f.createWith(t, portal(), email, map[string]any{"message": "Hello Eve", "metadata": map[string]any{"crm_id": "42", "stage": "trial"}})

	newMeta := map[string]any{"team": "blue", "seats": []any{1.0, 2.0}}
	var edited optInvitation
	f.patch(t, portal(), inv.ID, map[string]any{"role": "admin", "metadata": newMeta}).expect(t, 200).decode(t, &edited)
	if edited.ID != inv.ID || edited.Status != "pending" || edited.Role != "admin" || !sameJSON(t, edited.Metadata, newMeta) {
		t.Fatalf("PATCH answered role %q metadata %s status %s, want admin with %v", edited.Role, edited.Metadata, edited.Status, newMeta)
	}
	if edited.InviteURL == nil || *edited.InviteURL != *inv.InviteURL || !edited.ExpiresAt.Equal(inv.ExpiresAt) ||
		deref(edited.Message) != "Hello Eve" || !slices.Equal(edited.GroupIDs, inv.GroupIDs) || edited.Sends != inv.Sends {
		t.Errorf("PATCH changed what it was not asked to: %+v, was %+v", edited, inv)
	}
	if !edited.UpdatedAt.After(inv.UpdatedAt) {
		t.Errorf("updated_at %s, not after %s", edited.UpdatedAt, inv.UpdatedAt)
	}
	got := f.getOpt(t, portal(), inv.ID)
	if got.Role != "admin" || !sameJSON(t, got.Metadata, newMeta) || !hasEvents(got.invitation, "updated") {
		t.Errorf("GET after PATCH: role %q metadata %s events %+v", got.Role, got.Metadata, got.Events)
	}
	if l := f.link(t, inv.ID); l.InviteURL != *inv.InviteURL {
		t.Errorf("the link changed: %s, was %s", l.InviteURL, *inv.InviteURL)
	}
	token := tokenOf(t, *inv.InviteURL)
	if pv := optPreviewOf(t, token); pv.Role != "admin" {
		t.Errorf("preview role %q, want admin", pv.Role)
	}

	// The feed: one invitation.updated with the edited invitation.
	eventually(t, 10*time.Second, "invitation.updated in the feed", func() bool {
		return len(f.feedOf(t, inv.ID, "&type=invitation.updated")) > 0
	})
	ups := f.feedOf(t, inv.ID, "&type=invitation.updated")
	if len(ups) != 1 || ups[0].Data.Invitation["role"] != "admin" || !sameJSON(t, asRaw(t, ups[0].Data.Invitation["metadata"]), newMeta) {
		t.Errorf("invitation.updated events %+v, want one with role admin and the new metadata", ups)
	}
	if _, has := ups[0].Data.Invitation["invite_url"]; has {
		t.Errorf("invitation.updated carries invite_url")
	}
	all := typesByInvitation(f.feed(t, ""))[inv.ID]
	if i, j := slices.Index(all, "invitation.created"), slices.Index(all, "invitation.updated"); i < 0 || j < i {
		t.Errorf("feed %v: invitation.updated is not after invitation.created", all)
	}

	// Refused edits change nothing.
	f.patch(t, portal(), inv.ID, map[string]any{"role": "owner"}).expectInvalid(t, "role")
	f.patch(t, portal(), inv.ID, map[string]any{"group_ids": []string{uuid.NewString()}}).expectInvalid(t, "group_ids[0]")
	f.patch(t, portal(), inv.ID, map[string]any{"metadata": []any{1}}).expectInvalid(t, "metadata")
	f.patch(t, portal(), inv.ID, map[string]any{"expires_in": 59}).expectInvalid(t, "expires_in")
	f.patch(t, portal(), inv.ID, map[string]any{}).expectProblem(t, 422, "validation_failed")
	portal().do(t, "PATCH", f.path("/invitations/"+uuid.NewString()), map[string]any{"role": "viewer"}).expectProblem(t, 404, "not_found")
	if g := f.getOpt(t, portal(), inv.ID); g.Role != "admin" || !sameJSON(t, g.Metadata, newMeta) {
		t.Fatalf("after refused edits: role %q metadata %s", g.Role, g.Metadata)
	}
	// A new message: the preview and the hosted page say it, as text.
	f.patch(t, portal(), inv.ID, map[string]any{"message": "Updated <note> for Eve"}).expect(t, 200)
	if pv := optPreviewOf(t, token); deref(pv.Message) != "Updated <note> for Eve" {
		t.Errorf("preview message %q after the PATCH", deref(pv.Message))
	}
	if page := hostedPage(t, token); !strings.Contains(page, "Updated &lt;note&gt; for Eve") || strings.Contains(page, "Hello Eve") {
		t.Errorf("the hosted page does not show the edited message (escaped):\n%s", page)
	}
	// An empty message clears it; group_ids [] clears the groups.
	var cleared optInvitation
	f.patch(t, portal(), inv.ID, map[string]any{"message": "", "group_ids": []string{}}).expect(t, 200).decode(t, &cleared)
	if cleared.Message != nil || len(cleared.GroupIDs) != 0 || cleared.Role != "admin" {
		t.Errorf("after clearing: message %q groups %v role %q", deref(cleared.Message), cleared.GroupIDs, cleared.Role)
	}

	// The invitee accepts: a member with the edited role and metadata.
	accept(t, token).expect(t, 200)
	u := f.optUsers(t)[email]
	if u.State != "active" || u.Role != "admin" || !sameJSON(t, u.Metadata, newMeta) || len(u.GroupIDs) != 0 {
		t.Errorf("the member is listed as %+v metadata %s, want active admin with %v and no groups", u.accountUser, u.Metadata, newMeta)
	}
	// Accepted: no more edits.
	f.patch(t, portal(), inv.ID, map[string]any{"role": "viewer"}).expectProblem(t, 409, "invalid_state")
}

// TestEditExpiresInExpiresAtNewTime: PATCH expires_in 60 on an invitation valid for a week
// moves its expiry to a minute from now: it is still pending at 55 s and expired by about
// 60 s, with no reminder on the way (48 h before the new expiry is already past), and a
// renewal keeps the new validity.
func TestEditExpiresInExpiresAtNewTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	email := unique("Soon.Sam")
	inv := f.createWith(t, portal(), email, nil)
	waitEmail(t, email, "invited you", 1)

	before := time.Now()
	var edited optInvitation
	f.patch(t, portal(), inv.ID, map[string]any{"expires_in": 60}).expect(t, 200).decode(t, &edited)
	after := time.Now()
	if edited.ExpiresAt.Before(before.Add(60*time.Second-time.Second)) || edited.ExpiresAt.After(after.Add(60*time.Second+time.Second)) {
		t.Fatalf("PATCH expires_in 60 answered expires_at %s; the PATCH ran between %s and %s", edited.ExpiresAt, before, after)
	}
	if edited.ExpiresIn == nil || *edited.ExpiresIn != 60 || edited.Status != "pending" || *edited.InviteURL != *inv.InviteURL {
		t.Fatalf("PATCH answered %+v", edited)
	}
	if l := f.link(t, inv.ID); !l.ExpiresAt.Equal(edited.ExpiresAt) {
		t.Errorf("link expires_at %s, want the new %s", l.ExpiresAt, edited.ExpiresAt)
	}
	token := tokenOf(t, *inv.InviteURL)
	if pv := optPreviewOf(t, token); !pv.ExpiresAt.Equal(edited.ExpiresAt) {
		t.Errorf("preview expires_at %s, want the new %s", pv.ExpiresAt, edited.ExpiresAt)
	}

	// Pending until 55 s after the PATCH, then expired, by the new time plus a little.
	var expiredAt time.Time
	for deadline := after.Add(60*time.Second + 15*time.Second); ; time.Sleep(500 * time.Millisecond) {
		now := time.Now()
		st := f.invitation(t, portal(), inv.ID).Status
		if st == "expired" {
			expiredAt = now
			break
		}
		if st != "pending" {
			t.Fatalf("status %s at %s after the PATCH", st, now.Sub(before))
		}
		if now.After(deadline) {
			t.Fatalf("still pending %s after PATCH expires_in 60", now.Sub(before))
		}
	}
	if d := expiredAt.Sub(after); d < 55*time.Second {
		t.Fatalf("expired %s after PATCH expires_in 60, before 55 s", d)
	}
	if expiredAt.Before(edited.ExpiresAt) {
		t.Errorf("observed expired at %s, before its expires_at %s", expiredAt, edited.ExpiresAt)
	}
	t.Logf("expired %s after the PATCH (expires_at %s after it)", expiredAt.Sub(before), edited.ExpiresAt.Sub(before))
	if n := emailsAbout(email, "Reminder"); n != 0 {
		t.Errorf("%d reminders sent; 48 h before a one-minute expiry is before the edit", n)
	}
	previewOf(t, token).expectProblem(t, 410, "invitation_expired")
	if s := f.subscription(t); s.SeatsReserved != 0 {
		t.Errorf("after expiry, subscription %+v holds the seat", s)
	}
	eventually(t, 10*time.Second, "invitation.expired in the feed", func() bool {
		return len(f.feedOf(t, inv.ID, "&type=invitation.expired")) == 1
	})
	// Expired: no edit.
	f.patch(t, portal(), inv.ID, map[string]any{"expires_in": 3600}).expectProblem(t, 409, "invalid_state")

	// Renewed: the new link is valid for the edited 60 s.
	renewStart := time.Now()
	var renewed optInvitation
	f.action(t, portal(), inv.ID, "renew").expect(t, 200).decode(t, &renewed)
	if renewed.Status != "pending" || !within(renewed.ExpiresAt, renewStart.Add(60*time.Second), 3*time.Second) {
		t.Errorf("renewal expires_at %s, want 60 s after %s (expires_in is the renewals' validity too)", renewed.ExpiresAt, renewStart)
	}
	f.action(t, portal(), inv.ID, "revoke").expect(t, 200)
}

// TestEditNotPending: only a pending invitation can be edited; accepted, declined, revoked
// and expired ones answer 409 invalid_state and stay as they were.
func TestEditNotPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5)
	expired := f.createWith(t, short(), unique("Edit.Expired"), nil)
	accepted := f.createWith(t, portal(), unique("Edit.Accepted"), nil)
	accept(t, tokenOf(t, *accepted.InviteURL)).expect(t, 200)
	declined := f.createWith(t, portal(), unique("Edit.Declined"), nil)
	decline(t, tokenOf(t, *declined.InviteURL)).expect(t, 200)
	revoked := f.createWith(t, portal(), unique("Edit.Revoked"), nil)
	f.action(t, portal(), revoked.ID, "revoke").expect(t, 200)
	eventually(t, shortTTL+15*time.Second, "the short invitation to expire", func() bool {
		return f.invitation(t, short(), expired.ID).Status == "expired"
	})
	for _, tc := range []struct {
		inv    optInvitation
		status string
	}{{expired, "expired"}, {accepted, "accepted"}, {declined, "declined"}, {revoked, "revoked"}} {
		for _, body := range []map[string]any{{"role": "admin"}, {"metadata": map[string]any{"x": 1}}, {"expires_in": 3600}, {"message": "hi"}} {
			f.patch(t, portal(), tc.inv.ID, body).expectProblem(t, 409, "invalid_state")
		}
		f.patch(t, short(), tc.inv.ID, map[string]any{"role": "admin"}).expectProblem(t, 409, "invalid_state")
		got := f.getOpt(t, portal(), tc.inv.ID)
		if got.Status != tc.status || got.Role != "editor" || !sameJSON(t, got.Metadata, map[string]any{}) || got.Message != nil ||
			hasEvents(got.invitation, "updated") {
			t.Errorf("%s invitation after refused edits: %+v metadata %s", tc.status, got, got.Metadata)
		}
	}
	if types := typesByInvitation(f.feed(t, "&type=invitation.updated")); len(types) != 0 {
		t.Errorf("refused edits made events: %v", types)
	}
}

// TestSettingsEmailDomains: with allowed_email_domains, invitations go only to addresses at
// those domains or their subdomains (others: 422 domain_not_allowed, nothing created); an
// internationalised entry is stored in its ASCII form and allows the address in either form.
func TestSettingsEmailDomains(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	corp := "corp-" + randomHex(3) + ".test"
	st := f.putSettings(t, []string{" " + strings.ToUpper(corp) + ". "}, []string{})
	if !slices.Equal(st.AllowedEmailDomains, []string{corp}) || st.AllowedRedirectOrigins == nil || len(st.AllowedRedirectOrigins) != 0 {
		t.Fatalf("PUT answered %+v, want [%s] and []", st, corp)
	}
	if got := f.settings(t); !reflect.DeepEqual(got, st) {
		t.Fatalf("GET answers %+v, PUT answered %+v", got, st)
	}

	for _, email := range []string{"jane+" + randomHex(3) + "@" + corp, "jane+" + randomHex(3) + "@eu.mail." + corp,
		"Jane+" + randomHex(3) + "@" + strings.ToUpper(corp)} {
		f.createWith(t, portal(), email, nil)
	}
	for _, email := range []string{"jane+" + randomHex(3) + "@other.test", "jane+" + randomHex(3) + "@evil" + corp,
		"jane+" + randomHex(3) + "@" + corp + ".evil.test", unique("Outsider")} {
		p := f.createRaw(t, portal(), email, nil).expectProblem(t, 422, "domain_not_allowed")
		if len(p.Errors) != 1 || p.Errors[0].Field != "email" {
			t.Errorf("domain_not_allowed for %s names %+v, want email", email, p.Errors)
		}
	}
	// By user_id too: the user's address is what counts.
	outsider := newFixture(t, 1)
	userID := acceptNewUser(t, outsider, "known+"+randomHex(3)+"@elsewhere.test")
	portal().do(t, "POST", f.path("/invitations"), map[string]any{"user_id": userID, "subscription_id": f.SubscriptionID, "role": "viewer"}).
		expectProblem(t, 422, "domain_not_allowed")
	if l := f.list(t, ""); len(l.Items) != 3 {
		t.Fatalf("%d invitations, want only the 3 allowed", len(l.Items))
	}
	if s := f.subscription(t); s.SeatsReserved != 3 {
		t.Fatalf("subscription %+v: refused creates hold seats", s)
	}

	// An internationalised domain: stored as punycode, matching both forms of an address.
	st = f.putSettings(t, []string{"bücher.test", corp, "xn--bcher-kva.test"}, []string{})
	if !slices.Equal(st.AllowedEmailDomains, []string{"xn--bcher-kva.test", corp}) {
		t.Fatalf("PUT answered domains %v, want [xn--bcher-kva.test %s] (one entry per domain, ASCII form)", st.AllowedEmailDomains, corp)
	}
	for _, email := range []string{"anna+" + randomHex(3) + "@xn--bcher-kva.test", "anna+" + randomHex(3) + "@bücher.test",
		"anna+" + randomHex(3) + "@laden.bücher.test", "anna+" + randomHex(3) + "@BÜCHER.test"} {
		inv := f.createWith(t, portal(), email, nil)
		if inv.Email == "" {
			t.Errorf("created %+v without an email", inv)
		}
	}
	for _, email := range []string{"anna+" + randomHex(3) + "@bucher.test", "anna+" + randomHex(3) + "@xn--bcher-kva.test.evil.test"} {
		f.createRaw(t, portal(), email, nil).expectProblem(t, 422, "domain_not_allowed")
	}

	// Bad entries are named by index and change nothing; both lists are required.
	r := portal().do(t, "PUT", f.path("/settings"), map[string]any{
		"allowed_email_domains": []string{"ok.test", "*.corp.test", "192.168.0.1", "a..b.test"}, "allowed_redirect_origins": []string{"https://app.example.test/welcome"}})
	r.expectInvalid(t, "allowed_email_domains[1]", "allowed_email_domains[2]", "allowed_email_domains[3]", "allowed_redirect_origins[0]")
	portal().do(t, "PUT", f.path("/settings"), map[string]any{}).expectInvalid(t, "allowed_email_domains", "allowed_redirect_origins")
	if got := f.settings(t); !reflect.DeepEqual(got, st) {
		t.Fatalf("refused PUTs changed the settings to %+v", got)
	}
	// Emptied: any domain again.
	f.putSettings(t, []string{}, []string{})
	f.createWith(t, portal(), unique("Anyone"), nil)
}

// TestSettingsRedirectOrigins: with allowed_redirect_origins ["https://app.example.test"], a
// redirect_url is accepted only at exactly that origin: other hosts (look-alikes included),
// schemes, ports, user names, javascript: and protocol-relative URLs answer 422
// redirect_not_allowed and create nothing.
func TestSettingsRedirectOrigins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5)
	st := f.putSettings(t, []string{}, []string{"https://app.example.test"})
	if !slices.Equal(st.AllowedRedirectOrigins, []string{"https://app.example.test"}) {
		t.Fatalf("PUT answered origins %v", st.AllowedRedirectOrigins)
	}
	for _, bad := range []string{
		"https://evil.example.test/x",
		"javascript:alert(1)",
		"//evil.example.test/x",
		"https://app.example.test.evil.test/",
		"http://app.example.test/welcome",
		"https://app.example.test:8443/welcome",
		"https://user:pw@app.example.test/welcome",
		"https://evil.test/?next=https://app.example.test/",
		"/welcome",
		"data:text/html,<script>alert(1)</script>",
	} {
		r := f.createRaw(t, portal(), unique("Redirect.Bad"), map[string]any{"redirect_url": bad})
		if r.Status != 422 {
			t.Errorf("redirect_url %q answered %d, want 422 redirect_not_allowed: %s", bad, r.Status, r.Body)
			continue
		}
		var p problem
		r.decode(t, &p)
		if p.Code != "redirect_not_allowed" {
			t.Errorf("redirect_url %q answered code %s, want redirect_not_allowed: %s", bad, p.Code, r.Body)
		}
	}
	if l := f.list(t, ""); len(l.Items) != 0 {
		t.Fatalf("refused redirects made invitations: %+v", l.Items)
	}

	good := "https://app.example.test/welcome?x=1"
	inv := f.createWith(t, portal(), unique("Redirect.Good"), map[string]any{"redirect_url": good})
	if deref(inv.RedirectURL) != good {
		t.Fatalf("redirect_url answered %q, want %q", deref(inv.RedirectURL), good)
	}
	if got := f.getOpt(t, portal(), inv.ID); deref(got.RedirectURL) != good {
		t.Errorf("GET answers redirect_url %q", deref(got.RedirectURL))
	}
	token := tokenOf(t, *inv.InviteURL)
	if pv := optPreviewOf(t, token); deref(pv.RedirectURL) != good {
		t.Errorf("preview answers redirect_url %q while its origin is allowed", deref(pv.RedirectURL))
	}
	// The origin's other spellings are the same origin.
	f.createWith(t, portal(), unique("Redirect.Case"), map[string]any{"redirect_url": "https://APP.example.test:443/Other#top"})
	f.createWith(t, portal(), unique("Redirect.Bare"), map[string]any{"redirect_url": "https://app.example.test"})

	// The origin withdrawn: the preview stops offering the redirect; new ones are refused.
	f.putSettings(t, []string{}, []string{"https://other.example.test"})
	if pv := optPreviewOf(t, token); pv.RedirectURL != nil {
		t.Errorf("preview answers redirect_url %q after its origin was withdrawn", *pv.RedirectURL)
	}
	f.createRaw(t, portal(), unique("Redirect.Late"), map[string]any{"redirect_url": good}).expectProblem(t, 422, "redirect_not_allowed")
}

// TestOptionExpiresInPlansReminder uses the short API (INVITATION_TTL 6 s, the reminder 3 s
// before expiry): an invitation created with expires_in 60, and one created with the 6 s
// default and then edited to expires_in 60, each get their one reminder 3 s before their new
// expiry (not at 3 s) and expire at it; one created with send_email false gets no email at
// all, not even a reminder, and expires after its 6 s.
func TestOptionExpiresInPlansReminder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	eCreated, eEdited, eHeld := unique("Remind.Created"), unique("Remind.Edited"), unique("Remind.Held")
	created := f.createWith(t, short(), eCreated, map[string]any{"expires_in": 60})
	edited := f.createWith(t, short(), eEdited, nil)
	var patched optInvitation
	f.patch(t, short(), edited.ID, map[string]any{"expires_in": 60}).expect(t, 200).decode(t, &patched)
	held := f.createWith(t, short(), eHeld, map[string]any{"send_email": false})
	if time.Until(patched.ExpiresAt) < 55*time.Second || time.Until(created.ExpiresAt) < 55*time.Second {
		t.Fatalf("expires_at %s and %s: not about a minute away", created.ExpiresAt, patched.ExpiresAt)
	}

	type watch struct {
		email     string
		id        string
		expiresAt time.Time
		expired   time.Time
	}
	watches := []*watch{{eCreated, created.ID, created.ExpiresAt, time.Time{}}, {eEdited, edited.ID, patched.ExpiresAt, time.Time{}},
		{eHeld, held.ID, held.ExpiresAt, time.Time{}}}
	deadline := time.Now().Add(80 * time.Second)
	for {
		done := true
		for _, w := range watches {
			if w.expired.IsZero() {
				if f.invitation(t, short(), w.id).Status == "expired" {
					w.expired = time.Now()
				} else {
					done = false
				}
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all expired by the deadline: %+v %+v %+v", *watches[0], *watches[1], *watches[2])
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, w := range watches[:2] {
		if w.expired.Before(w.expiresAt) {
			t.Errorf("%s expired at %s, before its expires_at %s", w.email, w.expired, w.expiresAt)
		}
		var reminders []time.Time
		for _, e := range stack.Resend.EmailsTo(w.email) {
			if strings.Contains(e.Subject, "Reminder") {
				reminders = append(reminders, e.ReceivedAt)
			}
		}
		due := w.expiresAt.Add(-shortReminder)
		if len(reminders) != 1 {
			t.Errorf("%s got %d reminders (at %v), want 1 near %s", w.email, len(reminders), reminders, due)
			continue
		}
		if r := reminders[0]; r.Before(due.Add(-time.Second)) || !r.Before(w.expiresAt) {
			t.Errorf("%s was reminded at %s; want 3 s before its expiry %s", w.email, r, w.expiresAt)
		}
	}
	if w := watches[2]; w.expired.Before(w.expiresAt) || w.expired.After(w.expiresAt.Add(15*time.Second)) {
		t.Errorf("the invitation created without email expired at %s; its expires_at is %s", w.expired, w.expiresAt)
	}
	if n := len(stack.Resend.EmailsTo(eHeld)); n != 0 {
		t.Errorf("%d emails reached an invitee created with send_email false", n)
	}
}
