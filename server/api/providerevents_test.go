package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/store"
)

const providerEventsPath = "/v1/provider-events/resend"

// svixHeaders signs body the way Svix signs Resend's webhooks, written here from the scheme
// (not with the service's verifier): HMAC-SHA256, keyed with the secret's base64 part decoded,
// over "id.timestamp.body", as "v1,<base64>".
func svixHeaders(t testing.TB, secret, id string, at time.Time, body string) []string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("not a Svix secret: %v", err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + body))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return []string{"svix-id", id, "svix-timestamp", ts, "svix-signature", "v1," + sig, "Content-Type", "application/json"}
}

func randomSvixSecret() string {
	key := make([]byte, 24)
	_, _ = rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// resendEvent is a Resend webhook body of type about the email Resend knows as emailID.
func resendEvent(typ, emailID, to, extra string) string {
	return fmt.Sprintf(`{"type":%q,"created_at":"2026-12-01T10:00:00.000Z","data":{"created_at":"2026-12-01T09:59:58.000000+00:00","email_id":%q,"from":"Acme <onboarding@acme.test>","to":[%q],"subject":"You are invited"%s}}`,
		typ, emailID, to, extra)
}

const bounceDetail = `,"bounce":{"message":"The mailbox of the recipient does not exist.","type":"Permanent","subType":"General"}`

// sentInvitation is a pending invitation whose invite email Resend accepted, and Resend's id of it.
func (h *harness) sentInvitation(local string) (store.Invitation, string) {
	h.t.Helper()
	inv := h.pending(uniqueEmail(local))
	eventually(h.t, 20*time.Second, "the invite email to be sent", func() bool { return h.row(inv.ID).DeliveryStatus == contract.DeliverySent })
	var providerID string
	if err := stack.Store.Pool.QueryRow(context.Background(), `select provider_id from emails
		where invitation_id = $1 and kind = 'invite' and provider_id <> ''`, inv.ID).Scan(&providerID); err != nil {
		h.t.Fatal(err)
	}
	return inv, providerID
}

func (h *harness) providerEvent(secret, id string, at time.Time, body string) providerEventResult {
	h.t.Helper()
	return decodeJSON[providerEventResult](h.t, h.from("203.0.113.50:1", "POST", providerEventsPath, body, svixHeaders(h.t, secret, id, at, body)...), 200)
}

func (h *harness) invitationDelivery(id uuid.UUID) deliveryView {
	h.t.Helper()
	got := decodeJSON[invitationDetailView](h.t, h.api("GET", h.accountPath("/invitations/"+id.String()), ""), 200)
	if got.Delivery == nil {
		h.t.Fatalf("invitation %s has no delivery", id)
	}
	return *got.Delivery
}

// A signed email.bounced makes the invitation's delivery bounced and emits
// invitation.delivery_failed, once however often it is replayed; delivered is delivered; unknown
// types, other emails and delays change nothing; nothing of the body is logged.
func TestProviderEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	secret := h.cfg.ResendWebhookSecret
	if secret == "" {
		t.Fatal("the stack sets no RESEND_WEBHOOK_SECRET")
	}
	bounced, bouncedID := h.sentInvitation("bounce")
	delivered, deliveredID := h.sentInvitation("delivered")
	now := time.Now()

	body := resendEvent("email.bounced", bouncedID, bounced.Email, bounceDetail)
	svixID := "msg_" + randomHex(12)
	if got := h.providerEvent(secret, svixID, now, body); got.Status != "applied" {
		t.Fatalf("bounce: %+v", got)
	}
	d := h.invitationDelivery(bounced.ID)
	if d.Status != contract.DeliveryBounced || d.Error == nil || !strings.Contains(*d.Error, "Permanent") {
		t.Fatalf("after the bounce: %+v", d)
	}
	failed := h.storeEvents(1, contract.PublicDeliveryFailed)
	if len(failed) != 1 || failed[0].Invitation.ID != bounced.ID || failed[0].Invitation.DeliveryStatus != contract.DeliveryBounced {
		t.Fatalf("delivery_failed events: %+v", failed)
	}

	// A replay (Resend's retry, or someone resending the captured request within the window).
	if got := h.providerEvent(secret, svixID, now, body); got.Status != "ignored" {
		t.Fatalf("replay: %+v", got)
	}
	later := h.providerEvent(secret, svixID, now.Add(time.Minute), body)
	if later.Status != "ignored" {
		t.Fatalf("replay signed later: %+v", later)
	}

	// Delivered, then a delay report (known, changes nothing), unknown types, other emails.
	if got := h.providerEvent(secret, "msg_"+randomHex(12), now, resendEvent("email.delivered", deliveredID, delivered.Email, "")); got.Status != "applied" {
		t.Fatalf("delivered: %+v", got)
	}
	if d := h.invitationDelivery(delivered.ID); d.Status != contract.DeliveryDelivered || d.Error != nil {
		t.Fatalf("after delivered: %+v", d)
	}
	h.providerEvent(secret, "msg_"+randomHex(12), now, resendEvent("email.delivery_delayed", bouncedID, bounced.Email, ""))
	for _, typ := range []string{"email.opened", "email.clicked", "email.sent", "contact.created", "email.some_future_type"} {
		if got := h.providerEvent(secret, "msg_"+randomHex(12), now, resendEvent(typ, bouncedID, bounced.Email, "")); got.Status != "ignored" {
			t.Errorf("%s: %+v", typ, got)
		}
	}
	if got := h.providerEvent(secret, "msg_"+randomHex(12), now, resendEvent("email.bounced", "re_not_ours_"+randomHex(6), "x@elsewhere.test", bounceDetail)); got.Status != "ignored" {
		t.Errorf("another service's email: %+v", got)
	}
	if d := h.invitationDelivery(bounced.ID); d.Status != contract.DeliveryBounced {
		t.Fatalf("after the other reports: %+v", d)
	}
	if failed := h.storeEvents(1, contract.PublicDeliveryFailed); len(failed) != 1 {
		t.Fatalf("delivery_failed events after replays: %d", len(failed))
	}

	// A signed body that is not an event.
	for _, bad := range []string{`{"data":{}}`, `not json`, `{"type":"email.bounced","data":{}}`} {
		w := h.from("203.0.113.50:1", "POST", providerEventsPath, bad, svixHeaders(t, secret, "msg_"+randomHex(12), now, bad)...)
		decodeProblem(t, w, 422, contract.CodeValidation)
	}

	logs, all := h.logs.String(), stack.Logs()
	for _, private := range []string{bounced.Email, delivered.Email, "mailbox of the recipient", body} {
		if strings.Contains(logs, private) {
			t.Errorf("the API's log contains %q", private)
		}
	}
	if strings.Contains(all, "mailbox of the recipient") {
		t.Error("the stack's log contains the bounce reason")
	}
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{"email.bounced", "applied", 1}, {"email.bounced", "ignored", 3}, {"email.delivered", "applied", 1},
		{"email.delivery_delayed", "applied", 1}, {"other", "ignored", 5},
	} {
		var m dto.Metric
		if err := h.srv.providerEvents.WithLabelValues(c.typ, c.result).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("provider_events_total{type=%q,result=%q} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	if strings.Contains(logs, "was not told") {
		t.Errorf("the workflow was not signalled: %s", logs)
	}
}

