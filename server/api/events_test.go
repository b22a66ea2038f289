package api

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/apiview"
	"github.com/onboarding-service/onboarding/internal/store"
)

// storeEvents numbers the committed events now (the worker's sequencer does so too, on its own
// schedule) and waits until the account's feed has at least n events of types (none: any).
func (h *harness) storeEvents(n int, types ...string) []store.FeedEvent {
	h.t.Helper()
	ctx := context.Background()
	var events []store.FeedEvent
	eventually(h.t, 30*time.Second, strconv.Itoa(n)+" events in the feed", func() bool {
		if _, err := stack.Store.SequenceEvents(ctx, 1000); err != nil {
			h.t.Fatal(err)
		}
		var err error
		if events, err = stack.Store.ListEvents(ctx, h.account.ID, 0, 1000, append([]string{}, types...)); err != nil {
			h.t.Fatal(err)
		}
		return len(events) >= n
	})
	return events
}

// feed reads the whole feed through the API, limit events a page, from after: the events and
// the last next_cursor. Every non-empty page must carry a next_cursor.
func (h *harness) feed(query string, limit int, after string) ([]apiview.Event, string) {
	h.t.Helper()
	var all []apiview.Event
	for range 100 {
		q := "?limit=" + strconv.Itoa(limit) + query
		if after != "" {
			q += "&after=" + after
		}
		page := decodeJSON[eventListView](h.t, h.api("GET", h.accountPath("/events"+q), ""), 200)
		if len(page.Items) > limit {
			h.t.Fatalf("%d items, limit %d", len(page.Items), limit)
		}
		switch {
		case page.NextCursor == nil && (len(page.Items) > 0 || after != ""):
			h.t.Fatalf("a page after %q with %d items has no next_cursor", after, len(page.Items))
		case len(page.Items) == 0:
			if after != "" && *page.NextCursor != after {
				h.t.Fatalf("an empty page after %q answers next_cursor %q", after, *page.NextCursor)
			}
			return all, after
		}
		all = append(all, page.Items...)
		after = *page.NextCursor
	}
	h.t.Fatal("the feed does not end")
	return nil, ""
}

func eventTypes(events []apiview.Event, invitation uuid.UUID) []string {
	var out []string
	for _, e := range events {
		if e.Data.Invitation.ID == invitation {
			out = append(out, e.Type)
		}
	}
	return out
}

