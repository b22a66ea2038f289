package e2e

import (
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestMalformedInput: hostile and broken requests over every route answer a 4xx
// application/problem+json with the expected code, never a 5xx or a panic (send fails the
// test on any 5xx), and change nothing.
func TestMalformedInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	email := unique("Target")
	inv := f.createInvitation(t, portal(), email)
	token := tokenOf(t, *inv.InviteURL)

	ten := strings.Repeat("x", 10_000)
	manyIDs := make([]string, 10_000)
	for i := range manyIDs {
		manyIDs[i] = `"` + uuid.NewString() + `"`
	}
	manyRoles := `["` + strings.Repeat(`r","`, 9_999) + `r"]`
	invite := func(fields string) string {
		return `{"email":"` + unique("Mal") + `","first_name":"Jane","last_name":"Doe","subscription_id":"` +
			f.SubscriptionID + `","role":"editor"` + fields + `}`
	}
	sub := func(seats string) string {
		return `{"application":"App","name":"Plan","seats":` + seats + `,"roles":["viewer"]}`
	}

	const (
		jsonCT = "application/json"
		noCT   = "-"
	)
	accounts, subs, groups, invs := "/v1/accounts", f.path("/subscriptions"), f.path("/groups"), f.path("/invitations")
	acceptPath, declinePath := "/v1/invitations/accept", "/v1/invitations/decline"
	type row struct {
		name         string
		method, path string
		ctype        string // "" = application/json when there is a body; noCT = no header
		body         string
		header       []string
		status       int
		code         string
	}
	rows := []row{
		// Bodies that are not one JSON object.
		{"escaped NUL in name", "POST", accounts, "", `{"name":"a\u0000b"}`, nil, 422, "validation_failed"},
		{"raw NUL in a string", "POST", accounts, "", "{\"name\":\"a\x00b\"}", nil, 422, "validation_failed"},
		{"raw NUL body", "POST", accounts, "", "\x00", nil, 422, "validation_failed"},
		{"invalid UTF-8", "POST", accounts, "", "{\"name\":\"\xff\xfe\"}", nil, 422, "validation_failed"},
		{"lone surrogate", "POST", accounts, "", `{"name":"\ud800"}`, nil, 422, "validation_failed"},
		{"null body", "POST", accounts, "", `null`, nil, 422, "validation_failed"},
		{"array body", "POST", accounts, "", `[{"name":"x"}]`, nil, 422, "validation_failed"},
		{"string body", "POST", accounts, "", `"Acme"`, nil, 422, "validation_failed"},
		{"number body", "POST", accounts, "", `42`, nil, 422, "validation_failed"},
		{"empty body", "POST", accounts, "", ``, nil, 422, "validation_failed"},
		{"empty body without content type", "POST", accounts, noCT, ``, nil, 422, "validation_failed"},
		{"whitespace body", "POST", accounts, "", " \n\t ", nil, 422, "validation_failed"},
		{"byte order mark", "POST", accounts, "", "\xef\xbb\xbf{\"name\":\"Acme\"}", nil, 422, "validation_failed"},
		{"trailing garbage", "POST", accounts, "", `{"name":"Acme"}garbage`, nil, 422, "validation_failed"},
		{"deep arrays", "POST", accounts, "", strings.Repeat("[", 50_000) + strings.Repeat("]", 50_000), nil, 422, "validation_failed"},
		{"deep objects", "POST", accounts, "", strings.Repeat(`{"name":`, 10_000) + `"x"` + strings.Repeat("}", 10_000), nil, 422, "validation_failed"},
		{"null name", "POST", accounts, "", `{"name":null}`, nil, 422, "validation_failed"},
		{"10k-char name", "POST", accounts, "", `{"name":"` + ten + `"}`, nil, 422, "validation_failed"},
		{"name with LF", "POST", accounts, "", `{"name":"Acme\nInc"}`, nil, 422, "validation_failed"},
		{"text/plain", "POST", accounts, "text/plain", `{"name":"Acme"}`, nil, 415, "unsupported_media_type"},
		{"form encoded", "POST", accounts, "application/x-www-form-urlencoded", `name=Acme`, nil, 415, "unsupported_media_type"},
		{"garbage content type", "POST", accounts, ";;;", `{"name":"Acme"}`, nil, 415, "unsupported_media_type"},

		// Subscriptions and groups.
		{"seats 1e400", "POST", subs, "", sub("1e400"), nil, 422, "validation_failed"},
		{"seats beyond int64", "POST", subs, "", sub("99999999999999999999999"), nil, 422, "validation_failed"},
		{"negative seats", "POST", subs, "", sub("-5"), nil, 422, "validation_failed"},
		{"float seats", "POST", subs, "", sub("2.5"), nil, 422, "validation_failed"},
		{"null seats", "POST", subs, "", sub("null"), nil, 422, "validation_failed"},
		{"10k roles", "POST", subs, "", `{"application":"App","name":"Plan","seats":1,"roles":` + manyRoles + `}`, nil, 422, "validation_failed"},
		{"null role", "POST", subs, "", `{"application":"App","name":"Plan","seats":1,"roles":[null]}`, nil, 422, "validation_failed"},
		{"all null subscription", "POST", subs, "", `{"application":null,"name":null,"seats":null,"roles":null}`, nil, 422, "validation_failed"},
		{"NUL in role", "POST", subs, "", `{"application":"App","name":"Plan","seats":1,"roles":["a\u0000"]}`, nil, 422, "validation_failed"},
		{"line separator group", "POST", groups, "", `{"name":"\u2028"}`, nil, 422, "validation_failed"},
		{"blank group", "POST", groups, "", `{"name":"   "}`, nil, 422, "validation_failed"},
		{"group as array", "POST", groups, "", `[]`, nil, 422, "validation_failed"},

		// Invitations.
		{"10k group ids", "POST", invs, "", invite(`,"group_ids":[` + strings.Join(manyIDs, ",") + `]`), nil, 422, "validation_failed"},
		{"null group id", "POST", invs, "", invite(`,"group_ids":[null]`), nil, 422, "validation_failed"},
		{"all null invitation", "POST", invs, "", `{"email":null,"first_name":null,"last_name":null,"subscription_id":null,"role":null,"group_ids":null,"inviter":null,"user_id":null,"phone":null}`, nil, 422, "validation_failed"},
		{"null inviter fields", "POST", invs, "", invite(`,"inviter":{"name":null,"email":null}`), nil, 422, "validation_failed"},
		{"email with display name", "POST", invs, "", `{"email":"Jane Doe <jane@example.test>","first_name":"J","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"email with CRLF", "POST", invs, "", `{"email":"jane@example.test\r\nBcc: all@example.test","first_name":"J","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"email with NUL", "POST", invs, "", `{"email":"jane\u0000@example.test","first_name":"J","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"300-char email", "POST", invs, "", `{"email":"` + strings.Repeat("a", 290) + `@example.test","first_name":"J","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"10k-char first name", "POST", invs, "", `{"email":"` + unique("Long") + `","first_name":"` + ten + `","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"bidi override in role", "POST", invs, "", `{"email":"` + unique("Bidi") + `","first_name":"J","last_name":"D","subscription_id":"` + f.SubscriptionID + `","role":"edi\u202etor"}`, nil, 422, "validation_failed"},
		{"path in user_id", "POST", invs, "", `{"user_id":"../../etc/passwd","subscription_id":"` + f.SubscriptionID + `","role":"editor"}`, nil, 422, "validation_failed"},
		{"SQL in subscription_id", "POST", invs, "", `{"email":"` + unique("Sql") + `","first_name":"J","last_name":"D","subscription_id":"' OR 1=1 --","role":"editor"}`, nil, 422, "validation_failed"},
		{"10k-digit phone", "POST", invs, "", invite(`,"phone":"` + strings.Repeat("5", 10_000) + `"`), nil, 422, "validation_failed"},
		{"huge number for a string", "POST", invs, "", invite(`,"phone":1e999999`), nil, 422, "validation_failed"},
		{"invitation as array", "POST", invs, "", `[` + invite("") + `]`, nil, 422, "validation_failed"},
		{"300-char idempotency key", "POST", invs, "", invite(""), []string{"Idempotency-Key", strings.Repeat("k", 300)}, 422, "validation_failed"},
		{"invitation as text/plain", "POST", invs, "text/plain", invite(""), nil, 415, "unsupported_media_type"},

		// Query strings.
		{"limit beyond int64", "GET", invs + "?limit=99999999999999999999", "", "", nil, 422, "validation_failed"},
		{"negative limit", "GET", invs + "?limit=-1", "", "", nil, 422, "validation_failed"},
		{"limit in exponent form", "GET", invs + "?limit=1e1", "", "", nil, 422, "validation_failed"},
		{"NUL status", "GET", invs + "?status=%00", "", "", nil, 422, "validation_failed"},
		{"status with NUL suffix", "GET", invs + "?status=pending%00", "", "", nil, 422, "validation_failed"},
		{"NUL email filter", "GET", invs + "?email=%00", "", "", nil, 422, "validation_failed"},
		{"invalid UTF-8 email filter", "GET", invs + "?email=%ff%fe", "", "", nil, 422, "validation_failed"},
		{"10k-char email filter", "GET", invs + "?email=" + ten, "", "", nil, 422, "validation_failed"},
		{"binary cursor", "GET", invs + "?cursor=%ff%fe%00", "", "", nil, 422, "validation_failed"},
		{"10k-char cursor", "GET", invs + "?cursor=" + ten, "", "", nil, 422, "validation_failed"},

		// Path segments.
		{"NUL account id", "GET", "/v1/accounts/%00/users", "", "", nil, 404, "not_found"},
		{"8k-char account id", "GET", "/v1/accounts/" + strings.Repeat("a", 8_000) + "/users", "", "", nil, 404, "not_found"},
		{"NUL invitation id", "GET", invs + "/%00", "", "", nil, 404, "not_found"},
		{"id with NUL suffix", "GET", invs + "/" + inv.ID + "%00", "", "", nil, 404, "not_found"},
		{"NUL id on revoke", "POST", invs + "/%00/revoke", "", "", nil, 404, "not_found"},
		{"8k-char id on link", "GET", invs + "/" + strings.Repeat("9", 8_000) + "/link", "", "", nil, 404, "not_found"},
		{"dot-dot subscription", "GET", subs + "/%2e%2e", "", "", nil, 404, "not_found"},
		{"odd method", "PROPFIND", accounts, "", "", nil, 405, "method_not_allowed"},

		// Invitee routes.
		{"NUL token", "GET", "/v1/invitations/preview?token=%00", "", "", nil, 404, "token_invalid"},
		{"10k-char token", "GET", "/v1/invitations/preview?token=" + ten, "", "", nil, 404, "token_invalid"},
		{"no token", "GET", "/v1/invitations/preview", "", "", nil, 404, "token_invalid"},
		{"token with NUL suffix", "GET", "/v1/invitations/preview?token=" + token + "%00", "", "", nil, 404, "token_invalid"},
		{"null accept", "POST", acceptPath, "", `{"token":null,"password":null,"accept_terms":null}`, nil, 404, "token_invalid"},
		{"token array", "POST", acceptPath, "", `{"token":["` + token + `"]}`, nil, 422, "validation_failed"},
		{"terms as number", "POST", acceptPath, "", `{"token":"` + token + `","accept_terms":1}`, nil, 422, "validation_failed"},
		{"accept as array", "POST", acceptPath, "", `[{"token":"` + token + `"}]`, nil, 422, "validation_failed"},
		{"accept empty", "POST", acceptPath, "", ``, nil, 422, "validation_failed"},
		{"decline as array", "POST", declinePath, "", `[]`, nil, 422, "validation_failed"},
		{"decline unknown field", "POST", declinePath, "", `{"token":"` + token + `","reason":"spam"}`, nil, 422, "validation_failed"},
		{"decline token number", "POST", declinePath, "", `{"token":123}`, nil, 422, "validation_failed"},
		{"decline text/plain", "POST", declinePath, "text/plain", `{"token":"` + token + `"}`, nil, 415, "unsupported_media_type"},
		{"decline invalid UTF-8", "POST", declinePath, "", "{\"token\":\"\xc3\x28\"}", nil, 422, "validation_failed"},

		// Headers.
		{"10k-char bearer", "GET", invs, "", "", []string{"Authorization", "Bearer " + ten}, 401, "unauthorized"},
		{"bearer of symbols", "GET", invs, "", "", []string{"Authorization", "Bearer !!!$$$***"}, 401, "unauthorized"},
	}
	if len(rows) < 40 {
		t.Fatalf("only %d rows", len(rows))
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var body io.Reader
			if r.body != "" || r.method == "POST" {
				body = strings.NewReader(r.body)
			}
			req := portal().request(t, r.method, r.path, body)
			switch r.ctype {
			case noCT:
			case "":
				if body != nil {
					req.Header.Set("Content-Type", jsonCT)
				}
			default:
				req.Header.Set("Content-Type", r.ctype)
			}
			for i := 0; i+1 < len(r.header); i += 2 {
				req.Header.Set(r.header[i], r.header[i+1])
			}
			res := send(t, req)
			if res.Status != r.status {
				t.Fatalf("status %d, want %d; body %.300s", res.Status, r.status, res.Body)
			}
			res.expectProblem(t, r.status, r.code)
		})
	}

	// The hosted page answers HTML, but the same rule holds: a 4xx, never a 5xx.
	for _, p := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"page without token", "GET", "/invite", "", "", 404},
		{"page with NUL token", "GET", "/invite?token=%00", "", "", 404},
		{"page with 10k token", "GET", "/invite?token=" + ten, "", "", 404},
		{"page accept, broken form", "POST", "/invite/accept", "application/x-www-form-urlencoded", "token=%zz", 422},
		{"page accept, JSON body", "POST", "/invite/accept", "application/json", `{"token":"` + token + `"}`, 404},
		{"page decline, NUL token", "POST", "/invite/decline", "application/x-www-form-urlencoded", "token=%00", 404},
	} {
		req := invitee().request(t, p.method, p.path, strings.NewReader(p.body))
		if p.ctype != "" {
			req.Header.Set("Content-Type", p.ctype)
		}
		res := send(t, req)
		if res.Status != p.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: status %d (%s), want %d text/html", p.name, res.Status, res.Header.Get("Content-Type"), p.status)
		}
	}

	// Nothing of the above changed anything.
	got := f.invitation(t, portal(), inv.ID)
	if got.Status != "pending" {
		t.Fatalf("the target invitation is %s", got.Status)
	}
	if l := f.list(t, ""); len(l.Items) != 1 {
		t.Fatalf("%d invitations after malformed requests, want 1", len(l.Items))
	}
	if s := f.subscription(t); s.SeatsReserved != 1 || s.SeatsUsed != 0 {
		t.Fatalf("subscription %+v", s)
	}
	portal().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expect(t, 200)
	if st := previewStatus(t, token); st != "pending" {
		t.Fatalf("preview status %s", st)
	}
}
