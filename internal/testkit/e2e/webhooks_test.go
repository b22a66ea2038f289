package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/testkit/webhooktest"

	stacktest "github.com/onboarding-service/onboarding/internal/testkit/stack"
)

// feedEvent is the contract's event object.
type feedEvent struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	AccountID string    `json:"account_id"`
	Data      struct {
		Invitation map[string]any `json:"invitation"`
		UserID     *string        `json:"user_id"`
	} `json:"data"`
}

type webhookEndpoint struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Secret     string   `json:"secret"`
}

// register registers a receiver for f's account and tells the receiver its secret.
func (f fixture) register(t *testing.T, r *webhooktest.Receiver, types ...string) webhookEndpoint {
	t.Helper()
	body := map[string]any{"url": r.URL() + "/hooks", "description": "e2e"}
	if len(types) > 0 {
		body["event_types"] = types
	}
	var ep webhookEndpoint
	portal().do(t, "POST", f.path("/webhooks"), body).expect(t, 201).decode(t, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("endpoint created with secret %q", ep.Secret)
	}
	r.SetSecrets(ep.Secret)
	return ep
}

// feed reads f's whole event feed, page by page.
func (f fixture) feed(t *testing.T, query string) []feedEvent {
	t.Helper()
	var all []feedEvent
	after := ""
	for range 100 {
		var page struct {
			Items      []feedEvent `json:"items"`
			NextCursor *string     `json:"next_cursor"`
		}
		q := "?limit=3" + query
		if after != "" {
			q += "&after=" + after
		}
		portal().do(t, "GET", f.path("/events"+q), nil).expect(t, 200).decode(t, &page)
		all = append(all, page.Items...)
		if len(page.Items) == 0 || page.NextCursor == nil {
			return all
		}
		after = *page.NextCursor
	}
	t.Fatal("the feed never ended")
	return nil
}

// typesByInvitation groups a feed's types by invitation, in feed order.
func typesByInvitation(events []feedEvent) map[string][]string {
	out := map[string][]string{}
	for _, e := range events {
		id, _ := e.Data.Invitation["id"].(string)
		out[id] = append(out[id], e.Type)
	}
	return out
}

