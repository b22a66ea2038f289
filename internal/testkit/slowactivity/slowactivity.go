// Package slowactivity holds activities back for tests: a worker interceptor that makes each
// attempt of a named activity wait before it runs (or, with After, hold its result after it
// ran), so a fault test can kill or stop a worker while that activity is known to be in flight
// on it (or known to have committed, its result not yet handed back). Only the test kit wires
// it in.
package slowactivity

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Interceptor returns a worker interceptor that holds every attempt of the activity type name
// for d before running it. The wait ends early with the context's error when the attempt is
// cancelled (the worker stopping, a timeout), as the activity itself would end; other
// activities and workflows pass through untouched.
func Interceptor(name string, d time.Duration) interceptor.WorkerInterceptor {
	return &workerInterceptor{name: name, delay: d}
}

// After returns a worker interceptor that runs every attempt of the activity type name at once
// and holds its result (or error) for d before handing it back; a cancelled attempt hands back
// the context's error as soon as it is cancelled, its work done all the same.
func After(name string, d time.Duration) interceptor.WorkerInterceptor {
	return &workerInterceptor{name: name, delay: d, after: true}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	name  string
	delay time.Duration
	after bool
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInterceptor{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, w: w}
}

type activityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	w *workerInterceptor
}

func (a *activityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if a.w.delay <= 0 || activity.GetInfo(ctx).ActivityType.Name != a.w.name {
		return a.Next.ExecuteActivity(ctx, in)
	}
	if !a.w.after {
		if err := hold(ctx, a.w.delay); err != nil {
			return nil, err
		}
		return a.Next.ExecuteActivity(ctx, in)
	}
	v, err := a.Next.ExecuteActivity(ctx, in)
	if herr := hold(ctx, a.w.delay); herr != nil {
		return nil, herr
	}
	return v, err
}

// hold waits d, or until ctx ends, with its error.
func hold(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