// The feed: each event once, oldest first, in the order they happened for each invitation,
// by pages that always say where to continue, with a type filter; no link or token in any.
func TestEventFeed(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	a, b := h.pending(uniqueEmail("feed-a")), h.pending(uniqueEmail("feed-b"))
	for _, inv := range []store.Invitation{a, b} {
		eventually(t, 20*time.Second, "the invite email to be sent", func() bool { return h.row(inv.ID).DeliveryStatus == contract.DeliverySent })
	}
	decodeJSON[invitationView](t, h.api("POST", h.accountPath("/invitations/"+a.ID.String()+"/revoke"), ""), 200)
	accepted := decodeJSON[acceptView](t, h.accept(h.token(b)), 200)
	stored := h.storeEvents(6)

	events, last := h.feed("", 2, "")
	if len(events) != 6 || len(stored) != 6 {
		t.Fatalf("feed has %d events (store %d), want 6: %+v", len(events), len(stored), events)
	}
	for i, e := range events {
		if e.ID != stored[i].ID {
			t.Fatalf("event %d is %s, the store's %s: not oldest first", i, e.ID, stored[i].ID)
		}
	}
	if got := eventTypes(events, a.ID); !slices.Equal(got, []string{contract.PublicCreated, contract.PublicSent, contract.PublicRevoked}) {
		t.Errorf("invitation a's events: %v", got)
	}
	if got := eventTypes(events, b.ID); !slices.Equal(got, []string{contract.PublicCreated, contract.PublicSent, contract.PublicAccepted}) {
		t.Errorf("invitation b's events: %v", got)
	}
	seen := map[string]bool{}
	for _, e := range events {
		if !strings.HasPrefix(e.ID, "evt_") || seen[e.ID] || e.AccountID != h.account.ID || e.CreatedAt.IsZero() || e.Data.Invitation.InviteURL != nil {
			t.Errorf("event %+v", e)
		}
		seen[e.ID] = true
		switch e.Type {
		case contract.PublicCreated:
			if e.Data.Invitation.Status != contract.StatusPending || e.Data.UserID != nil {
				t.Errorf("created: %+v", e.Data)
			}
		case contract.PublicRevoked:
			if e.Data.Invitation.Status != contract.StatusRevoked {
				t.Errorf("revoked: %+v", e.Data.Invitation)
			}
		case contract.PublicAccepted:
			if e.Data.UserID == nil || *e.Data.UserID != *accepted.UserID || e.Data.Invitation.Status != contract.StatusAccepted {
				t.Errorf("accepted: %+v", e.Data)
			}
		}
	}
	raw := h.api("GET", h.accountPath("/events?limit=100"), "").Body.String()
	for _, secret := range []string{h.token(a), h.token(b), "token=", "portal.test"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the feed contains %q", secret)
		}
	}

	// Polling from the last cursor: nothing new, the same cursor; a new event, then it alone.
	if more, again := h.feed("", 2, last); len(more) != 0 || again != last {
		t.Fatalf("after the end: %d events, cursor %q", len(more), again)
	}
	c := h.pending(uniqueEmail("feed-c"))
	h.storeEvents(7)
	more, _ := h.feed("", 2, last)
	if len(more) == 0 || more[0].Type != contract.PublicCreated || more[0].Data.Invitation.ID != c.ID {
		t.Fatalf("after the new invitation: %+v", more)
	}

	// The type filter, repeated or comma-separated, with the cursor.
	for _, f := range []struct {
		query string
		want  int
	}{
		{"&type=invitation.revoked", 1},
		{"&type=invitation.created,invitation.revoked", 4},
		{"&type=invitation.created&type=invitation.accepted", 4},
		{"&type=invitation.accepted&type=invitation.accepted,invitation.accepted", 1},
		{"&type=invitation.expired", 0},
		{"&type=", 7},
	} {
		h.storeEvents(7)
		got, _ := h.feed(f.query, 1, "")
		if len(got) < f.want || (f.query != "&type=" && len(got) != f.want) {
			t.Errorf("%s: %d events, want %d", f.query, len(got), f.want)
		}
		for _, e := range got {
			if f.query != "&type=" && !strings.Contains(f.query, e.Type) {
				t.Errorf("%s: a %s event", f.query, e.Type)
			}
		}
	}

	// Another account's feed has none of them; an empty first page has no cursor.
	empty := decodeJSON[eventListView](t, other.api("GET", other.accountPath("/events"), ""), 200)
	if len(empty.Items) != 0 || empty.NextCursor != nil {
		t.Fatalf("the other account's feed: %+v", empty)
	}

	for _, c := range []struct{ query, field string }{
		{"?type=invitation.bogus", "type"},
		{"?type=invitation.created,email.bounced", "type"},
		{"?after=abc", "after"},
		{"?after=" + encodeSeqCursor(cursorAttempts, 2), "after"},
		{"?after=" + encodeSeqCursor(cursorEvents, 0), "after"},
		{"?after=" + encodeCursor(store.Cursor{CreatedAt: time.Now(), ID: uuid.New()}), "after"},
		{"?limit=0", "limit"},
		{"?limit=101", "limit"},
		{"?limit=ten", "limit"},
	} {
		p := decodeProblem(t, h.api("GET", h.accountPath("/events"+c.query), ""), 422, contract.CodeValidation)
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %+v", c.query, p.Errors)
		}
	}
}

func TestSeqCursorRoundTrip(t *testing.T) {
	for _, n := range []int64{1, 2, 1 << 40, 1<<63 - 1} {
		got, ok := decodeSeqCursor(cursorEvents, encodeSeqCursor(cursorEvents, n))
		if !ok || got != n {
			t.Errorf("%d: %d %v", n, got, ok)
		}
		if _, ok := decodeSeqCursor(cursorAttempts, encodeSeqCursor(cursorEvents, n)); ok {
			t.Errorf("%d: an events cursor read as an attempts one", n)
		}
	}
	for _, bad := range []string{"", "AAAAAAAAAAAA", "RQAAAAAAAAAA", "RYAAAAAAAAAA", "RQAAAAAAAAA*", "RQAAAAAAAAAAAA", "gAAAAAAAAAAA"} {
		if n, ok := decodeSeqCursor(cursorEvents, bad); ok {
			t.Errorf("%q decodes to %d", bad, n)
		}
	}
}
