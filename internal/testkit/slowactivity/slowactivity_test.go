package slowactivity

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

func Slow(ctx context.Context) (string, error) { return "slow done", nil }
func Fast(ctx context.Context) (string, error) { return "fast done", nil }

func env(t *testing.T, delay time.Duration) *testsuite.TestActivityEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	e := s.NewTestActivityEnvironment()
	e.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{Interceptor("Slow", delay)}})
	e.RegisterActivityWithOptions(Slow, activity.RegisterOptions{Name: "Slow"})
	e.RegisterActivityWithOptions(Fast, activity.RegisterOptions{Name: "Fast"})
	return e
}

// TestHoldsNamedActivity: the named activity runs after the delay, others at once, and both
// return what the activity returned.
func TestHoldsNamedActivity(t *testing.T) {
	const delay = 300 * time.Millisecond
	e := env(t, delay)
	for _, tc := range []struct {
		name       string
		want       string
		min, under time.Duration
	}{
		{"Slow", "slow done", delay, 10 * time.Second},
		{"Fast", "fast done", 0, delay},
	} {
		began := time.Now()
		v, err := e.ExecuteActivity(tc.name)
		took := time.Since(began)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got string
		if err := v.Get(&got); err != nil || got != tc.want {
			t.Fatalf("%s returned %q (%v), want %q", tc.name, got, err, tc.want)
		}
		if took < tc.min || took >= tc.under {
			t.Errorf("%s took %s, want at least %s and under %s", tc.name, took, tc.min, tc.under)
		}
	}
}

// TestCancelledWhileHeld: a cancelled attempt stops waiting and fails with the context's error,
// without running the activity.
func TestCancelledWhileHeld(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var s testsuite.WorkflowTestSuite
	e := s.NewTestActivityEnvironment()
	e.SetWorkerOptions(worker.Options{
		BackgroundActivityContext: ctx,
		Interceptors:              []interceptor.WorkerInterceptor{Interceptor("Held", time.Minute)},
	})
	ran := make(chan struct{}, 1)
	e.RegisterActivityWithOptions(func(context.Context) error { ran <- struct{}{}; return nil }, activity.RegisterOptions{Name: "Held"})
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	_, err := e.ExecuteActivity("Held")
	took := time.Since(began)
	// The test environment hands the error back as an activity failure carrying its message.
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) || took > 10*time.Second {
		t.Fatalf("ExecuteActivity: %v after %s; want %q well before the minute", err, took, context.Canceled)
	}
	select {
	case <-ran:
		t.Error("the activity ran although its attempt was cancelled while held")
	default:
	}
}

// TestHoldsResultAfter: with After, the named activity runs at once and its result comes back
// after the delay; others pass at once.
func TestHoldsResultAfter(t *testing.T) {
	const delay = 300 * time.Millisecond
	var s testsuite.WorkflowTestSuite
	e := s.NewTestActivityEnvironment()
	e.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{After("Slow", delay)}})
	var ranAt time.Time
	e.RegisterActivityWithOptions(func(context.Context) (string, error) { ranAt = time.Now(); return "slow done", nil },
		activity.RegisterOptions{Name: "Slow"})
	e.RegisterActivityWithOptions(Fast, activity.RegisterOptions{Name: "Fast"})
	began := time.Now()
	v, err := e.ExecuteActivity("Slow")
	took := time.Since(began)
	var got string
	if err != nil || v.Get(&got) != nil || got != "slow done" {
		t.Fatalf("Slow returned %q, %v", got, err)
	}
	if ran := ranAt.Sub(began); ran >= delay || took < delay || took >= 10*time.Second {
		t.Errorf("Slow ran %s after the call and answered after %s; want it run at once and answered after %s", ran, took, delay)
	}
	began = time.Now()
	if _, err := e.ExecuteActivity("Fast"); err != nil || time.Since(began) >= delay {
		t.Errorf("Fast: %v after %s; want it answered at once", err, time.Since(began))
	}
}
