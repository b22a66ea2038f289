package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

const (
	subID   = "0190c1a2-3b4c-7d5e-8f60-123456789abc"
	groupA  = "0190c1a2-3b4c-7d5e-8f60-0000000000aa"
	groupB  = "0190c1a2-3b4c-7d5e-8f60-0000000000bb"
	userID1 = "0190c1a2-3b4c-7d5e-8f60-00000000beef"
)

// validInvitation is a create-invitation body that passes; cases change one field.
func validInvitation() map[string]any {
	return map[string]any{
		"email": "jane@acme.test", "first_name": "Jane", "last_name": "Doe",
		"subscription_id": subID, "role": "editor",
	}
}

func with(changes map[string]any) []byte {
	body := validInvitation()
	for k, v := range changes {
		if v == nil {
			delete(body, k)
			continue
		}
		body[k] = v
	}
	data, _ := json.Marshal(body)
	return data
}

// rawNull marks a field to be sent as JSON null (nil in a change map deletes it).
type rawNull struct{}

func (rawNull) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

func TestDecodeInvitationAccepts(t *testing.T) {
	for name, body := range map[string][]byte{
		"new person":       with(nil),
		"trimmed":          with(map[string]any{"email": "  jane@acme.test ", "first_name": " Jane "}),
		"phone":            with(map[string]any{"phone": "+1 (555) 010-0100"}),
		"groups":           with(map[string]any{"group_ids": []string{groupA, groupB, groupA}}),
		"inviter":          with(map[string]any{"inviter": map[string]string{"name": "Ada Admin", "email": "ada@acme.test"}}),
		"null inviter":     with(map[string]any{"inviter": rawNull{}}),
		"null groups":      with(map[string]any{"group_ids": rawNull{}}),
		"unicode names":    with(map[string]any{"first_name": "Zoë", "last_name": "O’Brien-Łukasiewicz", "email": "zoë@exämple.de"}),
		"existing user":    []byte(`{"user_id":"` + userID1 + `","subscription_id":"` + subID + `","role":"viewer"}`),
		"100-rune name":    with(map[string]any{"first_name": strings.Repeat("é", 100)}),
		"upper-case uuids": with(map[string]any{"subscription_id": strings.ToUpper(subID)}),
	} {
		t.Run(name, func(t *testing.T) {
			n, p := decodeInvitation(body)
			if p != nil {
				t.Fatalf("refused: %+v", p)
			}
			if n.SubscriptionID.String() != subID {
				t.Errorf("subscription_id = %s", n.SubscriptionID)
			}
		})
	}

	n, _ := decodeInvitation(with(map[string]any{"email": " jane@acme.test ", "group_ids": []string{groupA, groupB, groupA}}))
	if n.Email != "jane@acme.test" || len(n.GroupIDs) != 2 || n.GroupFields[1] != "group_ids[1]" {
		t.Errorf("normalised = %+v", n)
	}
}

