package providerevents

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fixtures: Resend webhook bodies composed from the fields Resend documents
// for each type (type, created_at, data{email_id, from, to, subject,
// created_at, broadcast_id?, template_id?, tags?, bounce?, click?, failed?,
// suppressed?}), with this service's own values.
const (
	emailID   = "7d3e1c20-94b6-4f0a-8c55-2b1e9f6a4d18"
	eventAt   = "2026-03-14T09:26:50.412Z"
	invitee   = "grace.hopper@example.org"
	sender    = "Acme Onboarding <invites@mail.acme.example>"
	subject   = "You're invited to join Acme on Onboarding"
	sentAtRaw = "2026-03-14T09:26:41.208331+00:00"
)

func emailFixture(typ, extra string) string {
	return `{
  "type": "` + typ + `",
  "created_at": "` + eventAt + `",
  "data": {
    "created_at": "` + sentAtRaw + `",
    "email_id": "` + emailID + `",
    "from": "` + sender + `",
    "to": ["` + invitee + `"],
    "subject": "` + subject + `",
    "tags": {"kind": "invitation", "account": "acct_01HV"}` + extra + `
  }
}`
}

var (
	fixtureSent            = emailFixture("email.sent", "")
	fixtureDelivered       = emailFixture("email.delivered", "")
	fixtureDeliveryDelayed = emailFixture("email.delivery_delayed", "")
	fixtureComplained      = emailFixture("email.complained", "")
	fixtureBounced         = emailFixture("email.bounced", `,
    "bounce": {
      "message": "The recipient's mail server permanently rejected the email: 550 5.1.1 mailbox unavailable.",
      "type": "Permanent",
      "subType": "General"
    }`)
	fixtureOpened  = emailFixture("email.opened", "")
	fixtureClicked = emailFixture("email.clicked", `,
    "click": {
      "ipAddress": "198.51.100.23",
      "link": "https://portal.acme.example/help",
      "timestamp": "2026-03-14T09:31:02.000Z",
      "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"
    }`)
	fixtureFailed = emailFixture("email.failed", `,
    "failed": {"reason": "reached_daily_quota"}`)
	fixtureSuppressed = emailFixture("email.suppressed", `,
    "suppressed": {"type": "OnAccountSuppressionList", "message": "The address is on the account's suppression list after an earlier hard bounce."}`)
)

func parseOK(t *testing.T, body string) Event {
	t.Helper()
	ev, err := Parse(testID, []byte(body))
	if err != nil {
		t.Fatalf("Parse: %v\nbody: %s", err, body)
	}
	return ev
}

func TestParseEmailEvents(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 50, 412_000_000, time.UTC)
	cases := []struct {
		name, body, typ string
		status          string
		known           bool
		reason          string
	}{
		{"delivered", fixtureDelivered, "email.delivered", StatusDelivered, true, ""},
		{"bounced", fixtureBounced, "email.bounced", StatusBounced, true,
			"Permanent (General): The recipient's mail server permanently rejected the email: 550 5.1.1 mailbox unavailable."},
		{"complained", fixtureComplained, "email.complained", StatusComplained, true, ""},
		{"delivery delayed", fixtureDeliveryDelayed, "email.delivery_delayed", "", true, ""},
		{"sent", fixtureSent, "email.sent", "", false, ""},
		{"opened", fixtureOpened, "email.opened", "", false, ""},
		{"clicked", fixtureClicked, "email.clicked", "", false, ""},
		{"failed", fixtureFailed, "email.failed", "", false, "reached_daily_quota"},
		{"suppressed", fixtureSuppressed, "email.suppressed", "", false,
			"OnAccountSuppressionList: The address is on the account's suppression list after an earlier hard bounce."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := parseOK(t, c.body)
			want := Event{
				ID:      testID,
				Type:    c.typ,
				EmailID: emailID,
				To:      []string{invitee},
				At:      at,
				Reason:  c.reason,
			}
			if !reflect.DeepEqual(ev, want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", ev, want)
			}
			status, known := ev.Delivery()
			if status != c.status || known != c.known {
				t.Fatalf("Delivery() = (%q, %v), want (%q, %v)", status, known, c.status, c.known)
			}
		})
	}
}

