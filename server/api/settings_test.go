package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/accountpolicy"
)

// settingsJSON is a put-settings body of two lists.
func settingsJSON(domains, origins []string) string {
	b, _ := json.Marshal(map[string][]string{"allowed_email_domains": domains, "allowed_redirect_origins": origins})
	return string(b)
}

func TestSettingsDefaultAndRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/settings")

	// Before any put: both lists empty, as arrays (never null).
	w := h.api("GET", path, "")
	if body := strings.TrimSpace(w.Body.String()); w.Code != 200 || body != `{"allowed_email_domains":[],"allowed_redirect_origins":[]}` {
		t.Fatalf("default settings: %d %s", w.Code, body)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}

	// A put answers the lists normalised: trimmed, lower-cased, IDN in ASCII form, no trailing
	// dot, the default port and a lone "/" dropped, entries equal once normalised counted once.
	put := settingsJSON(
		[]string{" Acme.COM ", "bücher.example", "xn--bcher-kva.example", "acme.com.", "eu.acme.com"},
		[]string{"https://App.Acme.com:443/", "http://localhost:3000", "https://app.acme.com", "https://BÜCHER.example"})
	want := accountpolicy.Settings{
		AllowedEmailDomains:    []string{"acme.com", "xn--bcher-kva.example", "eu.acme.com"},
		AllowedRedirectOrigins: []string{"https://app.acme.com", "http://localhost:3000", "https://xn--bcher-kva.example"},
	}
	got := decodeJSON[accountpolicy.Settings](t, h.api("PUT", path, put), 200)
	if !slices.Equal(got.AllowedEmailDomains, want.AllowedEmailDomains) || !slices.Equal(got.AllowedRedirectOrigins, want.AllowedRedirectOrigins) {
		t.Fatalf("put answered %+v, want %+v", got, want)
	}
	got = decodeJSON[accountpolicy.Settings](t, h.api("GET", path, ""), 200)
	if !slices.Equal(got.AllowedEmailDomains, want.AllowedEmailDomains) || !slices.Equal(got.AllowedRedirectOrigins, want.AllowedRedirectOrigins) {
		t.Fatalf("get after the put = %+v, want %+v", got, want)
	}
	// What the create path reads is the same.
	st, err := h.srv.accountSettings(t.Context(), h.account.ID)
	if err != nil || !slices.Equal(st.AllowedEmailDomains, want.AllowedEmailDomains) ||
		!st.EmailAllowed("jane@BÜCHER.example") || !st.RedirectAllowed("https://app.acme.com/welcome") {
		t.Fatalf("accountSettings = %+v, %v", st, err)
	}

	// A put replaces both lists; empty lists are values.
	w = h.api("PUT", path, `{"allowed_email_domains":[],"allowed_redirect_origins":[]}`)
	if body := strings.TrimSpace(w.Body.String()); w.Code != 200 || body != `{"allowed_email_domains":[],"allowed_redirect_origins":[]}` {
		t.Fatalf("clearing put: %d %s", w.Code, body)
	}
	if body := strings.TrimSpace(h.api("GET", path, "").Body.String()); body != `{"allowed_email_domains":[],"allowed_redirect_origins":[]}` {
		t.Fatalf("after clearing: %s", body)
	}

	// Settings are per account.
	other := newHarness(t)
	if body := strings.TrimSpace(other.api("GET", other.accountPath("/settings"), "").Body.String()); body != `{"allowed_email_domains":[],"allowed_redirect_origins":[]}` {
		t.Fatalf("another account's settings: %s", body)
	}
	decodeProblem(t, h.api("GET", "/v1/accounts/"+uuid.NewString()+"/settings", ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("PUT", "/v1/accounts/"+uuid.NewString()+"/settings", put), 404, contract.CodeNotFound)
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.accountPath("/settings")
	good := accountpolicy.Settings{AllowedEmailDomains: []string{"acme.com"}, AllowedRedirectOrigins: []string{"https://app.acme.com"}}
	decodeJSON[accountpolicy.Settings](t, h.api("PUT", path, settingsJSON(good.AllowedEmailDomains, good.AllowedRedirectOrigins)), 200)

	many := make([]string, maxSettingsEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("d%d.acme.com", i)
	}
	hundred := many[:maxSettingsEntries]
	for _, tc := range []struct {
		name, body string
		fields     []string // each named in errors[], and only these
		message    string   // in the first field's message
	}{
		{"missing domains", `{"allowed_redirect_origins":[]}`, []string{"allowed_email_domains"}, "required"},
		{"missing origins", `{"allowed_email_domains":[]}`, []string{"allowed_redirect_origins"}, "required"},
		{"both missing", `{}`, []string{"allowed_email_domains", "allowed_redirect_origins"}, "required"},
		{"null domains", `{"allowed_email_domains":null,"allowed_redirect_origins":[]}`, []string{"allowed_email_domains"}, "required"},
		{"not a list", `{"allowed_email_domains":"acme.com","allowed_redirect_origins":[]}`, []string{"allowed_email_domains"}, "array"},
		{"not strings", `{"allowed_email_domains":[1],"allowed_redirect_origins":[]}`, []string{"allowed_email_domains[0]"}, ""},
		{"unknown field", `{"allowed_email_domains":[],"allowed_redirect_origins":[],"extra":1}`, []string{"extra"}, "unknown"},
		{"wildcard", settingsJSON([]string{"acme.com", "globex.example", "*.acme.com"}, []string{}), []string{"allowed_email_domains[2]"}, "subdomains"},
		{"IP domain", settingsJSON([]string{"10.0.0.1"}, []string{}), []string{"allowed_email_domains[0]"}, "IP address"},
		{"empty label", settingsJSON([]string{"acme..com"}, []string{}), []string{"allowed_email_domains[0]"}, "empty labels"},
		{"empty domain", settingsJSON([]string{" "}, []string{}), []string{"allowed_email_domains[0]"}, "empty"},
		{"origin path", settingsJSON([]string{}, []string{"https://app.acme.com/welcome"}), []string{"allowed_redirect_origins[0]"}, "origin only"},
		{"origin scheme", settingsJSON([]string{}, []string{"https://app.acme.com", "javascript:alert(1)"}), []string{"allowed_redirect_origins[1]"}, "https://"},
		{"origin without scheme", settingsJSON([]string{}, []string{"app.acme.com"}), []string{"allowed_redirect_origins[0]"}, "https://"},
		{"origin userinfo", settingsJSON([]string{}, []string{"https://me@app.acme.com"}), []string{"allowed_redirect_origins[0]"}, "user name"},
		{"origin backslash", settingsJSON([]string{}, []string{`https:\\evil.example`}), []string{"allowed_redirect_origins[0]"}, "backslash"},
		{"several bad", settingsJSON([]string{"ok.example", "a_b.example"}, []string{"ftp://x.example", "https://ok.example", "https://x.example?q"}),
			[]string{"allowed_email_domains[1]", "allowed_redirect_origins[0]", "allowed_redirect_origins[2]"}, "domain name"},
		{"too many domains", settingsJSON(many, []string{}), []string{"allowed_email_domains"}, "at most 100"},
		{"too many origins", settingsJSON([]string{}, slices.Repeat([]string{"https://app.acme.com"}, maxSettingsEntries+1)),
			[]string{"allowed_redirect_origins"}, "at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decodeProblem(t, h.with(t).api("PUT", path, tc.body), 422, contract.CodeValidation)
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Fatalf("errors name %v, want %v: %+v", fields, tc.fields, p.Errors)
			}
			if !strings.Contains(p.Errors[0].Message, tc.message) || !strings.Contains(p.Detail, tc.fields[0]) {
				t.Fatalf("problem %+v lacks %q", p, tc.message)
			}
		})
	}
	// A refused put changes nothing.
	got := decodeJSON[accountpolicy.Settings](t, h.api("GET", path, ""), 200)
	if !slices.Equal(got.AllowedEmailDomains, good.AllowedEmailDomains) || !slices.Equal(got.AllowedRedirectOrigins, good.AllowedRedirectOrigins) {
		t.Fatalf("settings after refused puts = %+v", got)
	}
	// Exactly 100 entries each are allowed (the origins collapse to one).
	got = decodeJSON[accountpolicy.Settings](t, h.api("PUT", path, settingsJSON(hundred, slices.Repeat([]string{"https://app.acme.com"}, maxSettingsEntries))), 200)
	if len(got.AllowedEmailDomains) != maxSettingsEntries || len(got.AllowedRedirectOrigins) != 1 {
		t.Fatalf("100 entries each: %d domains, %d origins", len(got.AllowedEmailDomains), len(got.AllowedRedirectOrigins))
	}
	decodeProblem(t, h.api("PUT", path, "not json"), 422, contract.CodeValidation)
	decodeProblem(t, h.api("PUT", path, settingsJSON([]string{}, []string{}), "Content-Type", "text/plain"), 415, contract.CodeUnsupportedMediaType)
	decodeProblem(t, h.api("POST", path, settingsJSON([]string{}, []string{})), 405, contract.CodeMethodNotAllowed)
}

