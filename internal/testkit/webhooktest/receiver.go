// Package webhooktest is a webhook receiver for tests, written the way a consumer of the
// service's webhooks would write one: an httptest server that verifies every request by the
// Standard Webhooks specification (https://www.standardwebhooks.com) with its own code (it
// shares nothing with the service's internal/webhook package, so a mistake there cannot hide
// itself here), answers 401 to a missing or bad signature or a timestamp outside five minutes,
// records what it accepted, and can misbehave on demand: fail the next n requests, or hang.
package webhooktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's clock, either way.
const Tolerance = 5 * time.Minute

// maxBody is the largest body taken; the specification recommends payloads well under it.
const maxBody = 1 << 20

// Delivery is one request whose signature verified. Its fields are shared with the receiver's
// records: read them, do not modify them.
type Delivery struct {
	WebhookID string    // webhook-id
	Timestamp time.Time // webhook-timestamp
	// Type is the body's "type"; Body is the whole body parsed, Raw the bytes as received.
	Type   string
	Body   map[string]any
	Raw    []byte
	Header http.Header
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time
	// Attempt is the arrival number of this webhook-id among verified requests: 1 for the
	// first, 4 for the one answered after FailNext(3, ...).
	Attempt int
	// Status is what the receiver answered; 0 while it hangs, and for good if the sender gave
	// up first.
	Status int
	// Matched lists the secrets (by index, as set when the request arrived) that verified it.
	Matched []int
	// Signatures is how many signatures the webhook-signature header carried.
	Signatures int
}

// Accepted reports whether the receiver answered 2xx.
func (d Delivery) Accepted() bool { return d.Status >= 200 && d.Status < 300 }

// Decode unmarshals the raw body into v.
func (d Delivery) Decode(v any) error { return json.Unmarshal(d.Raw, v) }

// Rejection is a request the receiver refused before accepting it as a webhook.
type Rejection struct {
	At        time.Time
	WebhookID string // as sent, maybe empty
	Status    int    // 401 for the signature and timestamp, 400 for a body, 405, 413
	Reason    string
}

// Receiver is a consumer's webhook endpoint. Its methods are safe for concurrent use.
type Receiver struct {
	t    testing.TB
	srv  *httptest.Server
	done chan struct{} // closed when the test ends

	mu         sync.Mutex
	secrets    []string
	keys       [][]byte
	failLeft   int
	failStatus int
	hanging    chan struct{} // non-nil while Hang is in force; closed by Resume
	attempts   []*Delivery
	perID      map[string]int
	rejections []Rejection
	changed    chan struct{} // closed and replaced on every record
}

// NewReceiver starts a receiver that verifies with secret ("whsec_..."). The secret may be
// empty when it is not known yet (the service shows it when the endpoint is created, and the
// endpoint needs the receiver's URL first): every request is then refused until SetSecrets.
// It is closed when the test ends, releasing any request Hang holds.
func NewReceiver(t testing.TB, secret string) *Receiver {
	t.Helper()
	r := &Receiver{t: t, done: make(chan struct{}), perID: map[string]int{}, changed: make(chan struct{})}
	if secret != "" {
		r.SetSecrets(secret)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.done) // first, so hanging handlers return and Close does not wait on them
		r.srv.Close()
	})
	return r
}

// URL is the receiver's base URL (http://127.0.0.1:port); any path is taken.
func (r *Receiver) URL() string { return r.srv.URL }

// SetSecrets replaces the secrets requests are verified with; a request verifies when any
// signature in it matches any of them (to follow a rotation, set the new and the old one).
// Call it from the test's goroutine: a malformed secret fails the test.
func (r *Receiver) SetSecrets(secrets ...string) {
	r.t.Helper()
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		k, err := decodeSecret(s)
		if err != nil {
			r.t.Fatalf("webhooktest: secret %q: %v", s, err)
		}
		keys = append(keys, k)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets, r.keys = append([]string(nil), secrets...), keys
}

// FailNext makes the next n verified requests answer status (a 5xx, a 4xx, a 3xx); the ones
// after them are answered 200 again. Requests refused for their signature do not count.
func (r *Receiver) FailNext(n int, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLeft, r.failStatus = n, status
}

// Hang makes every verified request from now on wait without an answer, until the sender
// gives up, Resume is called, or the test ends. Such requests are recorded with Status 0.
func (r *Receiver) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hanging == nil {
		r.hanging = make(chan struct{})
	}
}

// Resume ends Hang: requests still waiting are answered 503 (a failed attempt, so the sender
// retries) and new ones are answered normally.
func (r *Receiver) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hanging != nil {
		close(r.hanging)
		r.hanging = nil
	}
}

// Deliveries returns the requests answered 2xx, in arrival order. A sender delivers at least
// once, so a webhook-id may appear more than once; see Distinct.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot(true)
}

// Attempts returns every verified request, whatever it was answered, in arrival order.
func (r *Receiver) Attempts() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot(false)
}

// AttemptCount is how many verified requests carried webhookID.
func (r *Receiver) AttemptCount(webhookID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perID[webhookID]
}

// Rejections returns the requests refused (bad or missing signature, stale timestamp, bad body).
func (r *Receiver) Rejections() []Rejection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Rejection(nil), r.rejections...)
}