// Unverified requests are 401 problems and change nothing; they count against the address.
func TestProviderEventRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	secret := h.cfg.ResendWebhookSecret
	inv, providerID := h.sentInvitation("refused")
	body := resendEvent("email.bounced", providerID, inv.Email, bounceDetail)
	id := "msg_" + randomHex(12)
	now := time.Now()
	good := svixHeaders(t, secret, id, now, body)

	tampered := strings.Replace(body, "Permanent", "Transient", 1)
	otherSecret := svixHeaders(t, randomSvixSecret(), id, now, body)
	stale := svixHeaders(t, secret, id, now.Add(-6*time.Minute), body)
	future := svixHeaders(t, secret, id, now.Add(6*time.Minute), body)
	for name, c := range map[string]struct {
		body    string
		headers []string
	}{
		"tampered body":       {tampered, good},
		"another secret":      {body, otherSecret},
		"stale timestamp":     {body, stale},
		"future timestamp":    {body, future},
		"no signature":        {body, good[:4]},
		"no headers":          {body, nil},
		"other svix-id":       {body, append(append([]string{}, good...), "svix-id", "msg_other")},
		"signature of v2":     {body, append(append([]string{}, good...), "svix-signature", strings.Replace(good[5], "v1,", "v2,", 1))},
		"an API token":        {body, []string{"Authorization", "Bearer " + portalToken}},
		"garbage signature":   {body, append(append([]string{}, good...), "svix-signature", "v1,AAAA")},
		"timestamp not a int": {body, append(append([]string{}, good...), "svix-timestamp", "soon")},
	} {
		w := h.from("203.0.113.60:1", "POST", providerEventsPath, c.body, c.headers...)
		if w.Code != 401 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
			continue
		}
		decodeProblem(t, w, 401, contract.CodeUnauthorized)
	}
	if d := h.invitationDelivery(inv.ID); d.Status != contract.DeliverySent {
		t.Fatalf("an unverified event changed the delivery: %+v", d)
	}
	// Several signatures (Svix signs with each active secret): one that matches is enough.
	rotated := append(append([]string{}, good...), "svix-signature", otherSecret[5]+" "+good[5])
	if w := h.from("203.0.113.60:1", "POST", providerEventsPath, body, rotated...); w.Code != 200 {
		t.Fatalf("one of two signatures good: %d %s", w.Code, w.Body)
	}
	if d := h.invitationDelivery(inv.ID); d.Status != contract.DeliveryBounced {
		t.Fatalf("after the verified event: %+v", d)
	}

	// Bad signatures are limited per address like bad API tokens; a blocked address is refused
	// even with a good signature, others are not.
	limited := h.serverWith(func(d *Deps) {})
	limited.limits.unauthorizedIP = ratelimit.New(config.RateLimit{Count: 2, Per: time.Minute})
	send := func(addr string, headers []string) int {
		return serveFrom(t, limited, addr, "POST", providerEventsPath, body, headers...).Code
	}
	for range 2 {
		if code := send("198.51.100.80:1", otherSecret); code != 401 {
			t.Fatalf("bad signature: %d", code)
		}
	}
	if code := send("198.51.100.80:1", otherSecret); code != 429 {
		t.Fatalf("third bad signature: %d, want 429", code)
	}
	fresh := svixHeaders(t, secret, "msg_"+randomHex(12), time.Now(), body)
	if code := send("198.51.100.80:1", fresh); code != 429 {
		t.Fatalf("good signature from a blocked address: %d, want 429", code)
	}
	if code := send("198.51.100.81:1", fresh); code != 200 {
		t.Fatalf("good signature from another address: %d", code)
	}
}