func TestDecodeInvitationRefuses(t *testing.T) {
	long := strings.Repeat("a", 101)
	manyGroups := make([]string, 101)
	for i := range manyGroups {
		manyGroups[i] = groupA
	}
	tenThousand := make([]string, 10_000)
	for i := range tenThousand {
		tenThousand[i] = uuid.NewString()
	}
	cases := []struct {
		name  string
		body  []byte
		field string
	}{
		{"empty body", []byte(""), "body"},
		{"white space", []byte(" \n "), "body"},
		{"null body", []byte("null"), "body"},
		{"array body", []byte("[]"), "body"},
		{"string body", []byte(`"x"`), "body"},
		{"truncated", []byte(`{"email":"a@b.c"`), "body"},
		{"malformed", []byte(`{"email":}`), "body"},
		{"trailing data", append(with(nil), []byte(`{}`)...), "body"},
		{"invalid utf-8", []byte("{\"first_name\":\"J\xffne\"}"), "body"},
		{"unknown field", with(map[string]any{"nickname": "JJ"}), "nickname"},
		{"case-changed key", []byte(`{"EMAIL":"jane@acme.test"}`), "EMAIL"},
		{"duplicate key", []byte(`{"role":"a","role":"b"}`), "role"},
		{"unknown nested field", with(map[string]any{"inviter": map[string]string{"name": "A", "email": "a@b.c", "x": "y"}}), "inviter.x"},
		{"email missing", with(map[string]any{"email": nil}), "email"},
		{"email null", with(map[string]any{"email": rawNull{}}), "email"},
		{"email number", with(map[string]any{"email": 42}), "email"},
		{"email display name", with(map[string]any{"email": "Jane <jane@acme.test>"}), "email"},
		{"email angle brackets", with(map[string]any{"email": "<jane@acme.test>"}), "email"},
		{"email comment", with(map[string]any{"email": "jane@acme.test (Jane)"}), "email"},
		{"email CRLF", with(map[string]any{"email": "jane@acme.test\r\nBcc: x@y.z"}), "email"},
		{"email NUL", with(map[string]any{"email": "jane\u0000@acme.test"}), "email"},
		{"email no at", with(map[string]any{"email": "jane.acme.test"}), "email"},
		{"email ip literal", with(map[string]any{"email": "jane@[127.0.0.1]"}), "email"},
		{"email too long", with(map[string]any{"email": strings.Repeat("a", 60) + "@" + strings.Repeat("b", 200) + ".test"}), "email"},
		{"email long local", with(map[string]any{"email": strings.Repeat("a", 65) + "@acme.test"}), "email"},
		{"first name missing", with(map[string]any{"first_name": nil}), "first_name"},
		{"first name blank", with(map[string]any{"first_name": "   "}), "first_name"},
		{"first name too long", with(map[string]any{"first_name": long}), "first_name"},
		{"first name newline", with(map[string]any{"first_name": "Ja\nne"}), "first_name"},
		{"first name bidi", with(map[string]any{"first_name": "Jane\u202Egnp.exe"}), "first_name"},
		{"first name lone surrogate", []byte(`{"email":"jane@acme.test","first_name":"\ud800","last_name":"Doe","subscription_id":"` + subID + `","role":"editor"}`), "first_name"},
		{"last name array", with(map[string]any{"last_name": []string{"Doe"}}), "last_name"},
		{"phone letters", with(map[string]any{"phone": "call me"}), "phone"},
		{"phone too long", with(map[string]any{"phone": strings.Repeat("1", 33)}), "phone"},
		{"subscription missing", with(map[string]any{"subscription_id": nil}), "subscription_id"},
		{"subscription not uuid", with(map[string]any{"subscription_id": "sub-1"}), "subscription_id"},
		{"subscription braces", with(map[string]any{"subscription_id": "{" + subID + "}"}), "subscription_id"},
		{"subscription urn", with(map[string]any{"subscription_id": "urn:uuid:" + subID}), "subscription_id"},
		{"subscription object", with(map[string]any{"subscription_id": map[string]any{}}), "subscription_id"},
		{"role missing", with(map[string]any{"role": nil}), "role"},
		{"role too long", with(map[string]any{"role": strings.Repeat("r", 65)}), "role"},
		{"role bool", with(map[string]any{"role": true}), "role"},
		{"group not uuid", with(map[string]any{"group_ids": []string{groupA, "nope"}}), "group_ids[1]"},
		{"group number", with(map[string]any{"group_ids": []any{groupA, 7}}), "group_ids[1]"},
		{"group nested array", with(map[string]any{"group_ids": []any{[]string{groupA}}}), "group_ids[0]"},
		{"groups object", with(map[string]any{"group_ids": map[string]string{"a": groupA}}), "group_ids"},
		{"too many groups", with(map[string]any{"group_ids": manyGroups}), "group_ids"},
		{"10k groups", with(map[string]any{"group_ids": tenThousand}), "group_ids"},
		{"inviter string", with(map[string]any{"inviter": "Ada"}), "inviter"},
		{"inviter without email", with(map[string]any{"inviter": map[string]string{"name": "Ada"}}), "inviter.email"},
		{"inviter bad email", with(map[string]any{"inviter": map[string]string{"name": "Ada", "email": "Ada <a@b.c>"}}), "inviter.email"},
		{"inviter without name", with(map[string]any{"inviter": map[string]string{"email": "a@b.c"}}), "inviter.name"},
		{"user id not uuid", []byte(`{"user_id":"42","subscription_id":"` + subID + `","role":"viewer"}`), "user_id"},
		{"user id number", []byte(`{"user_id":42,"subscription_id":"` + subID + `","role":"viewer"}`), "user_id"},
		{"user id with email", []byte(`{"user_id":"` + userID1 + `","email":"a@b.c","subscription_id":"` + subID + `","role":"viewer"}`), "email"},
		{"user id with phone", []byte(`{"user_id":"` + userID1 + `","phone":"+1 555","subscription_id":"` + subID + `","role":"viewer"}`), "phone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, p := decodeInvitation(tc.body)
			if p == nil {
				t.Fatal("accepted")
			}
			if p.Status != 422 || p.Code != contract.CodeValidation {
				t.Fatalf("problem = %d %s", p.Status, p.Code)
			}
			if !hasField(p, tc.field) {
				t.Fatalf("errors = %+v, want field %q", p.Errors, tc.field)
			}
		})
	}
}

