package server

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows"
)

func TestInvitePage(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("page@acme.test")
	inv.FirstName = `<script>alert(1)</script>`
	h.store.put(inv)
	token := h.srv.signer.Sign(inv.ID, 1)

	w := h.do("GET", "/invite?token="+token, "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "style-src 'nonce-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers = %v", w.Header())
	}
	page := w.Body.String()
	for _, want := range []string{`action="/invite/accept"`, `action="/invite/decline"`, `name="password"`, `name="accept_terms"`, "Acme", "analytics", "editor"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "http://") && strings.Contains(page, "src=") {
		t.Error("page is not self-contained or not escaped")
	}

	// An existing user sees no password field.
	h.store.users[uuid.New()] = store.User{Email: "page@acme.test"}
	if page := h.do("GET", "/invite?token="+token, "").Body.String(); strings.Contains(page, `name="password"`) {
		t.Error("password field for an existing user")
	}

	decodePage(t, h.do("GET", "/invite?token=forged", ""), 404, "not valid")
	inv.Status = "expired"
	h.store.put(inv)
	decodePage(t, h.do("GET", "/invite?token="+token, ""), 410, "expired")
}

func TestInvitePageForms(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("form@acme.test")
	token := h.srv.signer.Sign(inv.ID, 1)
	h.temporal.onUpdate = func(o updateOpts) (any, error) {
		if o.UpdateName == workflows.UpdateDecline {
			return workflows.State{Status: workflows.StatusDeclined}, nil
		}
		return workflows.AcceptResult{UserID: uuid.NewString()}, nil
	}
	post := func(path string, form url.Values) (int, string) {
		w := h.do("POST", path, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		return w.Code, w.Body.String()
	}

	code, page := post("/invite/accept", url.Values{"token": {token}, "password": {"Str0ng-Password"}, "password_confirm": {"Str0ng-Passw0rd"}, "accept_terms": {"on"}})
	if code != 422 || !strings.Contains(page, "passwords differ") || !strings.Contains(page, `name="password"`) {
		t.Errorf("mismatch: %d", code)
	}
	code, page = post("/invite/accept", url.Values{"token": {token}, "password": {"weakweakweak"}, "password_confirm": {"weakweakweak"}, "accept_terms": {"on"}})
	if code != 422 || !strings.Contains(page, "upper-case") {
		t.Errorf("policy: %d %s", code, page)
	}
	code, page = post("/invite/accept", url.Values{"token": {token}, "password": {"Str0ng-Password"}})
	if code != 422 || !strings.Contains(page, "Terms of Service") {
		t.Errorf("terms: %d", code)
	}
	if code, page = post("/invite/accept", url.Values{"token": {token}, "password": {"Str0ng-Password"}, "password_confirm": {"Str0ng-Password"}, "accept_terms": {"on"}}); code != 200 || !strings.Contains(page, "Welcome") {
		t.Errorf("accept: %d %s", code, page)
	}
	if code, page = post("/invite/decline", url.Values{"token": {token}}); code != 200 || !strings.Contains(page, "declined") {
		t.Errorf("decline: %d %s", code, page)
	}
	if code, _ = post("/invite/decline", url.Values{"token": {"nope"}}); code != 404 {
		t.Errorf("bad token: %d", code)
	}
}

func decodePage(t *testing.T, w *httptest.ResponseRecorder, status int, text string) {
	t.Helper()
	if w.Code != status || !strings.Contains(w.Body.String(), text) || w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("page: %d, want %d with %q: %s", w.Code, status, text, w.Body)
	}
}
