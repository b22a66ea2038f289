package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The portal's actions on invitations and the invitee's decline, end to end.

type invitationList struct {
	Items      []invitation `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

type accountUser struct {
	UserID    *string  `json:"user_id"`
	Email     string   `json:"email"`
	FirstName string   `json:"first_name"`
	LastName  string   `json:"last_name"`
	Role      string   `json:"role"`
	GroupIDs  []string `json:"group_ids"`
	State     string   `json:"state"`
}

type inviteLink struct {
	InviteURL string    `json:"invite_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (f fixture) users(t *testing.T) map[string]accountUser {
	t.Helper()
	res, err := typedPortal(t).ListAccountUsersWithResponse(context.Background(), mustID(t, f.AccountID))
	noErr(t, "list users", err)
	r := asResponse(t, "list users", res.HTTPResponse, res.Body).expect(t, 200)
	if res.JSON200 == nil {
		t.Fatalf("list users: no list in %s", r.Body)
	}
	var out struct{ Items []accountUser }
	r.decode(t, &out)
	byEmail := map[string]accountUser{}
	for _, u := range out.Items {
		if _, dup := byEmail[strings.ToLower(u.Email)]; dup {
			t.Fatalf("users list names %s twice: %+v", u.Email, out.Items)
		}
		byEmail[strings.ToLower(u.Email)] = u
	}
	return byEmail
}

func (f fixture) link(t *testing.T, id string) inviteLink {
	t.Helper()
	res, err := typedPortal(t).GetInvitationLinkWithResponse(context.Background(), mustID(t, f.AccountID), mustID(t, id))
	noErr(t, "invitation link", err)
	r := asResponse(t, "invitation link", res.HTTPResponse, res.Body).expect(t, 200)
	if res.JSON200 == nil {
		t.Fatalf("invitation link: no link in %s", r.Body)
	}
	var l inviteLink
	r.decode(t, &l)
	return l
}

func (f fixture) list(t *testing.T, query string) invitationList {
	t.Helper()
	var l invitationList
	portal().do(t, "GET", f.path("/invitations?"+query), nil).expect(t, 200).decode(t, &l)
	if l.Items == nil {
		t.Fatalf("list ?%s answered items null, want an array", query)
	}
	return l
}

func previewStatus(t *testing.T, token string) string {
	t.Helper()
	var pv preview
	previewOf(t, token).expect(t, 200).decode(t, &pv)
	return pv.Status
}

// TestRevokePending: revoking a pending invitation closes it, releases its seat and kills
// its link; the invitee's preview still answers (status revoked) but accept and decline are
// refused.
func TestRevokePending(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	email := unique("Revoked.Rita")
	inv := f.createInvitation(t, portal(), email)
	token := tokenOf(t, *inv.InviteURL)

	var rev invitation
	f.action(t, portal(), inv.ID, "revoke").expect(t, 200).decode(t, &rev)
	if rev.ID != inv.ID || rev.Status != "revoked" || rev.InviteURL != nil {
		t.Fatalf("revoke answered %+v, want status revoked without a link", rev)
	}
	if s := f.subscription(t); s.SeatsReserved != 0 || s.SeatsAvailable != 1 {
		t.Fatalf("after revoke, subscription %+v: the seat is not released", s)
	}
	portal().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expectProblem(t, 409, "invalid_state")
	if st := previewStatus(t, token); st != "revoked" {
		t.Fatalf("preview status %q, want revoked", st)
	}
	accept(t, token).expectProblem(t, 409, "invalid_state")
	decline(t, token).expectProblem(t, 409, "invalid_state")
	f.action(t, portal(), inv.ID, "resend").expectProblem(t, 409, "invalid_state")

	got := f.invitation(t, portal(), inv.ID)
	if got.Status != "revoked" || got.InviteURL != nil || !hasEvents(got, "created", "revoked") {
		t.Fatalf("after revoke, invitation %+v", got)
	}
	if _, listed := f.users(t)[strings.ToLower(email)]; listed {
		t.Fatal("a revoked invitee is listed among the account's users")
	}
	// The freed seat can be used, and the same person can be invited again.
	again := f.createInvitation(t, portal(), email)
	if again.ID == inv.ID {
		t.Fatal("re-invitation reused the revoked invitation")
	}
	if u := f.users(t)[strings.ToLower(email)]; u.State != "invited" {
		t.Fatalf("re-invited person listed as %+v", u)
	}
	// The old link stays dead: it names the revoked invitation, not the new one.
	accept(t, token).expectProblem(t, 409, "invalid_state")
}