func TestDecodeInvitationNamesEveryField(t *testing.T) {
	_, p := decodeInvitation([]byte(`{"email":"x","first_name":"","last_name":"\u0000","subscription_id":"1","role":"","group_ids":["a","b"]}`))
	if p == nil {
		t.Fatal("accepted")
	}
	for _, f := range []string{"email", "first_name", "last_name", "subscription_id", "role", "group_ids[0]", "group_ids[1]"} {
		if !hasField(p, f) {
			t.Errorf("no error for %s in %+v", f, p.Errors)
		}
	}
}

func TestDecodeSubscription(t *testing.T) {
	good := `{"application":"analytics","name":"Team","seats":5,"roles":["admin","viewer"]}`
	s, p := decodeSubscription([]byte(good))
	if p != nil || s.Seats != 5 || len(s.Roles) != 2 {
		t.Fatalf("good body: %+v %+v", s, p)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"application":"analytics","name":"Team","roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":null,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":0,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":-3,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":1000001,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":1e30,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":99999999999999999999999,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":2.5,"roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":"5","roles":["a"]}`, "seats"},
		{`{"application":"analytics","name":"Team","seats":5,"roles":[]}`, "roles"},
		{`{"application":"analytics","name":"Team","seats":5}`, "roles"},
		{`{"application":"analytics","name":"Team","seats":5,"roles":["a","a"]}`, "roles[1]"},
		{`{"application":"analytics","name":"Team","seats":5,"roles":["a",""]}`, "roles[1]"},
		{`{"application":"analytics","name":"Team","seats":5,"roles":["` + strings.Repeat("r", 65) + `"]}`, "roles[0]"},
		{`{"application":"analytics","name":"Team","seats":5,"roles":[null]}`, "roles[0]"},
		{`{"application":"","name":"Team","seats":5,"roles":["a"]}`, "application"},
		{`{"application":"analytics","name":"` + strings.Repeat("n", 101) + `","seats":5,"roles":["a"]}`, "name"},
	} {
		_, p := decodeSubscription([]byte(tc.body))
		if p == nil || !hasField(p, tc.field) {
			t.Errorf("%s: problem %+v, want field %q", tc.body, p, tc.field)
		}
	}
}

func TestDecodeName(t *testing.T) {
	if name, p := decodeName([]byte(`{"name":"  Acme  "}`)); p != nil || name != "Acme" {
		t.Fatalf("got %q %+v", name, p)
	}
	for _, body := range []string{`{}`, `{"name":null}`, `{"name":""}`, `{"name":1}`, `{"name":"a\tb"}`, `{"name":"x","id":"y"}`} {
		if _, p := decodeName([]byte(body)); p == nil || p.Code != contract.CodeValidation {
			t.Errorf("%s accepted", body)
		}
	}
}

func TestAcceptBody(t *testing.T) {
	var b acceptBody
	if p := jsonbody.Decode([]byte(`{"token":"t","password":"p","accept_terms":true}`), &b); p != nil || !b.AcceptTerms {
		t.Fatalf("%+v %+v", b, p)
	}
	for body, field := range map[string]string{
		`{"token":"t","accept_terms":"yes"}`: "accept_terms",
		`{"token":1}`:                        "token",
		`{"token":"t","password":["x"]}`:     "password",
		`{"token":"t","terms":true}`:         "terms",
	} {
		var b acceptBody
		if p := jsonbody.Decode([]byte(body), &b); p == nil || !hasField(p, field) {
			t.Errorf("%s: %+v, want field %s", body, p, field)
		}
	}
}

func TestIdempotencyHashIsCanonical(t *testing.T) {
	a, _ := decodeInvitation(with(map[string]any{"group_ids": []string{groupA, groupB}, "email": " jane@acme.test"}))
	b, _ := decodeInvitation(with(map[string]any{"group_ids": []string{strings.ToUpper(groupB), groupA, groupA}}))
	if !bytes.Equal(a.Hash(), b.Hash()) {
		t.Error("equivalent requests hash differently")
	}
	c, _ := decodeInvitation(with(map[string]any{"role": "viewer"}))
	if bytes.Equal(a.Hash(), c.Hash()) {
		t.Error("different requests hash the same")
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	if k, err := idempotencyKey(nil); err != nil || k != "" {
		t.Fatal("absent header refused")
	}
	if k, err := idempotencyKey([]string{"order-42"}); err != nil || k != "order-42" {
		t.Fatal("plain key refused")
	}
	for _, v := range [][]string{{""}, {strings.Repeat("k", 256)}, {"a b"}, {"a\x00"}, {"é"}, {"a", "b"}} {
		if _, err := idempotencyKey(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	cur := store.Cursor{CreatedAt: time.Date(2026, 5, 4, 3, 2, 1, 123456000, time.UTC), ID: uuid.New()}
	got, ok := decodeCursor(encodeCursor(cur))
	if !ok || !got.CreatedAt.Equal(cur.CreatedAt) || got.ID != cur.ID {
		t.Fatalf("round trip: %+v %v, want %+v", got, ok, cur)
	}
	valid := encodeCursor(cur)
	for _, bad := range []string{"", "x", valid[:len(valid)-1], valid + "A", strings.Repeat("_", len(valid)), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		encodeCursor(store.Cursor{CreatedAt: time.Unix(0, 0)}), "!" + valid[1:]} {
		if _, ok := decodeCursor(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPlainText(t *testing.T) {
	for s, want := range map[string]bool{
		"Jane": true, "Zoë O’Brien": true, "محمد\u200cرضا": true, // ZWNJ is part of Persian names
		"a\x00": false, "a\r": false, "a\u2028b": false, "\u202Eabc": false, "a\ufffd": false, "\xff": false,
	} {
		if plainText(s) != want {
			t.Errorf("plainText(%q) = %v", s, !want)
		}
	}
}

func hasField(p *problem.Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

// FuzzCreateInvitationBody feeds arbitrary bytes to the create-invitation decoder: it must
// never panic, must refuse with a 422 naming at least one field, and what it accepts must
// survive a round trip through its canonical form unchanged.
func FuzzCreateInvitationBody(f *testing.F) {
	f.Add(with(nil))
	f.Add(with(map[string]any{"group_ids": []string{groupA, groupB}, "inviter": map[string]string{"name": "Ada", "email": "ada@acme.test"}, "phone": "+1 555 0100"}))
	f.Add([]byte(`{"user_id":"` + userID1 + `","subscription_id":"` + subID + `","role":"viewer","group_ids":null}`))
	f.Add([]byte(`{"email":"Jane <jane@acme.test>","first_name":"\u0000","seats":1e999}`))
	f.Add([]byte(`{"group_ids":[[[[[[[[]]]]]]]],"role":"a","role":"b"}`))
	f.Add([]byte("{\"first_name\":\"\xff\xfe\"}"))
	f.Add([]byte(`[{"email":"a@b.c"}]`))
	f.Add(with(map[string]any{"expires_in": 3600, "send_email": false, "message": "Hi Jane,\r\nwelcome aboard.",
		"metadata": map[string]any{"crm_id": "42", "tags": []any{"a", map[string]any{"b": nil}}}, "redirect_url": "https://app.acme.test/start"}))
	f.Add([]byte(`{"expires_in":59,"message":"\u202e","metadata":[1],"redirect_url":"javascript:alert(1)"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, p := decodeInvitation(data)
		if p != nil {
			if p.Status != 422 || len(p.Errors) == 0 {
				t.Fatalf("refusal without fields: %+v", p)
			}
			return
		}
		again, err := json.Marshal(bodyOf(n))
		if err != nil {
			t.Fatal(err)
		}
		m, p := decodeInvitation(again)
		if p != nil {
			t.Fatalf("canonical form %s refused: %+v", again, p)
		}
		if !bytes.Equal(n.Hash(), m.Hash()) {
			t.Fatalf("canonical form %s decodes differently", again)
		}
		if fmt.Sprint(n.GroupIDs) != fmt.Sprint(m.GroupIDs) {
			t.Fatalf("groups changed: %v -> %v", n.GroupIDs, m.GroupIDs)
		}
	})
}

// bodyOf is the request body that decodes to n.
func bodyOf(n newInvitation) createInvitationBody {
	b := createInvitationBody{
		Email: n.Email, FirstName: n.FirstName, LastName: n.LastName, Phone: n.Phone,
		SubscriptionID: n.SubscriptionID.String(), Role: n.Role,
	}
	if n.UserID != nil {
		b.UserID = n.UserID.String()
	}
	for _, g := range n.GroupIDs {
		b.GroupIDs = append(b.GroupIDs, g.String())
	}
	if n.Inviter != nil {
		b.Inviter = &personBody{Name: n.Inviter.Name, Email: n.Inviter.Email}
	}
	if n.ExpiresIn > 0 {
		secs := int64(n.ExpiresIn / time.Second)
		b.ExpiresIn = &secs
	}
	if n.HoldEmail {
		no := false
		b.SendEmail = &no
	}
	if n.Message != "" {
		b.Message = &n.Message
	}
	b.Metadata, b.RedirectURL = n.Metadata, n.RedirectURL
	return b
}