// TestWebhooksWholeLifecycle walks invitations through every transition the API drives and
// checks that the feed holds each transition's event exactly once, in order, without a link,
// and that a receiver verifying signatures as a consumer does got every one of them.
func TestWebhooksWholeLifecycle(t *testing.T) {
	f := newFixture(t, 10)
	r := webhooktest.NewReceiver(t, "")
	ep := f.register(t, r)

	// A: created, sent, resent, reminded, expired, renewed, sent, accepted (short durations).
	a := f.createInvitation(t, short(), unique("Hook.A"))
	waitEmail(t, a.Email, "invited you", 1)
	time.Sleep(stacktest.ShortResend)
	short().do(t, "POST", f.path("/invitations/"+a.ID+"/resend"), nil).expect(t, 200)
	waitEmail(t, a.Email, "invited you", 2)
	eventually(t, 30*time.Second, "A expired", func() bool { return f.invitation(t, portal(), a.ID).Status == "expired" })
	var renewed invitation
	short().do(t, "POST", f.path("/invitations/"+a.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	waitEmail(t, a.Email, "invited you", 3)
	accept(t, tokenOf(t, *renewed.InviteURL)).expect(t, 200)
	// B: created, sent, revoked. C: created, sent, declined.
	b := f.createInvitation(t, portal(), unique("Hook.B"))
	waitEmail(t, b.Email, "invited you", 1)
	portal().do(t, "POST", f.path("/invitations/"+b.ID+"/revoke"), nil).expect(t, 200)
	c := f.createInvitation(t, portal(), unique("Hook.C"))
	waitEmail(t, c.Email, "invited you", 1)
	invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": tokenOf(t, *c.InviteURL)}).expect(t, 200)

	want := map[string][]string{
		a.ID: {"invitation.created", "invitation.sent", "invitation.resent", "invitation.reminded", "invitation.expired",
			"invitation.renewed", "invitation.sent", "invitation.accepted"},
		b.ID: {"invitation.created", "invitation.sent", "invitation.revoked"},
		c.ID: {"invitation.created", "invitation.sent", "invitation.declined"},
	}
	total := 0
	for _, ts := range want {
		total += len(ts)
	}
	var events []feedEvent
	eventually(t, 30*time.Second, "every event in the feed", func() bool {
		events = f.feed(t, "")
		return len(events) >= total
	})
	got := typesByInvitation(events)
	for id, ts := range want {
		if !slices.Equal(got[id], ts) {
			t.Errorf("invitation %s: feed has %v, want %v", id, got[id], ts)
		}
	}
	if len(events) != total {
		t.Errorf("feed has %d events, want %d", len(events), total)
	}
	ids := map[string]bool{}
	for _, e := range events {
		if ids[e.ID] || !strings.HasPrefix(e.ID, "evt_") {
			t.Errorf("event id %q repeated or malformed", e.ID)
		}
		ids[e.ID] = true
		if e.AccountID != f.AccountID {
			t.Errorf("event %s of account %s", e.ID, e.AccountID)
		}
		raw, _ := json.Marshal(e)
		if _, ok := e.Data.Invitation["invite_url"]; ok || strings.Contains(string(raw), "token=") {
			t.Errorf("event %s carries a link: %s", e.ID, raw)
		}
		if (e.Type == "invitation.accepted") != (e.Data.UserID != nil) {
			t.Errorf("event %s (%s): user_id %v", e.ID, e.Type, e.Data.UserID)
		}
	}
	// The type filter.
	if only := f.feed(t, "&type=invitation.accepted,invitation.revoked"); len(only) != 2 {
		t.Errorf("filtered feed = %v", typesByInvitation(only))
	}

	// Every event delivered, each with its event id as webhook-id and the feed's body.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(webhooktest.Distinct(ds)) >= total }); err != nil {
		t.Fatal(err)
	}
	byID := map[string]feedEvent{}
	for _, e := range events {
		byID[e.ID] = e
	}
	for _, d := range webhooktest.Distinct(r.Deliveries()) {
		e, ok := byID[d.WebhookID]
		if !ok {
			t.Errorf("delivered %s (%s), not in the feed", d.WebhookID, d.Type)
			continue
		}
		var body feedEvent
		if err := d.Decode(&body); err != nil || body.ID != e.ID || body.Type != e.Type {
			t.Errorf("delivery %s: body %+v (%v), feed has %s", d.WebhookID, body, err, e.Type)
		}
		delete(byID, d.WebhookID)
	}
	if len(byID) != 0 {
		t.Errorf("%d events never delivered", len(byID))
	}
	var attempts struct {
		Items []struct {
			EventID    string `json:"event_id"`
			Type       string `json:"type"`
			Attempt    int    `json:"attempt"`
			StatusCode *int   `json:"status_code"`
		} `json:"items"`
	}
	eventually(t, 10*time.Second, "every attempt recorded", func() bool {
		portal().do(t, "GET", f.path("/webhooks/"+ep.ID+"/deliveries?limit=100"), nil).expect(t, 200).decode(t, &attempts)
		return len(attempts.Items) >= total
	})
	if len(attempts.Items) != total {
		t.Errorf("%d attempts recorded, want %d", len(attempts.Items), total)
	}
}

// TestWebhookRetriedWithTheSameID: a receiver answering 500 three times gets the event on the
// fourth attempt, with the same webhook-id each time, and the attempts are recorded.
func TestWebhookRetriedWithTheSameID(t *testing.T) {
	f := newFixture(t, 2)
	r := webhooktest.NewReceiver(t, "")
	ep := f.register(t, r, "invitation.created")
	r.FailNext(3, 500)
	f.createInvitation(t, portal(), unique("Hook.Retry"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(ds) == 1 }); err != nil {
		t.Fatal(err)
	}
	d := r.Deliveries()[0]
	if d.Attempt != 4 || r.AttemptCount(d.WebhookID) != 4 {
		t.Fatalf("delivered on attempt %d (%d attempts with its id), want 4", d.Attempt, r.AttemptCount(d.WebhookID))
	}
	for _, at := range r.Attempts() {
		if at.WebhookID != d.WebhookID {
			t.Fatalf("an attempt carried webhook-id %s, the delivery %s", at.WebhookID, d.WebhookID)
		}
	}
	var attempts struct {
		Items []struct {
			EventID       string     `json:"event_id"`
			Attempt       int        `json:"attempt"`
			StatusCode    *int       `json:"status_code"`
			Error         *string    `json:"error"`
			NextAttemptAt *time.Time `json:"next_attempt_at"`
		} `json:"items"`
	}
	// The last attempt is recorded just after the receiver answered it.
	eventually(t, 10*time.Second, "4 attempts recorded", func() bool {
		portal().do(t, "GET", f.path("/webhooks/"+ep.ID+"/deliveries"), nil).expect(t, 200).decode(t, &attempts)
		return len(attempts.Items) >= 4
	})
	if len(attempts.Items) != 4 {
		t.Fatalf("%d attempts recorded, want 4: %+v", len(attempts.Items), attempts.Items)
	}
	for i, a := range attempts.Items { // newest first
		wantCode, wantAttempt := 500, 4-i
		if i == 0 {
			wantCode = 200
		}
		if a.EventID != d.WebhookID || a.Attempt != wantAttempt || a.StatusCode == nil || *a.StatusCode != wantCode {
			t.Errorf("attempt record %d = %+v, want attempt %d answered %d", i, a, wantAttempt, wantCode)
		}
		if (i == 0) != (a.NextAttemptAt == nil) {
			t.Errorf("attempt record %d: next_attempt_at %v", i, a.NextAttemptAt)
		}
	}
}

// TestHangingEndpointDoesNotSlowAnother: one account's endpoint never answers; another's gets
// its events within seconds meanwhile.
func TestHangingEndpointDoesNotSlowAnother(t *testing.T) {
	slow, fast := newFixture(t, 20), newFixture(t, 2)
	dead := webhooktest.NewReceiver(t, "")
	dead.Hang()
	slow.register(t, dead)
	live := webhooktest.NewReceiver(t, "")
	fast.register(t, live, "invitation.created")
	for i := range 10 {
		slow.createInvitation(t, portal(), unique(fmt.Sprintf("Hook.Slow%d", i)))
	}
	began := time.Now()
	fast.createInvitation(t, portal(), unique("Hook.Fast"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := live.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(ds) == 1 }); err != nil {
		t.Fatalf("the live endpoint waited behind the dead one: %v", err)
	}
	t.Logf("delivered to the live endpoint %s after its create, beside a hanging one", time.Since(began).Round(time.Millisecond))
}

// TestWebhookURLsRefused: URLs reaching private, link-local, metadata or unresolvable hosts
// are refused at registration; loopback is allowed only with WEBHOOK_ALLOW_LOCALHOST (the
// stack's, as `make run`'s).
func TestWebhookURLsRefused(t *testing.T) {
	f := newFixture(t, 1)
	for _, u := range []string{
		"http://10.0.0.1/hook", "https://192.168.1.10/hook", "https://169.254.169.254/latest/meta-data",
		"https://[fd00:ec2::254]/", "https://[::ffff:10.0.0.1]/", "https://100.64.0.1/", "ftp://example.com/",
		"https://user:pass@example.com/", "not a url", "https://no-such-host.invalid/",
	} {
		portal().do(t, "POST", f.path("/webhooks"), map[string]any{"url": u}).expectProblem(t, 422, "webhook_url_invalid")
	}
	var list []webhookEndpoint
	var page struct {
		Items []webhookEndpoint `json:"items"`
	}
	portal().do(t, "GET", f.path("/webhooks"), nil).expect(t, 200).decode(t, &page)
	list = page.Items
	if len(list) != 0 {
		t.Fatalf("refused URLs were registered: %+v", list)
	}
}

// svixSign signs a provider event as Svix signs Resend's webhooks.
func svixSign(t *testing.T, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", ts)
	h.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/json")
	return h
}

// TestProviderBounce: Resend's signed email.bounced turns the invitation's delivery into
// bounced and emits invitation.delivery_failed once; a bad signature is 401; a replay is
// accepted and changes nothing.
func TestProviderBounce(t *testing.T) {
	f := newFixture(t, 2)
	r := webhooktest.NewReceiver(t, "")
	f.register(t, r, "invitation.delivery_failed")
	inv := f.createInvitation(t, portal(), unique("Hook.Bounce"))
	waitEmail(t, inv.Email, "invited you", 1)
	emailID := stack.Resend.EmailsTo(inv.Email)[0].ID
	eventually(t, 10*time.Second, "the send recorded", func() bool {
		d := f.invitation(t, portal(), inv.ID).Delivery
		return d != nil && d.Status == "sent"
	})
	body := []byte(fmt.Sprintf(`{"type":"email.bounced","created_at":%q,"data":{"email_id":%q,"to":[%q],"subject":"x","created_at":%q,"bounce":{"message":"mailbox does not exist","type":"Permanent","subType":"General"}}}`,
		time.Now().UTC().Format(time.RFC3339Nano), emailID, inv.Email, time.Now().UTC().Format(time.RFC3339Nano)))
	post := func(h http.Header) int {
		req, _ := http.NewRequest("POST", stack.API.URL+"/v1/provider-events/resend", strings.NewReader(string(body)))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	bad := svixSign(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("not-the-secret-at-all-32-bytes!!")), "msg_bad", time.Now(), body)
	if code := post(bad); code != 401 {
		t.Fatalf("a wrongly signed provider event answered %d, want 401", code)
	}
	good := svixSign(t, stacktest.ResendWebhookSecret, "msg_"+randomHex(8), time.Now(), body)
	if code := post(good); code/100 != 2 {
		t.Fatalf("a signed bounce answered %d", code)
	}
	if code := post(good); code/100 != 2 {
		t.Fatalf("its replay answered %d, want 2xx (accepted, ignored)", code)
	}
	if got := f.invitation(t, portal(), inv.ID); got.Delivery == nil || got.Delivery.Status != "bounced" {
		t.Fatalf("delivery after the bounce = %+v", got.Delivery)
	}
	// Support sees it on the running workflow too: its DeliveryStatus search attribute.
	eventually(t, 30*time.Second, "DeliveryStatus=bounced on the workflow", func() bool {
		d, err := stack.Temporal.DescribeWorkflowExecution(context.Background(), "invitation:"+inv.ID, "")
		if err != nil {
			return false
		}
		p := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["DeliveryStatus"]
		return p != nil && string(p.GetData()) == `"bounced"`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(ds) >= 1 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // a replay's second event would have arrived by now
	failed := f.feed(t, "&type=invitation.delivery_failed")
	if len(failed) != 1 || len(webhooktest.Distinct(r.Deliveries())) != 1 {
		t.Fatalf("delivery_failed events: feed %d, delivered %d; want 1 each", len(failed), len(webhooktest.Distinct(r.Deliveries())))
	}
	if d, _ := failed[0].Data.Invitation["delivery"].(map[string]any); d["status"] != "bounced" {
		t.Fatalf("the event's invitation shows delivery %v", failed[0].Data.Invitation["delivery"])
	}
}

// TestWebhookSecretRotation: after a rotation each delivery carries two signatures, one by the
// new secret and one by the old, so a consumer holding either verifies it during the overlap;
// the new secret is shown once, and the list never shows a secret.
func TestWebhookSecretRotation(t *testing.T) {
	f := newFixture(t, 3)
	r := webhooktest.NewReceiver(t, "")
	ep := f.register(t, r, "invitation.created")
	var rotated webhookEndpoint
	portal().do(t, "POST", f.path("/webhooks/"+ep.ID+"/rotate-secret"), nil).expect(t, 200).decode(t, &rotated)
	if rotated.Secret == "" || rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("rotated secret %q (old %q)", rotated.Secret, ep.Secret)
	}
	listed := portal().do(t, "GET", f.path("/webhooks"), nil).expect(t, 200)
	if strings.Contains(string(listed.Body), "whsec_") {
		t.Fatalf("the list shows a secret: %s", listed.Body)
	}
	for i, secrets := range [][]string{{ep.Secret}, {rotated.Secret}} {
		r.SetSecrets(secrets...)
		f.createInvitation(t, portal(), unique(fmt.Sprintf("Hook.Rotate%d", i)))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := r.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(ds) == i+1 })
		cancel()
		if err != nil {
			t.Fatalf("holding only the %s secret: %v", map[int]string{0: "old", 1: "new"}[i], err)
		}
		if d := r.Deliveries()[i]; d.Signatures != 2 {
			t.Errorf("delivery %d carried %d signatures, want 2 during the overlap", i, d.Signatures)
		}
	}
	if n := len(r.Rejections()); n != 0 {
		t.Errorf("%d deliveries refused by the receiver during the overlap", n)
	}
	// A deleted endpoint is owed nothing more.
	portal().do(t, "DELETE", f.path("/webhooks/"+ep.ID), nil).expect(t, 204)
	f.createInvitation(t, portal(), unique("Hook.AfterDelete"))
	time.Sleep(3 * time.Second)
	if n := len(r.Attempts()); n != 2 {
		t.Errorf("%d attempts after the delete, want the 2 before it", n)
	}
}
