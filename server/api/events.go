package api

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/internal/apiview"
)

// The account's event feed: GET /v1/accounts/{account_id}/events. Events are the public rows of
// the invitations' stories, numbered by the worker's sequencer once committed; the feed serves
// them oldest first, after a cursor that holds the last number a client has seen.

type eventListView struct {
	Items []apiview.Event `json:"items"`
	// NextCursor continues the feed: the position of the page's last event, or the after the
	// client sent when the page is empty (null only when it sent none and there is nothing
	// yet). The feed grows, so it is never "the end": a client polls again from it.
	NextCursor *string `json:"next_cursor"`
}

// listEvents answers a page of the account's events after the after cursor, oldest first.
func (s *Server) listEvents(c *gin.Context) error {
	q := c.Request.URL.Query()
	var v fieldChecker
	limit := queryLimit(&v, q)
	var after int64
	if raw := q.Get("after"); raw != "" {
		n, ok := decodeSeqCursor(cursorEvents, raw)
		if !ok {
			v.add("after", "must be a next_cursor value returned by this feed")
		}
		after = n
	}
	types := eventTypesFilter(&v, q["type"])
	if p := v.problem(); p != nil {
		return p
	}
	events, err := s.store.ListEvents(c.Request.Context(), account(c).ID, after, limit, types)
	if err != nil {
		return err
	}
	out := eventListView{Items: make([]apiview.Event, 0, len(events))}
	for _, e := range events {
		out.Items = append(out.Items, apiview.EventOf(e))
	}
	switch {
	case len(events) > 0:
		cur := encodeSeqCursor(cursorEvents, events[len(events)-1].Seq)
		out.NextCursor = &cur
	case after > 0:
		cur := encodeSeqCursor(cursorEvents, after)
		out.NextCursor = &cur
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// queryLimit reads the limit query parameter of a list: defaultListLimit when absent, else 1
// to maxListLimit, as the invitations list takes it.
func queryLimit(v *fieldChecker, q url.Values) int {
	raw := q.Get("limit")
	if raw == "" {
		return defaultListLimit
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxListLimit {
		v.add("limit", fmt.Sprintf("must be an integer between 1 and %d", maxListLimit))
		return defaultListLimit
	}
	return n
}

// eventTypesFilter reads the type query parameter: repeated, comma-separated or both, each a
// public event type; repeats count once. None is every type.
func eventTypesFilter(v *fieldChecker, values []string) []string {
	types := []string{}
	bad := false
	for _, value := range values {
		for t := range strings.SplitSeq(value, ",") {
			t = strings.TrimSpace(t)
			switch {
			case t == "":
			case !contract.IsPublicEventType(t):
				bad = true
			case !slices.Contains(types, t):
				types = append(types, t)
			}
		}
	}
	if bad {
		v.add("type", "must be event types among "+strings.Join(contract.PublicEventTypes, ", "))
	}
	return types
}

// Cursors over a sequence of numbers (the feed's positions, delivery attempt ids): a kind byte,
// which is also the format's version, and the number, base64url without padding. Each kind has
// its own byte, so a cursor of one list is refused by another, as is the invitations list's.
const (
	cursorEvents   byte = 0x45 // 'E'
	cursorAttempts byte = 0x41 // 'A'
	seqCursorLen        = 1 + 8
)

func encodeSeqCursor(kind byte, n int64) string {
	buf := make([]byte, seqCursorLen)
	buf[0] = kind
	binary.BigEndian.PutUint64(buf[1:], uint64(n))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decodeSeqCursor returns the number of a cursor of kind; only positive numbers are ever issued.
func decodeSeqCursor(kind byte, s string) (int64, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(seqCursorLen) {
		return 0, false
	}
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(buf) != seqCursorLen || buf[0] != kind {
		return 0, false
	}
	n := binary.BigEndian.Uint64(buf[1:])
	if n < 1 || n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}