// TestDecline: the invitee declines; the seat is released, the link shows declined, and
// nothing more can be done with it.
func TestDecline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	email := unique("Declining.Dan")
	inv := f.createInvitation(t, portal(), email)
	token := tokenOf(t, *inv.InviteURL)

	var out struct {
		Status string `json:"status"`
	}
	decline(t, token).expect(t, 200).decode(t, &out)
	if out.Status != "declined" {
		t.Fatalf("decline answered %+v", out)
	}
	if s := f.subscription(t); s.SeatsReserved != 0 || s.SeatsAvailable != 1 {
		t.Fatalf("after decline, subscription %+v: the seat is not released", s)
	}
	if st := previewStatus(t, token); st != "declined" {
		t.Fatalf("preview status %q, want declined", st)
	}
	// The same decline again is a retry and gets the first answer; an accept is refused.
	if r := decline(t, token).expect(t, 200); string(r.Body) != `{"status":"declined"}` {
		t.Fatalf("the repeated decline answered %s", r.Body)
	}
	accept(t, token).expectProblem(t, 409, "invalid_state")
	portal().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expectProblem(t, 409, "invalid_state")
	got := f.invitation(t, portal(), inv.ID)
	if got.Status != "declined" || got.InviteURL != nil || !hasEvents(got, "created", "declined") {
		t.Fatalf("after decline, invitation %+v", got)
	}
	if _, listed := f.users(t)[strings.ToLower(email)]; listed {
		t.Fatal("a person who declined is listed among the account's users")
	}
	// No user was created.
	var n int
	if err := stack.Store.Pool.QueryRow(t.Context(), `select count(*) from users where lower(email) = lower($1)`, email).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d users for a declined invitation (err %v)", n, err)
	}
	// The seat is free for someone else.
	f.createInvitation(t, portal(), unique("Next"))
}

// TestCopyLink: the link endpoint answers the invitation's link, the same as the object's
// and the email's, and the same every time.
func TestCopyLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	email := unique("Copy.Cat")
	inv := f.createInvitation(t, portal(), email)
	if !strings.HasPrefix(*inv.InviteURL, "http://portal.test/invite?token=") {
		t.Fatalf("invite_url %q does not follow ACCEPT_URL_TEMPLATE's default", *inv.InviteURL)
	}
	l := f.link(t, inv.ID)
	if l.InviteURL != *inv.InviteURL {
		t.Fatalf("link %q, want the invitation's %q", l.InviteURL, *inv.InviteURL)
	}
	if d := l.ExpiresAt.Sub(inv.ExpiresAt); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("link expires_at %s, invitation's %s", l.ExpiresAt, inv.ExpiresAt)
	}
	if again := f.link(t, inv.ID); again != l {
		t.Fatalf("second copy %+v differs from the first %+v", again, l)
	}
	if got := f.invitation(t, portal(), inv.ID); got.InviteURL == nil || *got.InviteURL != l.InviteURL {
		t.Fatalf("GET answers invite_url %v, want %s", got.InviteURL, l.InviteURL)
	}
	if list := f.list(t, ""); len(list.Items) != 1 || list.Items[0].InviteURL == nil || *list.Items[0].InviteURL != l.InviteURL {
		t.Fatalf("list answers %+v", list.Items)
	}
	text := waitEmail(t, email, "invited you", 1)
	if !strings.Contains(text, l.InviteURL) {
		t.Fatalf("email lacks the copied link %s:\n%s", l.InviteURL, text)
	}
	if st := previewStatus(t, tokenOf(t, l.InviteURL)); st != "pending" {
		t.Fatalf("copied link previews as %s", st)
	}
}

// TestExpiresAtConsistent: an invitation has one expires_at, whichever answer shows it:
// create, an idempotent replay, GET, the list and the link.
func TestExpiresAtConsistent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	key := "exp-" + randomHex(6)
	body := f.inviteBody(unique("Exp"))
	field := func(r response) string {
		t.Helper()
		var m struct {
			ExpiresAt string `json:"expires_at"`
			Items     []struct {
				ExpiresAt string `json:"expires_at"`
			} `json:"items"`
		}
		r.decode(t, &m)
		if len(m.Items) == 1 {
			return m.Items[0].ExpiresAt
		}
		return m.ExpiresAt
	}
	created := portal().do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expect(t, 201)
	var inv invitation
	created.decode(t, &inv)
	answers := map[string]string{
		"create": field(created),
		"replay": field(portal().do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expect(t, 201)),
		"get":    field(portal().do(t, "GET", f.path("/invitations/"+inv.ID), nil).expect(t, 200)),
		"list":   field(portal().do(t, "GET", f.path("/invitations"), nil).expect(t, 200)),
		"link":   field(portal().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expect(t, 200)),
	}
	for name, v := range answers {
		if v != answers["get"] {
			t.Errorf("%s answers expires_at %q, GET answers %q", name, v, answers["get"])
		}
	}
}

