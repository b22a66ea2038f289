package workflows

import (
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The workflow's Postgres steps and how their answers become the updates' answers.

// dbOptions are the options of the Postgres activities: retried until they succeed, except for
// business errors, which no retry can fix. Each is one short transaction, so a retry costs
// little and comes at most 5 s after the last failure: an invitee waiting on an accept through
// a Postgres blip is answered seconds after it ends, not up to a minute later.
func dbOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Second,
			NonRetryableErrorTypes: contract.BusinessErrorTypes(),
		},
	}
}

// step runs one Postgres activity and waits for its result. Runs of the current lifecycle run it
// as a local activity, in the worker that runs the workflow task: one marker in the history
// instead of three events and a workflow task, and no round trip through a task queue. Each step
// is one idempotent transaction keyed by invitation and generation, so running it again after a
// worker crash (the local activity's retry) is as safe as the regular activity's retry. Runs of
// lifecycle 0 recorded regular activities and replay them.
func (w *invitation) step(ctx workflow.Context, opts workflow.ActivityOptions, fn, arg, result any) error {
	if !w.v2 {
		return w.activity(ctx, opts, fn, arg, result)
	}
	retryFor := opts.ScheduleToCloseTimeout
	if retryFor == 0 {
		retryFor = localStepRetryFor
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: retryFor,
		StartToCloseTimeout:    LocalStepTimeout,
		RetryPolicy:            opts.RetryPolicy,
		Summary:                opts.Summary,
	})
	return workflow.ExecuteLocalActivity(lctx, fn, arg).Get(ctx, result)
}

// activity runs one Postgres activity as a regular activity.
func (w *invitation) activity(ctx workflow.Context, opts workflow.ActivityOptions, fn, arg, result any) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fn, arg).Get(ctx, result)
}

// LocalStepTimeout bounds one attempt of a local Postgres step (a stopping worker leaves room
// for one, worker.New): every step is one short
// transaction, and an attempt stuck on a dead connection is retried on a fresh one well
// before the API (20 s) gives up on the update. localStepRetryFor bounds the retries of a step
// with no bound of its own (all but the create): the SDK would otherwise stop at the first
// attempt's timeout. A day is an outage nobody waits out; a retried update (the same update ID)
// meanwhile joins the one in flight.
const (
	LocalStepTimeout  = 5 * time.Second
	localStepRetryFor = 24 * time.Hour
)

// businessError extracts an activity's business error, typed with an API code.
func businessError(err error) (error, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !contract.Code(appErr.Type()).Business() {
		return nil, false
	}
	var existing string // the duplicate's id; other refusals carry other details, or none
	if appErr.Type() == string(contract.CodeDuplicateInvitation) && appErr.HasDetails() {
		_ = appErr.Details(&existing)
	}
	return temporal.NewApplicationError(appErr.Message(), appErr.Type(), existing), true
}

// passOn returns an activity's business error as the update's error, or the error as it is.
func passOn(err error) error {
	if be, ok := businessError(err); ok {
		return be
	}
	return err
}

// rateLimited is a rate_limited refusal that tells the caller when to try again.
func rateLimited(msg string, retryAfter time.Duration) error {
	return temporal.NewApplicationError(msg, string(contract.CodeRateLimited), contract.RateLimitDetails{RetryAfter: retryAfter})
}
