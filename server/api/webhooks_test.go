package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/webhook"
)

// publicHookURL is an https URL on a public address given as an IP literal, so registering it
// needs no DNS. The harness accounts of these tests have no invitations, so nothing is ever
// delivered to it.
const publicHookURL = "https://93.184.215.14/hooks/onboarding"

// createWebhook registers an endpoint through the API with the portal's token.
func (h *harness) createWebhook(body string) webhookSecretView {
	h.t.Helper()
	return decodeJSON[webhookSecretView](h.t, h.api("POST", h.accountPath("/webhooks"), body), 201)
}

// secretKey is the key of a whsec_ secret, which must be the standard base64 of 32 bytes.
func secretKey(t testing.TB, secret string) []byte {
	t.Helper()
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) != 32 {
		t.Fatalf("secret %q is not whsec_ and the base64 of 32 bytes", secret)
	}
	return key
}

func TestWebhookEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	created := h.createWebhook(`{"url":"` + publicHookURL + `","event_types":["invitation.accepted","invitation.expired","invitation.accepted"],"description":"CRM sync"}`)
	secretKey(t, created.Secret)
	if created.URL != publicHookURL || created.Description != "CRM sync" || created.PreviousSecretExpiresAt != nil ||
		strings.Join(created.EventTypes, ",") != "invitation.accepted,invitation.expired" || time.Since(created.CreatedAt) > time.Minute {
		t.Fatalf("created %+v", created)
	}
	if want := webhook.NewSecrets(h.cfg.TokenSecret).For(created.ID.String(), 1); created.Secret != want {
		t.Fatal("the secret is not the endpoint's first derived secret: the worker would sign with another")
	}
	all := h.createWebhook(`{"url":"` + publicHookURL + `/all"}`)
	if len(all.EventTypes) != 0 || all.Description != "" || all.Secret == created.Secret {
		t.Fatalf("second endpoint %+v", all)
	}

	// The list shows both, oldest first, and never a secret.
	w := h.api("GET", h.accountPath("/webhooks"), "")
	if strings.Contains(w.Body.String(), "secret\"") || strings.Contains(w.Body.String(), created.Secret) {
		t.Fatalf("the list shows a secret: %s", w.Body)
	}
	list := decodeJSON[webhookListView](t, w, 200)
	if len(list.Items) != 2 || list.Items[0].ID != created.ID || list.Items[1].ID != all.ID || list.Items[1].EventTypes == nil {
		t.Fatalf("list %+v", list)
	}

	// Rotation: a new secret, the old one signing for 24 h more.
	rotated := decodeJSON[webhookSecretView](t, h.api("POST", h.accountPath("/webhooks/"+created.ID.String()+"/rotate-secret"), ""), 200)
	secretKey(t, rotated.Secret)
	if rotated.Secret == created.Secret || rotated.ID != created.ID || rotated.PreviousSecretExpiresAt == nil ||
		rotated.PreviousSecretExpiresAt.Sub(time.Now().Add(24*time.Hour)).Abs() > time.Minute {
		t.Fatalf("rotated %+v", rotated)
	}
	if want := webhook.NewSecrets(h.cfg.TokenSecret).For(created.ID.String(), 2); rotated.Secret != want {
		t.Fatal("the rotated secret is not the endpoint's second one")
	}
	list = decodeJSON[webhookListView](t, h.api("GET", h.accountPath("/webhooks"), ""), 200)
	if list.Items[0].PreviousSecretExpiresAt == nil || list.Items[1].PreviousSecretExpiresAt != nil {
		t.Fatalf("list after the rotation %+v", list)
	}

	for _, secret := range []string{created.Secret, rotated.Secret, all.Secret} {
		if strings.Contains(h.logs.String(), secret) || strings.Contains(stack.Logs(), secret) {
			t.Error("a webhook secret is in the logs")
		}
	}

	// Delete: 204, then gone everywhere.
	path := h.accountPath("/webhooks/" + created.ID.String())
	if w := h.api("DELETE", path, ""); w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	decodeProblem(t, h.api("DELETE", path, ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("POST", path+"/rotate-secret", ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("GET", path+"/deliveries", ""), 404, contract.CodeNotFound)
	list = decodeJSON[webhookListView](t, h.api("GET", h.accountPath("/webhooks"), ""), 200)
	if len(list.Items) != 1 || list.Items[0].ID != all.ID {
		t.Fatalf("list after the delete %+v", list)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		decodeProblem(t, h.api("DELETE", h.accountPath("/webhooks/"+id), ""), 404, contract.CodeNotFound)
		decodeProblem(t, h.api("POST", h.accountPath("/webhooks/"+id+"/rotate-secret"), ""), 404, contract.CodeNotFound)
	}
}

// Another account's endpoint is not found through this account's path, whoever asks; a token
// scoped to the account manages its own endpoints and is refused on other accounts.
func TestWebhookTenancy(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	theirs := other.createWebhook(`{"url":"` + publicHookURL + `"}`)
	mine := h.createWebhook(`{"url":"` + publicHookURL + `"}`)
	for _, r := range []struct{ method, rest string }{
		{"DELETE", ""}, {"POST", "/rotate-secret"}, {"GET", "/deliveries"},
	} {
		decodeProblem(t, h.api(r.method, h.accountPath("/webhooks/"+theirs.ID.String()+r.rest), ""), 404, contract.CodeNotFound)
		decodeProblem(t, h.do(r.method, h.accountPath("/webhooks/"+theirs.ID.String()+r.rest), "", "Authorization", "Bearer "+h.scopedToken), 404, contract.CodeNotFound)
		decodeProblem(t, h.do(r.method, other.accountPath("/webhooks/"+theirs.ID.String()+r.rest), "", "Authorization", "Bearer "+h.scopedToken), 403, contract.CodeForbidden)
	}
	decodeProblem(t, h.do("POST", other.accountPath("/webhooks"), `{"url":"`+publicHookURL+`"}`, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json"), 403, contract.CodeForbidden)
	decodeProblem(t, h.do("GET", other.accountPath("/webhooks"), "", "Authorization", "Bearer "+h.scopedToken), 403, contract.CodeForbidden)
	if list := decodeJSON[webhookListView](t, other.api("GET", other.accountPath("/webhooks"), ""), 200); len(list.Items) != 1 || list.Items[0].ID != theirs.ID {
		t.Fatalf("the other account's endpoints changed: %+v", list)
	}

	// The scoped token on its own account: the whole lifecycle.
	scoped := func(method, path, body string) int {
		return h.do(method, path, body, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json").Code
	}
	w := h.do("POST", h.accountPath("/webhooks"), `{"url":"`+publicHookURL+`/scoped"}`, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json")
	own := decodeJSON[webhookSecretView](t, w, 201)
	if own.Secret == "" || w.Header().Get("Location") != h.accountPath("/webhooks/"+own.ID.String()) {
		t.Fatalf("scoped create: %s %v", w.Body, w.Header())
	}
	list := decodeJSON[webhookListView](t, h.do("GET", h.accountPath("/webhooks"), "", "Authorization", "Bearer "+h.scopedToken), 200)
	if len(list.Items) != 2 || list.Items[0].ID != mine.ID {
		t.Fatalf("scoped list %+v", list)
	}
	if code := scoped("POST", h.accountPath("/webhooks/"+own.ID.String()+"/rotate-secret"), ""); code != 200 {
		t.Fatalf("scoped rotate: %d", code)
	}
	if code := scoped("GET", h.accountPath("/webhooks/"+own.ID.String()+"/deliveries"), ""); code != 200 {
		t.Fatalf("scoped deliveries: %d", code)
	}
	if code := scoped("DELETE", h.accountPath("/webhooks/"+own.ID.String()), ""); code != 204 {
		t.Fatalf("scoped delete: %d", code)
	}
}

// URLs that are not https (in production), or that reach loopback, private, link-local or
// metadata addresses, are refused with 422 webhook_url_invalid naming why; bad fields are
// validation_failed.
func TestWebhookURLRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withConfig(func(c *config.Config) { c.WebhookAllowLocalhost = false }))
	for _, u := range []string{
		"https://10.0.0.1/hook",
		"https://169.254.169.254/latest/meta-data",
		"https://localhost/hook",
		"https://api.localhost:8443/hook",
		"https://127.0.0.1:9000/hook",
		"https://[::1]/hook",
		"https://[fd00:ec2::254]/hook",
		"https://192.168.1.10/hook",
		"https://[::ffff:10.0.0.1]/hook",
		"ftp://93.184.215.14/hook",
		"/relative/hook",
		"https://user:pass@93.184.215.14/hook",
	} {
		w := h.api("POST", h.accountPath("/webhooks"), fmt.Sprintf(`{"url":%q}`, u))
		p := decodeProblem(t, w, 422, contract.CodeWebhookURLInvalid)
		if len(p.Errors) != 1 || p.Errors[0].Field != "url" || strings.Contains(p.Detail, "/hook") {
			t.Errorf("%s: %+v", u, p)
		}
	}
	if list := decodeJSON[webhookListView](t, h.api("GET", h.accountPath("/webhooks"), ""), 200); len(list.Items) != 0 {
		t.Fatalf("a refused URL was registered: %+v", list)
	}

	// http is development only; localhost only with WEBHOOK_ALLOW_LOCALHOST (and https or not).
	h.createWebhook(`{"url":"http://93.184.215.14/hook"}`)
	prod := h.serverWith(func(d *Deps) { d.Config.Env = "production" })
	p := decodeProblem(t, serve(t, prod, "POST", h.accountPath("/webhooks"), `{"url":"http://93.184.215.14/hook"}`,
		"Authorization", "Bearer "+portalToken), 422, contract.CodeWebhookURLInvalid)
	if !strings.Contains(p.Detail, "https") {
		t.Errorf("production http: %+v", p)
	}
	local := h.serverWith(func(d *Deps) { d.Config.WebhookAllowLocalhost = true })
	for _, u := range []string{"http://localhost:8099/hook", "http://127.0.0.1:8099/hook"} {
		if w := serve(t, local, "POST", h.accountPath("/webhooks"), fmt.Sprintf(`{"url":%q}`, u), "Authorization", "Bearer "+portalToken); w.Code != 201 {
			t.Errorf("%s with localhost allowed: %d %s", u, w.Code, w.Body)
		}
	}
	decodeProblem(t, serve(t, local, "POST", h.accountPath("/webhooks"), `{"url":"https://10.0.0.1/hook"}`,
		"Authorization", "Bearer "+portalToken), 422, contract.CodeWebhookURLInvalid)

	// Fields.
	for _, c := range []struct{ body, field string }{
		{`{}`, "url"},
		{`{"url":""}`, "url"},
		{`{"url":"` + publicHookURL + `?q=` + strings.Repeat("a", 2048) + `"}`, "url"},
		{`{"url":"` + publicHookURL + `/a\tb"}`, "url"},
		{`{"url":"` + publicHookURL + `","event_types":["invitation.created","email.bounced"]}`, "event_types[1]"},
		{`{"url":"` + publicHookURL + `","event_types":["created"]}`, "event_types[0]"},
		{`{"url":"` + publicHookURL + `","event_types":"invitation.created"}`, "event_types"},
		{`{"url":"` + publicHookURL + `","description":"` + strings.Repeat("d", 501) + `"}`, "description"},
		{`{"url":"` + publicHookURL + `","secret":"whsec_mine"}`, "secret"},
	} {
		p := decodeProblem(t, h.api("POST", h.accountPath("/webhooks"), c.body), 422, contract.CodeValidation)
		if len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("%.80s: %+v, want field %s", c.body, p.Errors, c.field)
		}
	}
	h.createWebhook(`{"url":"` + publicHookURL + `","description":"` + strings.Repeat("d", 500) + `"}`)
}

// An account has at most maxWebhookEndpoints live endpoints; deleting one makes room.
func TestWebhookEndpointLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var last webhookSecretView
	for range maxWebhookEndpoints {
		last = h.createWebhook(`{"url":"` + publicHookURL + `","event_types":["invitation.renewal_requested"]}`)
	}
	p := decodeProblem(t, h.api("POST", h.accountPath("/webhooks"), `{"url":"`+publicHookURL+`"}`), 422, contract.CodeValidation)
	if p.Errors[0].Field != "body" {
		t.Fatalf("%+v", p)
	}
	if w := h.api("DELETE", h.accountPath("/webhooks/"+last.ID.String()), ""); w.Code != 204 {
		t.Fatal(w.Code)
	}
	h.createWebhook(`{"url":"` + publicHookURL + `","event_types":["invitation.renewal_requested"]}`)
}

// The deliveries list: the endpoint's attempts newest first, by pages.
func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Only renewal requests, which this test never makes: the worker owes this endpoint
	// nothing, and the attempts are the ones recorded here.
	hook := h.createWebhook(`{"url":"` + publicHookURL + `","event_types":["invitation.renewal_requested"]}`)
	h.pending(uniqueEmail("deliveries"))
	ev := h.storeEvents(1, contract.PublicCreated)[0]
	row := ev.RowID
	ctx := context.Background()
	code500 := 500
	base := time.Now().Truncate(time.Second)
	for i := 1; i <= 5; i++ {
		a := store.WebhookAttempt{EndpointID: hook.ID, EventRowID: row, Attempt: i}
		next := base.Add(time.Duration(i) * time.Minute)
		switch {
		case i == 5:
			a.StatusCode = new(int)
			*a.StatusCode = 204
		case i%2 == 0:
			a.Error = "no answer within 10s"
			a.NextAttemptAt = &next
		default:
			a.StatusCode = &code500
			a.Error = "HTTP 500"
			a.NextAttemptAt = &next
		}
		if err := stack.Store.RecordWebhookAttempt(ctx, a, i == 5); err != nil {
			t.Fatal(err)
		}
	}
	path := h.accountPath("/webhooks/" + hook.ID.String() + "/deliveries")
	var got []webhookAttemptView
	cursor := ""
	for page := 0; ; page++ {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		list := decodeJSON[webhookAttemptListView](t, h.api("GET", path+q, ""), 200)
		got = append(got, list.Items...)
		if list.NextCursor == nil {
			if page != 2 || len(list.Items) != 1 {
				t.Fatalf("page %d has %d items and no next cursor", page, len(list.Items))
			}
			break
		}
		if len(list.Items) != 2 || page > 2 {
			t.Fatalf("page %d: %+v", page, list)
		}
		cursor = *list.NextCursor
	}
	for i, a := range got {
		attempt := 5 - i
		if a.Attempt != attempt || a.EventID != ev.ID || a.Type != ev.Type || a.At.IsZero() {
			t.Errorf("item %d: %+v", i, a)
		}
		switch {
		case attempt == 5:
			if a.StatusCode == nil || *a.StatusCode != 204 || a.Error != nil || a.NextAttemptAt != nil {
				t.Errorf("delivered attempt: %+v", a)
			}
		case attempt%2 == 0:
			if a.StatusCode != nil || a.Error == nil || *a.Error != "no answer within 10s" || a.NextAttemptAt == nil {
				t.Errorf("timed-out attempt: %+v", a)
			}
		default:
			if a.StatusCode == nil || *a.StatusCode != 500 || a.NextAttemptAt == nil || !a.NextAttemptAt.Equal(base.Add(time.Duration(attempt)*time.Minute)) {
				t.Errorf("failed attempt: %+v", a)
			}
		}
	}
	// The answer's shape: every field present, null where there is nothing.
	var raw struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	_ = json.Unmarshal(h.api("GET", path, "").Body.Bytes(), &raw)
	for _, k := range []string{"id", "event_id", "type", "attempt", "status_code", "error", "at", "next_attempt_at"} {
		if _, ok := raw.Items[0][k]; !ok {
			t.Errorf("an attempt lacks %s: %v", k, raw.Items[0])
		}
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?cursor=abc", "?cursor=" + encodeSeqCursor(cursorEvents, 3), "?cursor=" + encodeSeqCursor(cursorAttempts, 0)} {
		decodeProblem(t, h.api("GET", path+q, ""), 422, contract.CodeValidation)
	}
}