// TestExpiredActions uses the short-TTL API: an expired invitation can be revoked (revoked,
// no seat to release), renewed (new link, copyable, emailed; the old link is superseded for
// decline too), and is listed as invitation_expired meanwhile; renewing while a newer
// invitation for the person is pending is refused naming that one.
func TestExpiredActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4)
	eRevoke, eRenew, eStay, eActive := unique("Exp.Revoke"), unique("Exp.Renew"), unique("Exp.Stay"), unique("Active")
	toRevoke := f.createInvitation(t, short(), eRevoke)
	toRenew := f.createInvitation(t, short(), eRenew)
	toStay := f.createInvitation(t, short(), eStay)
	activeID := acceptNewUser(t, f, eActive)

	for _, inv := range []invitation{toRevoke, toRenew, toStay} {
		eventually(t, shortTTL+15*time.Second, "invitation "+inv.ID+" to expire", func() bool {
			return f.invitation(t, short(), inv.ID).Status == "expired"
		})
	}
	if s := f.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 0 {
		t.Fatalf("after expiry, subscription %+v", s)
	}
	users := f.users(t)
	for _, e := range []string{eRevoke, eRenew, eStay} {
		if u := users[e]; u.State != "invitation_expired" || u.UserID != nil || u.Role != "editor" {
			t.Errorf("expired invitee %s listed as %+v, want invitation_expired", e, u)
		}
	}
	if u := users[strings.ToLower(eActive)]; u.State != "active" || u.UserID == nil || *u.UserID != activeID ||
		!slices.Equal(u.GroupIDs, []string{f.GroupID}) {
		t.Errorf("member %s listed as %+v, want active", eActive, u)
	}
	if len(users) != 4 {
		t.Errorf("users %+v, want 4 entries", users)
	}

	// Revoke an expired invitation.
	var rev invitation
	f.action(t, short(), toRevoke.ID, "revoke").expect(t, 200).decode(t, &rev)
	if rev.Status != "revoked" || rev.InviteURL != nil {
		t.Fatalf("revoking an expired invitation answered %+v", rev)
	}
	if s := f.subscription(t); s.SeatsReserved != 0 || s.SeatsUsed != 1 {
		t.Fatalf("after revoking an expired invitation, subscription %+v", s)
	}
	f.action(t, short(), toRevoke.ID, "renew").expectProblem(t, 409, "invalid_state")
	f.action(t, short(), toRevoke.ID, "revoke").expectProblem(t, 409, "invalid_state")
	oldRevoke := tokenOf(t, *toRevoke.InviteURL)
	if st := previewStatus(t, oldRevoke); st != "revoked" {
		t.Fatalf("preview of the revoked invitation: %s", st)
	}
	accept(t, oldRevoke).expectProblem(t, 409, "invalid_state")

	// Renew: a new link, which "copy link" answers, and which the new email carries.
	var renewed invitation
	f.action(t, short(), toRenew.ID, "renew").expect(t, 200).decode(t, &renewed)
	if renewed.Status != "pending" || renewed.InviteURL == nil || *renewed.InviteURL == *toRenew.InviteURL {
		t.Fatalf("renewed %+v", renewed)
	}
	l := f.link(t, toRenew.ID)
	if l.InviteURL != *renewed.InviteURL || l.InviteURL == *toRenew.InviteURL {
		t.Fatalf("link after renew %q; renewed %q, old %q", l.InviteURL, *renewed.InviteURL, *toRenew.InviteURL)
	}
	oldRenew := tokenOf(t, *toRenew.InviteURL)
	decline(t, oldRenew).expectProblem(t, 410, "invitation_expired")
	if st := previewStatus(t, tokenOf(t, l.InviteURL)); st != "pending" {
		t.Fatalf("the renewed link previews as %s", st)
	}
	text := waitEmail(t, eRenew, "invited you", 2)
	if !strings.Contains(text, l.InviteURL) || strings.Contains(text, *toRenew.InviteURL) {
		t.Fatalf("the renewal email does not carry the new link %s only:\n%s", l.InviteURL, text)
	}
	users = f.users(t)
	if u := users[eRenew]; u.State != "invited" {
		t.Errorf("renewed invitee listed as %+v, want invited", u)
	}
	if _, listed := users[eRevoke]; listed {
		t.Errorf("revoked invitee listed: %+v", users[eRevoke])
	}
	if u := users[eStay]; u.State != "invitation_expired" {
		t.Errorf("expired invitee listed as %+v", u)
	}
	// Revoke the renewal before its short TTL runs out, so the seat counts below are fixed.
	f.action(t, short(), toRenew.ID, "revoke").expect(t, 200)

	// A new invitation for the expired person; renewing the old one would make two pending.
	fresh := f.createInvitation(t, portal(), eStay)
	p := f.action(t, short(), toStay.ID, "renew").expectProblem(t, 409, "duplicate_invitation")
	if !strings.Contains(p.Detail, fresh.ID) {
		t.Fatalf("duplicate_invitation detail %q does not name %s", p.Detail, fresh.ID)
	}
	if got := f.invitation(t, short(), toStay.ID); got.Status != "expired" {
		t.Fatalf("after a refused renewal, status %s", got.Status)
	}
	if s := f.subscription(t); s.SeatsUsed != 1 || s.SeatsReserved != 1 {
		t.Fatalf("subscription %+v, want 1 used and 1 held (fresh)", s)
	}
	if u := f.users(t)[eStay]; u.State != "invited" {
		t.Errorf("re-invited person listed as %+v", u)
	}
}

