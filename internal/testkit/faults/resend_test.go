package faults

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
)

// Resend faults, injected by the fake Resend for one recipient at a time.

// inviteKey is the Idempotency-Key of an invitation's first invite email.
func inviteKey(id string) string {
	return activities.SendEmailInput{InvitationID: uuid.MustParse(id), Generation: 1, Kind: contract.KindInvite, Seq: 1}.IdempotencyKey()
}

// attemptsFor returns the fake Resend's requests for the emails to addr (recorded by the fault
// function, which sees every request), in order.
type attemptLog struct {
	mu   sync.Mutex
	keys []string
	at   []time.Time
}

func (l *attemptLog) add(e resendtest.Email) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, e.IdempotencyKey)
	l.at = append(l.at, e.ReceivedAt)
	return len(l.keys)
}

func (l *attemptLog) snapshot() ([]string, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...), append([]time.Time(nil), l.at...)
}

// TestResendServerErrors: Resend answers 500 three times, then accepts. The email activity
// retries with backoff, every attempt under the same Idempotency-Key, and exactly one email is
// delivered; the invitation shows one send, delivery sent.
func TestResendServerErrors(t *testing.T) {
	t.Parallel()
	svc := newService(t, "resend500", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Flaky.Provider")
	var log attemptLog
	env.faults.set(email, func(e resendtest.Email) *resendtest.Fault {
		if log.add(e) <= 3 {
			return &resendtest.Fault{Status: http.StatusInternalServerError, Message: "injected: internal server error"}
		}
		return nil
	})
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 60*time.Second)
	time.Sleep(3 * time.Second) // a doubled send would come within the backoff

	keys, at := log.snapshot()
	if len(keys) != 4 {
		t.Fatalf("%d requests reached Resend, want 3 failures and 1 success", len(keys))
	}
	for i, k := range keys {
		if k != inviteKey(inv.ID) {
			t.Fatalf("attempt %d carried Idempotency-Key %q, want %q", i+1, k, inviteKey(inv.ID))
		}
		if i > 0 {
			gap := at[i].Sub(at[i-1])
			t.Logf("attempt %d after %s", i+1, gap.Round(10*time.Millisecond))
			if gap < 1500*time.Millisecond {
				t.Errorf("attempt %d came %s after the previous one: no backoff", i+1, gap)
			}
		}
	}
	var stored int
	for _, a := range env.resend.Attempts() {
		if a.IdempotencyKey == inviteKey(inv.ID) && a.Status == 200 {
			stored++
		}
	}
	if n := emailsTo(email, ""); n != 1 || stored != 1 {
		t.Fatalf("%d emails delivered to %s (%d accepted requests), want 1", n, email, stored)
	}
	eventually(t, 10*time.Second, "delivery sent", func() bool {
		got := f.invitation(t, c, inv.ID)
		return got.Delivery != nil && got.Delivery.Status == "sent"
	})
	got := f.invitation(t, c, inv.ID)
	if got.Sends != 1 || got.count("email_sent") != 1 || got.count("email_failed") != 0 {
		t.Fatalf("invitation %+v: want one send and one email_sent event", got)
	}
}

// TestResendRateLimited: Resend answers 429 with Retry-After: 3 twice, then accepts. The retries
// wait at least the 3 seconds Resend asked for, keep the Idempotency-Key, and one email arrives.
func TestResendRateLimited(t *testing.T) {
	t.Parallel()
	svc := newService(t, "resend429", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Busy.Provider")
	var log attemptLog
	env.faults.set(email, func(e resendtest.Email) *resendtest.Fault {
		if log.add(e) <= 2 {
			return &resendtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3", Message: "Too many requests"}
		}
		return nil
	})
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 60*time.Second)
	time.Sleep(time.Second)
	keys, at := log.snapshot()
	if len(keys) != 3 {
		t.Fatalf("%d requests reached Resend, want 2 refusals and 1 success", len(keys))
	}
	for i, k := range keys {
		if k != inviteKey(inv.ID) {
			t.Fatalf("attempt %d carried Idempotency-Key %q, want %q", i+1, k, inviteKey(inv.ID))
		}
		if i > 0 {
			gap := at[i].Sub(at[i-1])
			t.Logf("attempt %d after %s", i+1, gap.Round(10*time.Millisecond))
			if gap < 3*time.Second-50*time.Millisecond {
				t.Errorf("attempt %d came %s after a 429 with Retry-After: 3", i+1, gap.Round(10*time.Millisecond))
			}
		}
	}
	if n := emailsTo(email, ""); n != 1 {
		t.Fatalf("%d emails delivered to %s, want 1", n, email)
	}
}

// TestResendRejected: Resend refuses the recipient (422). The email is not retried; the
// invitation shows delivery failed with Resend's reason, in the API and in the DeliveryStatus
// search attribute; the administrator revokes it (the seat comes back) and invites again, and
// that invitation's email is delivered.
func TestResendRejected(t *testing.T) {
	t.Parallel()
	svc := newService(t, "resend422", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 1)
	email := unique("No.Such.Mailbox")
	var log attemptLog
	env.faults.set(email, func(e resendtest.Email) *resendtest.Fault {
		log.add(e)
		return &resendtest.Fault{Status: http.StatusUnprocessableEntity, Message: "The to address is invalid (injected)"}
	})
	inv := f.invite(t, c, email)
	eventually(t, 30*time.Second, "delivery failed", func() bool {
		got := f.invitation(t, c, inv.ID)
		return got.Delivery != nil && got.Delivery.Status == "failed"
	})
	time.Sleep(5 * time.Second) // a retry would come within the first backoff (2 s)
	got := f.invitation(t, c, inv.ID)
	if keys, _ := log.snapshot(); len(keys) != 1 {
		t.Fatalf("%d requests reached Resend for a 422, want 1 (not retried)", len(keys))
	}
	if got.Delivery.Error == nil || !strings.Contains(*got.Delivery.Error, "422") || !strings.Contains(*got.Delivery.Error, "invalid") {
		t.Fatalf("delivery %+v: want the reason (Resend's 422 and message)", got.Delivery)
	}
	if got.Status != "pending" || got.count("email_failed") != 1 || got.count("email_sent") != 0 {
		t.Fatalf("invitation %+v: want pending with one email_failed event", got)
	}
	eventually(t, 10*time.Second, "the DeliveryStatus search attribute to say failed", func() bool {
		return searchKeyword(t, env.tc, wfID(inv.ID), contract.SearchDelivery) == "failed"
	})
	if n := emailsTo(email, ""); n != 0 {
		t.Fatalf("%d emails delivered to a rejected address", n)
	}

	// The fix: revoke, then invite again (here the address now accepts mail).
	var revoked invitation
	c.do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200).decode(t, &revoked)
	if revoked.Status != "revoked" {
		t.Fatalf("revoke answered %+v", revoked)
	}
	if s := f.subscription(t, c); s.SeatsReserved != 0 || s.SeatsAvailable != 1 {
		t.Fatalf("after the revoke, subscription %+v", s)
	}
	env.faults.set(email, nil)
	again := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	eventually(t, 10*time.Second, "the new invitation's delivery sent", func() bool {
		got := f.invitation(t, c, again.ID)
		return got.Delivery != nil && got.Delivery.Status == "sent"
	})
	eventually(t, 10*time.Second, "the new invitation's DeliveryStatus search attribute", func() bool {
		return searchKeyword(t, env.tc, wfID(again.ID), contract.SearchDelivery) == "sent"
	})
	svc.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *again.InviteURL))).expect(t, 200)
	checkProvisionedOnce(t, svc, f, again.ID, email)
}
