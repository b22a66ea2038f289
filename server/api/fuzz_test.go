package api

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Fuzz targets for every request body the API decodes (FuzzCreateInvitationBody, in
// requests_test.go, has the invitation's; FuzzCodecBody, in codec_test.go, the codec's). Each
// must never panic, and must refuse with a 422 that names a field. (FuzzBearerToken is
// server/bearer's.)

func checkRefusal(t *testing.T, p *problem.Problem) {
	t.Helper()
	if p.Status != 422 || p.Code != contract.CodeValidation || len(p.Errors) == 0 || p.Errors[0].Field == "" {
		t.Fatalf("refusal without a named field: %+v", p)
	}
}

func FuzzNameBody(f *testing.F) {
	for _, s := range []string{`{"name":"Acme"}`, `{"name":""}`, `{"name":"a\u0000b"}`, `{"name":"Acme","name":"B"}`,
		`{"Name":"x"}`, `{"name":["x"]}`, "{\"name\":\"\xff\"}", `{"name":"` + strings.Repeat("é", 101) + `"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		name, p := decodeName(data)
		if p != nil {
			checkRefusal(t, p)
			return
		}
		if name == "" || !plainText(name) || len([]rune(name)) > maxNameRunes || strings.TrimSpace(name) != name {
			t.Fatalf("accepted name %q", name)
		}
	})
}

func FuzzSubscriptionBody(f *testing.F) {
	for _, s := range []string{
		`{"application":"App","name":"Plan","seats":5,"roles":["viewer","editor"]}`,
		`{"application":"App","name":"Plan","seats":1e3,"roles":["a"]}`,
		`{"application":"App","name":"Plan","seats":99999999999999999999,"roles":[]}`,
		`{"application":"App","name":"Plan","seats":-1,"roles":["a","a"]}`,
		`{"roles":[` + strings.Repeat(`"r",`, 60) + `"r"]}`, `{"seats":"3"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, p := decodeSubscription(data)
		if p != nil {
			checkRefusal(t, p)
			return
		}
		if s.Seats < 1 || s.Seats > maxSeats || len(s.Roles) == 0 || s.Application == "" || s.Name == "" {
			t.Fatalf("accepted %+v", s)
		}
		seen := map[string]bool{}
		for _, r := range s.Roles {
			if r == "" || seen[r] || !plainText(r) {
				t.Fatalf("accepted roles %q", s.Roles)
			}
			seen[r] = true
		}
	})
}

func FuzzAcceptBody(f *testing.F) {
	for _, s := range []string{
		`{"token":"abc","password":"Correct-Horse-42","accept_terms":true}`, `{"token":null,"accept_terms":"yes"}`,
		`{"token":"x","password":1}`, `{"token":"x","remember_me":true}`, `{"token":"x"} {}`, "{\"password\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b acceptBody
		if p := jsonbody.Decode(data, &b); p != nil {
			checkRefusal(t, p)
		}
	})
}

func FuzzDeclineBody(f *testing.F) {
	for _, s := range []string{`{"token":"abc"}`, `{"token":`, `{"token":["a"]}`, `{"TOKEN":"a"}`, `"abc"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b declineBody
		if p := jsonbody.Decode(data, &b); p != nil {
			checkRefusal(t, p)
		}
	})
}

// FuzzInviteeRequests sends arbitrary bodies (JSON and forms) and query strings to the invitee
// routes, through the whole router and the rate limiter, each about an invitation of its own on
// the real stack: no answer may be a 500.
func FuzzInviteeRequests(f *testing.F) {
	f.Add("/v1/invitations/accept", "application/json", `{"token":"TOKEN","password":"Correct-Horse-42","accept_terms":true}`)
	f.Add("/v1/invitations/decline", "application/json", `{"token":"TOKEN"}`)
	f.Add("/v1/invitations/preview", "", "token=TOKEN")
	f.Add("/invite", "", "token=TOKEN")
	f.Add("/invite/accept", "application/x-www-form-urlencoded", "token=TOKEN&password=Correct-Horse-42&accept_terms=on")
	f.Add("/invite/decline", "application/x-www-form-urlencoded", "token=%zz&token=TOKEN")
	f.Add("/v1/invitations/accept", "text/plain", "\x00\xff")
	f.Add("/v1/password-resets", "application/json", `{"email":"someone@example.test"}`)
	f.Add("/v1/password-resets/confirm", "application/json", `{"token":"RESET","password":"Correct-Horse-43"}`)
	f.Add("/reset", "", "token=RESET")
	f.Add("/reset/request", "application/x-www-form-urlencoded", "email=a%40b.test")
	f.Add("/reset/confirm", "application/x-www-form-urlencoded", "token=RESET&password=x&password_confirm=y")
	shared := newHarness(f, withSeats(maxSeats)) // every input holds a seat
	shared.limited(rl(1000), rl(1000), rl(0))
	// A live reset link of a user (issued in Postgres; no workflow waits for its confirm).
	resetEmail := uniqueEmail("fuzz-reset")
	shared.member(resetEmail)
	issued, err := shared.srv.store.IssuePasswordReset(context.Background(), resetEmail, time.Hour)
	if err != nil || !issued.Found {
		f.Fatalf("issue a reset link: %+v, %v", issued, err)
	}
	resetToken := shared.srv.signer.PasswordReset().Sign(issued.UserID, issued.Generation)
	f.Fuzz(func(t *testing.T, path, contentType, body string) {
		if !inviteeRoutes[path] {
			return
		}
		h := shared.with(t)
		h.responsesOnly = true // random requests: only the answers are held to the document
		inv := h.pending(uniqueEmail("fuzz"))
		body = strings.ReplaceAll(strings.ReplaceAll(body, "TOKEN", h.token(inv)), "RESET", resetToken)
		method := "POST"
		if path == "/v1/invitations/preview" || path == "/invite" || path == "/reset" {
			method = "GET"
			q, err := url.ParseQuery(body)
			if err != nil {
				return
			}
			path += "?" + q.Encode()
			body = ""
		}
		w := h.from("203.0.113.1:1", method, path, body, "Content-Type", contentType)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
	})
}