// TestListInvitations: filters by status and email, and limit + cursor paging that visits
// every invitation once, newest first, with next_cursor null at the end.
func TestListInvitations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	var created []invitation
	for i := range 7 {
		created = append(created, f.createInvitation(t, portal(), unique("List"+string(rune('A'+i)))))
	}
	f.action(t, portal(), created[1].ID, "revoke").expect(t, 200)
	f.action(t, portal(), created[4].ID, "revoke").expect(t, 200)
	newestFirst := func(invs []invitation) []string {
		var ids []string
		for i := len(invs) - 1; i >= 0; i-- {
			ids = append(ids, invs[i].ID)
		}
		return ids
	}
	var pending, revoked []invitation
	for i, inv := range created {
		if i == 1 || i == 4 {
			revoked = append(revoked, inv)
		} else {
			pending = append(pending, inv)
		}
	}

	// page walks the list with a limit and returns the ids and page sizes.
	page := func(query string, limit int) ([]string, []int) {
		t.Helper()
		var ids []string
		var sizes []int
		cursor := ""
		var last *invitation
		for range 20 {
			q := query + "&limit=" + itoa(limit)
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			l := f.list(t, q)
			sizes = append(sizes, len(l.Items))
			for i := range l.Items {
				it := l.Items[i]
				if last != nil && (it.CreatedAt.After(last.CreatedAt) || (it.CreatedAt.Equal(last.CreatedAt) && it.ID > last.ID)) {
					t.Fatalf("?%s: %s (%s) listed after %s (%s): not created_at desc", q, it.ID, it.CreatedAt, last.ID, last.CreatedAt)
				}
				last = &it
				ids = append(ids, it.ID)
			}
			if l.NextCursor == nil {
				return ids, sizes
			}
			if *l.NextCursor == "" || len(l.Items) != limit {
				t.Fatalf("?%s: next_cursor %q with %d items", q, *l.NextCursor, len(l.Items))
			}
			cursor = *l.NextCursor
		}
		t.Fatalf("?%s: the list never ends", query)
		return nil, nil
	}

	for _, tc := range []struct {
		query string
		limit int
		want  []string
		sizes []int
	}{
		{"", 3, newestFirst(created), []int{3, 3, 1}},
		{"", 7, newestFirst(created), []int{7}},
		{"", 6, newestFirst(created), []int{6, 1}},
		{"", 1, newestFirst(created), []int{1, 1, 1, 1, 1, 1, 1}},
		{"", 100, newestFirst(created), []int{7}},
		{"status=pending", 2, newestFirst(pending), []int{2, 2, 1}},
		{"status=revoked", 1, newestFirst(revoked), []int{1, 1}},
		{"status=revoked", 2, newestFirst(revoked), []int{2}},
		{"status=accepted", 5, nil, []int{0}},
		{"email=" + url.QueryEscape(strings.ToUpper(created[2].Email)), 5, []string{created[2].ID}, []int{1}},
		{"email=" + url.QueryEscape(created[1].Email) + "&status=revoked", 5, []string{created[1].ID}, []int{1}},
		{"email=" + url.QueryEscape(created[1].Email) + "&status=pending", 5, nil, []int{0}},
		{"email=nobody%40example.test", 5, nil, []int{0}},
	} {
		ids, sizes := page(tc.query, tc.limit)
		if !slices.Equal(ids, tc.want) || !slices.Equal(sizes, tc.sizes) {
			t.Errorf("?%s limit %d: ids %v in pages %v, want %v in pages %v", tc.query, tc.limit, ids, sizes, tc.want, tc.sizes)
		}
	}
	// The default page holds them all; statuses are as set.
	l := f.list(t, "")
	if len(l.Items) != 7 || l.NextCursor != nil {
		t.Fatalf("default list: %d items, next_cursor %v", len(l.Items), l.NextCursor)
	}
	for _, it := range l.Items {
		want := "pending"
		if it.ID == created[1].ID || it.ID == created[4].ID {
			want = "revoked"
		}
		if it.Status != want || it.AccountID != f.AccountID || it.SubscriptionID != f.SubscriptionID {
			t.Errorf("listed %+v, want status %s in the fixture's account", it, want)
		}
	}
	// Another account's list is empty: no leaking across accounts.
	g := newFixture(t, 1)
	if other := g.list(t, ""); len(other.Items) != 0 || other.NextCursor != nil {
		t.Fatalf("another account lists %+v", other.Items)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestInvitationEvents: GET one tells the invitation's story in order.
func TestInvitationEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	email := unique("Story")
	inv := f.createInvitation(t, portal(), email)
	if got := f.invitation(t, portal(), inv.ID); len(got.Events) == 0 || got.Events[0].Type != "created" {
		t.Fatalf("a new invitation's events %+v, want created first", got.Events)
	}
	waitEmail(t, email, "invited you", 1)
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200)
	waitEmail(t, email, "Welcome", 1)
	var got invitation
	eventually(t, 10*time.Second, "the welcome email to be recorded", func() bool {
		got = f.invitation(t, portal(), inv.ID)
		return len(got.Events) >= 4
	})
	var types []string
	for i, e := range got.Events {
		types = append(types, e.Type)
		if e.Detail == "" || e.At.IsZero() {
			t.Errorf("event %d %+v lacks detail or time", i, e)
		}
		if i > 0 && e.At.Before(got.Events[i-1].At) {
			t.Errorf("event %d at %s is before event %d at %s", i, e.At, i-1, got.Events[i-1].At)
		}
		if e.At.Before(got.CreatedAt.Add(-time.Second)) || e.At.After(time.Now().Add(time.Second)) {
			t.Errorf("event %d at %s is outside the invitation's life", i, e.At)
		}
	}
	if want := []string{"created", "email_sent", "accepted", "email_sent"}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if got.Delivery == nil || got.Delivery.Status != "sent" || got.Delivery.Error != "" {
		t.Fatalf("delivery %+v, want sent without error", got.Delivery)
	}
}