func TestParseUnknownTypesAreNotErrors(t *testing.T) {
	bodies := map[string]string{
		"future email type": emailFixture("email.scheduled", ""),
		"contact.created": `{"type":"contact.created","created_at":"2026-03-14T10:00:00.000Z",
			"data":{"id":"0c9a2f5e-3b71-4d8e-a0f4-6e2d1b7c9a30","audience_id":"b5e1d7a2-8c44-4f19-9e3a-1d6c0f2b7e85",
			"created_at":"2026-03-14T10:00:00.000Z","updated_at":"2026-03-14T10:00:00.000Z",
			"email":"linus@example.net","first_name":"Linus","last_name":null,"unsubscribed":false}}`,
		"domain.updated": `{"type":"domain.updated","created_at":"2026-03-14T10:05:00.000Z",
			"data":{"id":"d91b3c6a-27f0-4e58-b4a1-5c8e0d2f6a17","name":"mail.acme.example","status":"verified",
			"created_at":"2026-01-02T08:00:00.000Z","region":"eu-west-1",
			"records":[{"record":"SPF","name":"send","type":"MX","ttl":"Auto","status":"verified","value":"feedback-smtp.eu-west-1.amazonses.com","priority":10}]}}`,
		// Another family that reuses "to" with another meaning (an object).
		"inbox.thread.folder.updated": `{"type":"inbox.thread.folder.updated","created_at":"2026-03-14T10:06:00.000Z",
			"data":{"source":"dashboard","inbox_id":"inb_1","thread_id":"thr_1","from":{"name":"inbox"},"to":{"name":"archive"}}}`,
		"no data":          `{"type":"account.something_new","created_at":"2026-03-14T10:07:00Z"}`,
		"null data":        `{"type":"account.something_new","data":null}`,
		"data is a string": `{"type":"account.something_new","data":"opaque"}`,
		"odd created_at":   `{"type":"account.something_new","created_at":"yesterday","data":{}}`,
		"docs typo of delivery_delayed": strings.Replace(fixtureDeliveryDelayed,
			"email.delivery_delayed", "email.delivered_delayed", 1),
		"case differs": strings.Replace(fixtureBounced, "email.bounced", "Email.Bounced", 1),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ev := parseOK(t, body)
			if ev.ID != testID || ev.Type == "" {
				t.Fatalf("Parse = %+v: want the id and the type kept", ev)
			}
			if status, known := ev.Delivery(); status != "" || known {
				t.Fatalf("Delivery() = (%q, %v), want (\"\", false)", status, known)
			}
		})
	}

	t.Run("fields of an unknown email type are kept", func(t *testing.T) {
		ev := parseOK(t, emailFixture("email.scheduled", ""))
		if ev.EmailID != emailID || !reflect.DeepEqual(ev.To, []string{invitee}) {
			t.Fatalf("Parse = %+v", ev)
		}
	})
	t.Run("data of another family is dropped", func(t *testing.T) {
		ev := parseOK(t, bodies["inbox.thread.folder.updated"])
		if ev.EmailID != "" || ev.To != nil || ev.Reason != "" {
			t.Fatalf("Parse = %+v, want no email fields", ev)
		}
	})
}