// A token scoped to the account reads and writes its own settings; on another account's it is
// refused (403, whether that account exists or not) and the other account's settings stay.
func TestSettingsTenancy(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	theirs := settingsJSON([]string{"other.example"}, []string{"https://other.example"})
	decodeJSON[accountpolicy.Settings](t, other.api("PUT", other.accountPath("/settings"), theirs), 200)

	scoped := func(method, path, body string) *httptest.ResponseRecorder {
		return h.do(method, path, body, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json")
	}
	for _, account := range []string{other.account.ID.String(), uuid.NewString()} {
		path := "/v1/accounts/" + account + "/settings"
		decodeProblem(t, scoped("GET", path, ""), 403, contract.CodeForbidden)
		decodeProblem(t, scoped("PUT", path, settingsJSON([]string{"sneaky.example"}, []string{})), 403, contract.CodeForbidden)
	}
	got := decodeJSON[accountpolicy.Settings](t, other.api("GET", other.accountPath("/settings"), ""), 200)
	if !slices.Equal(got.AllowedEmailDomains, []string{"other.example"}) || !slices.Equal(got.AllowedRedirectOrigins, []string{"https://other.example"}) {
		t.Fatalf("the other account's settings changed: %+v", got)
	}

	// Its own account: read, write, read back.
	path := h.accountPath("/settings")
	if w := scoped("GET", path, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"allowed_email_domains":[]`) {
		t.Fatalf("scoped get: %d %s", w.Code, w.Body)
	}
	mine := decodeJSON[accountpolicy.Settings](t, scoped("PUT", path, settingsJSON([]string{"ACME.test"}, []string{"https://portal.acme.test:443"})), 200)
	if !slices.Equal(mine.AllowedEmailDomains, []string{"acme.test"}) || !slices.Equal(mine.AllowedRedirectOrigins, []string{"https://portal.acme.test"}) {
		t.Fatalf("scoped put answered %+v", mine)
	}
	back := decodeJSON[accountpolicy.Settings](t, scoped("GET", path, ""), 200)
	if !slices.Equal(back.AllowedEmailDomains, mine.AllowedEmailDomains) || !slices.Equal(back.AllowedRedirectOrigins, mine.AllowedRedirectOrigins) {
		t.Fatalf("scoped get after its put = %+v", back)
	}
	// Without a token: 401.
	decodeProblem(t, h.do("GET", path, ""), 401, contract.CodeUnauthorized)
}