// TestExistingUserByEmail: inviting by email a person who is already a user (of another
// account) needs no new password: the preview says so, the accept signs in with theirs and
// provisions that same user, and no second user appears.
func TestExistingUserByEmail(t *testing.T) {
	t.Parallel()
	first, second := newFixture(t, 1), newFixture(t, 1)
	email := unique("Known.Person")
	userID := acceptNewUser(t, first, email)

	inv := second.createInvitation(t, portal(), strings.ToUpper(email))
	token := tokenOf(t, *inv.InviteURL)
	var pv preview
	previewOf(t, token).expect(t, 200).decode(t, &pv)
	if pv.RequiresPassword {
		t.Fatalf("preview %+v asks a known user for a password", pv)
	}
	var out struct {
		Status string `json:"status"`
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200).decode(t, &out)
	if out.Status != "accepted" || out.UserID != userID {
		t.Fatalf("accept answered %+v, want the existing user %s", out, userID)
	}
	var n int
	if err := stack.Store.Pool.QueryRow(t.Context(), `select count(*) from users where lower(email) = lower($1)`, email).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d users with the address (err %v), want 1", n, err)
	}
	if u := second.users(t)[email]; u.State != "active" || u.UserID == nil || *u.UserID != userID {
		t.Fatalf("second account lists %+v", u)
	}
}
