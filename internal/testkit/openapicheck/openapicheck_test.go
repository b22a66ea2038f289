package openapicheck_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onboarding-service/onboarding/internal/testkit/openapicheck"
	"github.com/onboarding-service/onboarding/server/api"
)

func validator(t *testing.T) *openapicheck.Validator {
	t.Helper()
	v, err := openapicheck.New(api.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	accountID = "7b0c0a52-5f7e-4b5c-9a51-3f1e2d4c5b6a"
	subID     = "0d8e7f6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"
)

// goodSubscription is a SubscriptionWithSeats as the document describes it.
func goodSubscription() map[string]any {
	return map[string]any{
		"id": subID, "application": "analytics", "name": "Team", "seats": 10,
		"roles": []string{"admin", "editor"}, "seats_used": 1, "seats_reserved": 2, "seats_available": 7,
	}
}

// TestValidatorCatchesAnUndocumentedField serves a documented route
// (GET /v1/accounts/{account_id}/subscriptions/{subscription_id}) with a test-only handler that
// answers what the document does not allow, through the validating transport: each mismatch
// fails the call with a message that names it.
func TestValidatorCatchesAnUndocumentedField(t *testing.T) {
	var status int
	var answer any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	client := &http.Client{Transport: validator(t).Transport(nil)}
	get := func() error {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/accounts/"+accountID+"/subscriptions/"+subID, nil)
		req.Header.Set("Authorization", "Bearer t")
		res, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return err
	}

	status, answer = 200, goodSubscription()
	if err := get(); err != nil {
		t.Fatalf("a documented answer was refused: %v", err)
	}
	for _, c := range []struct {
		name   string
		status int
		edit   func(m map[string]any)
		want   []string // in the error
	}{
		{"extra field", 200, func(m map[string]any) { m["internal_note"] = "x" }, []string{"internal_note"}},
		{"wrong type", 200, func(m map[string]any) { m["seats"] = "10" }, []string{"seats", "integer"}},
		{"bad id format", 200, func(m map[string]any) { m["id"] = "sub-1" }, []string{"id", "uuid"}},
		{"missing required", 200, func(m map[string]any) { delete(m, "seats_available") }, []string{"seats_available"}},
		{"undocumented status", 418, func(map[string]any) {}, []string{"418", "status is not supported"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := goodSubscription()
			c.edit(m)
			status, answer = c.status, m
			err := get()
			if err == nil {
				t.Fatal("the validator let the mismatch through")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q: %v", w, err)
				}
			}
			t.Logf("caught: %v", err)
		})
	}
}

// TestValidatorCatchesUndocumentedCodesAndRoutes: a problem with a code the document's enum does
// not have, and a route the document does not have, are mismatches too.
func TestValidatorCatchesUndocumentedCodesAndRoutes(t *testing.T) {
	v := validator(t)
	req := httptest.NewRequest("GET", "/v1/accounts/"+accountID+"/subscriptions/"+subID, nil)
	h := http.Header{"Content-Type": {"application/problem+json"}}
	p := `{"type":"https://onboarding.example/problems/no-such-code","title":"x","status":404,"detail":"x","code":"no_such_code"}`
	if err := v.Check(req, nil, 404, h, []byte(p)); err == nil || !strings.Contains(err.Error(), "code") {
		t.Errorf("an undocumented code: %v", err)
	}
	req = httptest.NewRequest("GET", "/v1/accounts/"+accountID+"/secrets", nil)
	if err := v.Check(req, nil, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); err == nil ||
		!strings.Contains(err.Error(), "not in the document") {
		t.Errorf("an undocumented route: %v", err)
	}
	// A request the service accepted must match too: here an unknown field.
	req = httptest.NewRequest("POST", "/v1/accounts", strings.NewReader(`{"name":"Acme","plan":"gold"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer t")
	body := `{"id":"` + accountID + `","name":"Acme"}`
	if err := v.Check(req, []byte(`{"name":"Acme","plan":"gold"}`), 201, http.Header{"Content-Type": {"application/json"}}, []byte(body)); err == nil ||
		!strings.Contains(err.Error(), "plan") {
		t.Errorf("an accepted request with an unknown field: %v", err)
	}
}

// TestValidatorCatchesAnExtraFieldOnAComposedSchema: an invitation's detail is InvitationCore,
// invite_url and events (allOf), closed by unevaluatedProperties; an extra field is caught there too.
func TestValidatorCatchesAnExtraFieldOnAComposedSchema(t *testing.T) {
	v := validator(t)
	inv := map[string]any{
		"id": subID, "account_id": accountID, "email": "jane@acme.test", "first_name": "Jane", "last_name": "Doe",
		"phone": "", "user_id": nil, "subscription_id": subID, "application": "analytics", "role": "editor",
		"group_ids": []string{}, "status": "pending", "expires_at": "2026-12-08T10:00:00Z", "sends": 1,
		"created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z",
		"delivery": map[string]any{"status": "sent", "error": nil}, "inviter": nil, "expires_in": 604800,
		"send_email": true, "message": nil, "metadata": map[string]any{}, "redirect_url": nil,
		"invite_url": "http://localhost:8080/invite?token=abc", "events": []any{},
	}
	req := httptest.NewRequest("GET", "/v1/accounts/"+accountID+"/invitations/"+subID, nil)
	h := http.Header{"Content-Type": {"application/json"}}
	body, _ := json.Marshal(inv)
	if err := v.Check(req, nil, 200, h, body); err != nil {
		t.Fatalf("a documented invitation was refused: %v", err)
	}
	inv["token"] = "abc"
	body, _ = json.Marshal(inv)
	if err := v.Check(req, nil, 200, h, body); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("an extra field on the invitation: %v", err)
	} else {
		t.Logf("caught: %v", err)
	}
}

// TestValidatorRoutes: a method a documented path does not have, answered 405 with a problem, is
// what the document says; a path that only looks like a documented one is not matched to it.
func TestValidatorRoutes(t *testing.T) {
	v := validator(t)
	h := http.Header{"Content-Type": {"application/problem+json"}}
	p := []byte(`{"type":"urn:onboarding:problem:method_not_allowed","title":"Method not allowed","status":405,"detail":"This path allows GET, POST.","code":"method_not_allowed"}`)
	req := httptest.NewRequest("PATCH", "/v1/accounts/"+accountID+"/invitations", nil)
	if err := v.Check(req, nil, 405, h, p); err != nil {
		t.Errorf("405 on a documented path: %v", err)
	}
	if err := v.Check(req, nil, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); err == nil {
		t.Error("PATCH .../invitations was matched to PATCH .../invitations/{invitation_id}")
	}
}
