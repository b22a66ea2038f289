package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
)

func TestResendMailer(t *testing.T) {
	rs := resendtest.NewServer("re_test_key")
	defer rs.Close()
	m, err := NewResendMailer("re_test_key", rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{From: "Onboarding <o@example.test>", To: "jane@example.test", Subject: "Hi", HTML: "<p>Hi</p>",
		Text: "Hi", IdempotencyKey: "k1", Tags: map[string]string{"kind": "invite"}}
	ctx := context.Background()

	t.Run("sends once per idempotency key", func(t *testing.T) {
		id1, err := m.Send(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := m.Send(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if id1 == "" || id1 != id2 {
			t.Fatalf("ids %q and %q: want the same non-empty id", id1, id2)
		}
		if got := len(rs.EmailsTo("jane@example.test")); got != 1 {
			t.Fatalf("%d emails delivered, want 1", got)
		}
	})

	faultFor := func(key string, f resendtest.Fault) {
		rs.InjectFaults(func(e resendtest.Email) *resendtest.Fault {
			if e.IdempotencyKey == key {
				return &f
			}
			return nil
		})
	}

	t.Run("a 422 is a permanent rejection", func(t *testing.T) {
		faultFor("k422", resendtest.Fault{Status: http.StatusUnprocessableEntity, Message: "Invalid `to` field."})
		_, err := m.Send(ctx, Message{From: msg.From, To: "bad", Subject: "x", Text: "x", IdempotencyKey: "k422"})
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})

	t.Run("a 500 is retryable", func(t *testing.T) {
		faultFor("k500", resendtest.Fault{Status: http.StatusInternalServerError, Message: "boom"})
		_, err := m.Send(ctx, Message{From: msg.From, To: "a@b.test", Subject: "x", Text: "x", IdempotencyKey: "k500"})
		if err == nil || errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
	})

	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprintf("a %d (the API key, not the message) is retryable", status), func(t *testing.T) {
			key := fmt.Sprintf("k%d", status)
			faultFor(key, resendtest.Fault{Status: status, Message: "API key is invalid"})
			_, err := m.Send(ctx, Message{From: msg.From, To: "a@b.test", Subject: "x", Text: "x", IdempotencyKey: key})
			if err == nil || errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want a retryable error", err)
			}
		})
	}

	t.Run("a 429 retries after Retry-After", func(t *testing.T) {
		faultFor("k429", resendtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7", Message: "slow down"})
		_, err := m.Send(ctx, Message{From: msg.From, To: "a@b.test", Subject: "x", Text: "x", IdempotencyKey: "k429"})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("err = %v, want an ApplicationError", err)
		}
		if appErr.NonRetryable() || appErr.NextRetryDelay() != 7*time.Second {
			t.Fatalf("non-retryable=%v next delay=%v, want retryable after 7s", appErr.NonRetryable(), appErr.NextRetryDelay())
		}
	})
}