// Without RESEND_WEBHOOK_SECRET provider events are refused with 404; bodies are bounded.
func TestProviderEventsDisabledAndBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	off := h.serverWith(func(d *Deps) { d.Config.ResendWebhookSecret = "" })
	body := resendEvent("email.delivered", "re_x", "x@acme.test", "")
	w := serve(t, off, "POST", providerEventsPath, body, svixHeaders(t, h.cfg.ResendWebhookSecret, "msg_1", time.Now(), body)...)
	if p := decodeProblem(t, w, 404, contract.CodeNotFound); !strings.Contains(p.Detail, "RESEND_WEBHOOK_SECRET") {
		t.Errorf("disabled: %+v", p)
	}
	// An unusable secret (config takes unpadded base64 that the verifier does not) is refused
	// the same way, logged.
	var logged syncLog
	bad := h.serverWith(func(d *Deps) {
		d.Config.ResendWebhookSecret = "whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 23))
		d.Logger = slog.New(slog.NewJSONHandler(&logged, nil))
	})
	decodeProblem(t, serve(t, bad, "POST", providerEventsPath, body), 404, contract.CodeNotFound)
	if !strings.Contains(logged.String(), "RESEND_WEBHOOK_SECRET") {
		t.Errorf("the unusable secret is not logged: %s", logged.String())
	}

	big := `{"type":"email.opened","data":{"pad":"` + strings.Repeat("x", maxProviderEventBytes) + `"}}`
	decodeProblem(t, h.from("203.0.113.70:1", "POST", providerEventsPath, big, svixHeaders(t, h.cfg.ResendWebhookSecret, "msg_2", time.Now(), big)...),
		413, contract.CodePayloadTooLarge)
	if w := h.do("GET", providerEventsPath, ""); w.Code != 405 {
		t.Errorf("GET: %d", w.Code)
	}
}

// serveFrom sends a request to s from a client address.
func serveFrom(t testing.TB, s *Server, addr, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = addr
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return exchange(t, s, req, false)
}