func TestParseMalformed(t *testing.T) {
	bodies := map[string]string{
		"empty":                  ``,
		"not JSON":               `type=email.bounced`,
		"truncated":              fixtureBounced[:len(fixtureBounced)/2],
		"trailing garbage":       fixtureDelivered + `}`,
		"JSON null":              `null`,
		"JSON array":             `[` + fixtureDelivered + `]`,
		"JSON string":            `"email.delivered"`,
		"no type":                `{"created_at":"` + eventAt + `","data":{"email_id":"` + emailID + `"}}`,
		"empty type":             strings.Replace(fixtureDelivered, `"email.delivered"`, `""`, 1),
		"type not a string":      `{"type":7,"data":{}}`,
		"created_at not string":  `{"type":"email.sent","created_at":1710408410,"data":{}}`,
		"known, no email_id":     `{"type":"email.bounced","created_at":"` + eventAt + `","data":{"to":["` + invitee + `"]}}`,
		"known, no data":         `{"type":"email.delivered","created_at":"` + eventAt + `"}`,
		"known, null data":       `{"type":"email.delivered","created_at":"` + eventAt + `","data":null}`,
		"known, data a string":   `{"type":"email.complained","created_at":"` + eventAt + `","data":"` + emailID + `"}`,
		"known, to not an array": strings.Replace(fixtureDelivered, `["`+invitee+`"]`, `"`+invitee+`"`, 1),
		"known, bounce a string": strings.Replace(fixtureBounced, `"bounce": {`, `"bounce": "Permanent", "x": {`, 1),
		"known, bad created_at":  strings.Replace(fixtureDelivered, eventAt, "14/03/2026 09:26", 1),
		"known, email_id number": `{"type":"email.delivered","created_at":"` + eventAt + `","data":{"email_id":42}}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ev, err := Parse(testID, []byte(body))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", ev)
			}
			if errors.Is(err, ErrSignature) {
				t.Fatalf("err = %v: a body problem is not a signature problem", err)
			}
		})
	}

	t.Run("empty svix-id", func(t *testing.T) {
		for _, id := range []string{"", "   "} {
			if _, err := Parse(id, []byte(fixtureDelivered)); err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error: the id is the dedupe key", id)
			}
		}
	})
}

func TestParseDetails(t *testing.T) {
	t.Run("svix-id is the event id", func(t *testing.T) {
		a, _ := Parse("msg_a", []byte(fixtureBounced))
		b, _ := Parse("msg_b", []byte(fixtureBounced))
		if a.ID != "msg_a" || b.ID != "msg_b" {
			t.Fatalf("ids = %q, %q", a.ID, b.ID)
		}
	})
	t.Run("several recipients", func(t *testing.T) {
		body := strings.Replace(fixtureDelivered, `["`+invitee+`"]`, `["`+invitee+`", "ops@example.org"]`, 1)
		ev := parseOK(t, body)
		if !reflect.DeepEqual(ev.To, []string{invitee, "ops@example.org"}) {
			t.Fatalf("To = %q", ev.To)
		}
	})
	t.Run("legacy tags array and extra fields are ignored", func(t *testing.T) {
		body := strings.Replace(fixtureDelivered, `"tags": {"kind": "invitation", "account": "acct_01HV"}`,
			`"tags": [{"name": "kind", "value": "invitation"}], "broadcast_id": "8b1d", "template_id": null, "message_id": "<a@b>"`, 1)
		ev := parseOK(t, body)
		if ev.EmailID != emailID {
			t.Fatalf("Parse = %+v", ev)
		}
	})
	t.Run("time zones and layouts", func(t *testing.T) {
		want := time.Date(2026, 3, 14, 9, 26, 50, 412_000_000, time.UTC)
		for _, s := range []string{
			"2026-03-14T09:26:50.412Z",
			"2026-03-14T09:26:50.412+00:00",
			"2026-03-14T10:26:50.412+01:00",
			"2026-03-14 09:26:50.412+00:00",
			"2026-03-14T09:26:50.412000Z",
		} {
			ev := parseOK(t, strings.Replace(fixtureDelivered, eventAt, s, 1))
			if !ev.At.Equal(want) || ev.At.Location() != time.UTC {
				t.Fatalf("created_at %q: At = %v, want %v in UTC", s, ev.At, want)
			}
		}
	})
	t.Run("At comes from the event, not from data.created_at", func(t *testing.T) {
		ev := parseOK(t, fixtureBounced)
		if sent, _ := time.Parse(time.RFC3339Nano, sentAtRaw); ev.At.Equal(sent) {
			t.Fatalf("At = %v is the email's creation time", ev.At)
		}
	})
	t.Run("no created_at leaves At zero", func(t *testing.T) {
		ev := parseOK(t, strings.Replace(fixtureDelivered, `"created_at": "`+eventAt+`",`, "", 1))
		if !ev.At.IsZero() {
			t.Fatalf("At = %v, want zero", ev.At)
		}
	})
	t.Run("bounce with parts missing", func(t *testing.T) {
		for bounce, want := range map[string]string{
			`{"message":"mailbox full","type":"Transient"}`:    "Transient: mailbox full",
			`{"message":"mailbox full"}`:                       "mailbox full",
			`{"type":"Permanent","subType":"NoEmail"}`:         "Permanent (NoEmail)",
			`{"subType":"Suppressed","message":"on the list"}`: "Suppressed: on the list",
			`{}`: "",
		} {
			body := strings.Replace(fixtureDelivered, `"tags"`, `"bounce": `+bounce+`, "tags"`, 1)
			body = strings.Replace(body, "email.delivered", "email.bounced", 1)
			if got := parseOK(t, body).Reason; got != want {
				t.Fatalf("bounce %s: Reason = %q, want %q", bounce, got, want)
			}
		}
	})
	t.Run("long reason is cut on a rune boundary", func(t *testing.T) {
		long := strings.Repeat("é", 400) // 800 bytes
		body := strings.Replace(fixtureBounced, "550 5.1.1 mailbox unavailable.", long, 1)
		r := parseOK(t, body).Reason
		if len(r) > maxReason || !utf8.ValidString(r) || !strings.HasPrefix(r, "Permanent (General): ") {
			t.Fatalf("Reason is %d bytes, valid UTF-8 %v: %q", len(r), utf8.ValidString(r), r)
		}
	})
	t.Run("To is a copy", func(t *testing.T) {
		ev := parseOK(t, fixtureDelivered)
		ev2 := parseOK(t, fixtureDelivered)
		ev.To[0] = "changed"
		if ev2.To[0] != invitee {
			t.Fatal("events share their To slice")
		}
	})
}

func TestDeliveryMapping(t *testing.T) {
	cases := map[string]struct {
		status string
		known  bool
	}{
		"email.delivered":        {"delivered", true},
		"email.bounced":          {"bounced", true},
		"email.complained":       {"complained", true},
		"email.delivery_delayed": {"", true},
		"email.sent":             {"", false},
		"email.opened":           {"", false},
		"email.clicked":          {"", false},
		"email.failed":           {"", false},
		"email.suppressed":       {"", false},
		"email.received":         {"", false},
		"contact.deleted":        {"", false},
		"":                       {"", false},
		" email.bounced":         {"", false},
	}
	for typ, want := range cases {
		status, known := Event{Type: typ}.Delivery()
		if status != want.status || known != want.known {
			t.Errorf("Delivery(%q) = (%q, %v), want (%q, %v)", typ, status, known, want.status, want.known)
		}
	}
}

// TestSignedBounceEndToEnd is the handler's path: a signed email.bounced, as
// Resend would post it, is verified and then read.
func TestSignedBounceEndToEnd(t *testing.T) {
	secret := newSecret(t)
	v := mustVerifier(t, secret)
	body := []byte(fixtureBounced)
	sentAt := testNow.Add(-3 * time.Second)
	h := http.Header{}
	h.Set("svix-id", testID)
	h.Set("svix-timestamp", strconv.FormatInt(sentAt.Unix(), 10))
	h.Set("svix-signature", svixSign(t, newSecret(t), testID, sentAt.Unix(), body)+" "+
		svixSign(t, secret, testID, sentAt.Unix(), body))

	if err := v.Verify(body, h, testNow); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ev, err := Parse(h.Get(HeaderID), body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if status, known := ev.Delivery(); status != StatusBounced || !known {
		t.Fatalf("Delivery() = (%q, %v)", status, known)
	}
	if ev.ID != testID || ev.EmailID != emailID || !strings.HasPrefix(ev.Reason, "Permanent (General): ") {
		t.Fatalf("Event = %+v", ev)
	}

	// The same request an hour later is a replay and is refused.
	if err := v.Verify(body, h, testNow.Add(time.Hour)); !errors.Is(err, ErrSignature) || !errors.Is(err, ErrTimestamp) {
		t.Fatalf("replay: err = %v", err)
	}
}
