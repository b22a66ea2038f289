package faults

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/testkit/webhooktest"
)

// TestWorkerKilledMidDelivery: the worker is SIGKILLed while a webhook attempt waits on the
// receiver; a new worker delivers the event, with the same webhook-id, exactly once.
func TestWorkerKilledMidDelivery(t *testing.T) {
	t.Parallel()
	svc := newService(t, "webhookkill", map[string]string{
		"WEBHOOK_ALLOW_LOCALHOST": "true",
		"WEBHOOK_RETRY_INITIAL":   "1s",
	})
	first := svc.startWorker(t, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	r := webhooktest.NewReceiver(t, "")
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	c.do(t, "POST", f.path("/webhooks"), map[string]any{"url": r.URL() + "/hooks", "event_types": []string{"invitation.created"}}).
		expect(t, 201).decode(t, &ep)
	r.SetSecrets(ep.Secret)
	r.Hang()
	f.invite(t, c, unique("Hook.Killed"))

	wait, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitForAttempts(wait, func(ds []webhooktest.Delivery) bool { return len(ds) >= 1 }); err != nil {
		t.Fatal(err)
	}
	first.signal(t, syscall.SIGKILL)
	if exited, _ := first.exitedIn(10 * time.Second); !exited {
		t.Fatal("the worker survived SIGKILL")
	}
	r.Resume()
	svc.startWorker(t, nil)

	wait2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	if err := r.WaitFor(wait2, func(ds []webhooktest.Delivery) bool { return len(ds) >= 1 }); err != nil {
		t.Fatalf("never delivered after the worker was killed: %v", err)
	}
	time.Sleep(3 * time.Second) // a second delivery would arrive by now
	delivered := r.Deliveries()
	if len(delivered) != 1 {
		t.Fatalf("%d deliveries, want exactly 1", len(delivered))
	}
	for _, a := range r.Attempts() {
		if a.WebhookID != delivered[0].WebhookID {
			t.Fatalf("attempts carried webhook-ids %s and %s", a.WebhookID, delivered[0].WebhookID)
		}
	}
	t.Logf("delivered on arrival %d, %d attempts in all", delivered[0].Attempt, len(r.Attempts()))
}
