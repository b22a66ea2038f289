// Package slowactivity holds activities back for tests: a worker interceptor that makes each
// attempt of a named activity wait before it runs, so a fault test can kill or stop a worker
// while that activity is known to be in flight on it. Only the test kit wires it in.
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

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	name  string
	delay time.Duration
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInterceptor{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, w: w}
}

type activityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	w *workerInterceptor
}

func (a *activityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if a.w.delay > 0 && activity.GetInfo(ctx).ActivityType.Name == a.w.name {
		t := time.NewTimer(a.w.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return a.Next.ExecuteActivity(ctx, in)
}