// WaitFor waits until cond holds for the accepted deliveries (as Deliveries returns them),
// checking now and after every request. On timeout the error says what did arrive.
func (r *Receiver) WaitFor(ctx context.Context, cond func([]Delivery) bool) error {
	return r.wait(ctx, true, cond)
}

// WaitForAttempts is WaitFor over every verified request (as Attempts returns them).
func (r *Receiver) WaitForAttempts(ctx context.Context, cond func([]Delivery) bool) error {
	return r.wait(ctx, false, cond)
}

func (r *Receiver) wait(ctx context.Context, acceptedOnly bool, cond func([]Delivery) bool) error {
	for {
		r.mu.Lock()
		snap, changed := r.snapshot(acceptedOnly), r.changed
		r.mu.Unlock()
		if cond(snap) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("webhooktest: %w waiting; received %s", ctx.Err(), r.summary())
		case <-r.done:
			return errors.New("webhooktest: the receiver is closed")
		}
	}
}

// Distinct keeps the first delivery of each webhook-id, as a consumer deduplicating by it would.
func Distinct(ds []Delivery) []Delivery {
	seen := map[string]bool{}
	var out []Delivery
	for _, d := range ds {
		if !seen[d.WebhookID] {
			seen[d.WebhookID] = true
			out = append(out, d)
		}
	}
	return out
}

// snapshot copies the records; r.mu is held.
func (r *Receiver) snapshot(acceptedOnly bool) []Delivery {
	out := make([]Delivery, 0, len(r.attempts))
	for _, d := range r.attempts {
		if !acceptedOnly || d.Accepted() {
			out = append(out, *d)
		}
	}
	return out
}

func (r *Receiver) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for i, d := range r.attempts {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("... %d more", len(r.attempts)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s #%d→%d", d.WebhookID, d.Type, d.Attempt, d.Status))
	}
	s := fmt.Sprintf("%d verified request(s) [%s]", len(r.attempts), strings.Join(parts, ", "))
	if n := len(r.rejections); n > 0 {
		s += fmt.Sprintf(", %d rejection(s), the last: %s", n, r.rejections[n-1].Reason)
	}
	return s
}

// notify wakes the waiters; r.mu is held.
func (r *Receiver) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) reject(w http.ResponseWriter, id string, status int, reason string) {
	r.mu.Lock()
	r.rejections = append(r.rejections, Rejection{At: time.Now(), WebhookID: id, Status: status, Reason: reason})
	r.notify()
	r.mu.Unlock()
	http.Error(w, reason, status)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	arrived := time.Now()
	id := req.Header.Get("webhook-id")
	if req.Method != http.MethodPost {
		r.reject(w, id, http.StatusMethodNotAllowed, "webhooks are POSTed; got "+req.Method)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		r.reject(w, id, http.StatusRequestEntityTooLarge, "reading the body: "+err.Error())
		return
	}
	stamp, sigHeader := req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	if id == "" || stamp == "" || sigHeader == "" {
		r.reject(w, id, http.StatusUnauthorized, "missing webhook-id, webhook-timestamp or webhook-signature")
		return
	}
	secs, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		r.reject(w, id, http.StatusUnauthorized, fmt.Sprintf("webhook-timestamp %q is not unix seconds", stamp))
		return
	}
	ts := time.Unix(secs, 0)
	if skew := arrived.Sub(ts); skew > Tolerance || skew < -Tolerance {
		r.reject(w, id, http.StatusUnauthorized, fmt.Sprintf("webhook-timestamp %s is %s from now, outside the %s tolerance", stamp, skew.Round(time.Second), Tolerance))
		return
	}
	r.mu.Lock()
	keys := r.keys
	r.mu.Unlock()
	if len(keys) == 0 {
		r.reject(w, id, http.StatusUnauthorized, "no secret set on the receiver yet")
		return
	}
	matched, count := verify(keys, id, stamp, body, sigHeader)
	if len(matched) == 0 {
		r.reject(w, id, http.StatusUnauthorized, fmt.Sprintf("none of the %d signature(s) matches a secret", count))
		return
	}
	var parsed map[string]any
	if err := json.Unmarshal(body, &parsed); err != nil || parsed == nil {
		r.reject(w, id, http.StatusBadRequest, "the body is not a JSON object")
		return
	}
	typ, _ := parsed["type"].(string)
	if typ == "" {
		r.reject(w, id, http.StatusBadRequest, "the body has no \"type\"")
		return
	}

	d := &Delivery{WebhookID: id, Timestamp: ts, Type: typ, Body: parsed, Raw: body, Header: req.Header.Clone(),
		ReceivedAt: arrived, Matched: matched, Signatures: count}
	r.mu.Lock()
	r.perID[id]++
	d.Attempt = r.perID[id]
	hanging := r.hanging
	switch {
	case hanging != nil:
	case r.failLeft > 0:
		r.failLeft--
		d.Status = r.failStatus
	default:
		d.Status = http.StatusOK
	}
	r.attempts = append(r.attempts, d)
	r.notify()
	r.mu.Unlock()

	if hanging != nil {
		select {
		case <-hanging:
			r.mu.Lock()
			d.Status = http.StatusServiceUnavailable
			r.notify()
			r.mu.Unlock()
		case <-req.Context().Done():
			return
		case <-r.done:
			return
		}
	}
	w.WriteHeader(d.Status)
	if d.Accepted() {
		_, _ = io.WriteString(w, "ok\n")
	}
}
