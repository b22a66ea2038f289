package workflows

import (
	"errors"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

var wh *activities.Webhooks

// WebhookDelivery delivers one event to one endpoint: a single activity whose retry policy
// (activities.WebhookRetryPolicy: 10 s, doubling, at most an hour apart) runs until the
// delivery's deadline (WEBHOOK_RETRY_FOR after it was owed). Every attempt sends the same
// webhook-id. Its attempts share the webhook queue fairly by endpoint, so an endpoint with a
// backlog of retries never holds another's deliveries behind it.
func WebhookDelivery(ctx workflow.Context, in activities.DeliverWebhookInput) error {
	window := max(in.Deadline.Sub(workflow.Now(ctx)), time.Minute)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.WebhookTaskQueue(workflow.GetInfo(ctx).TaskQueueName),
		Priority:               temporal.Priority{FairnessKey: in.EndpointID.String()},
		StartToCloseTimeout:    activities.WebhookAttemptLimit + 5*time.Second,
		ScheduleToCloseTimeout: window,
		RetryPolicy:            activities.WebhookRetryPolicy(in.FirstRetry),
		Summary:                "Deliver " + in.EventID,
	})
	err := workflow.ExecuteActivity(actx, wh.DeliverWebhook, in).Get(ctx, nil)
	var app *temporal.ApplicationError
	switch {
	case err == nil:
		workflow.GetLogger(ctx).Info("webhook delivered", "event_id", in.EventID, "endpoint_id", in.EndpointID)
	case errors.As(err, &app) && app.Type() == activities.ErrEndpointGone:
		workflow.GetLogger(ctx).Info("webhook endpoint deleted: delivery dropped", "event_id", in.EventID, "endpoint_id", in.EndpointID)
	default:
		// Given up: the attempts and their errors are in webhook_attempts for the portal.
		workflow.GetLogger(ctx).Warn("webhook delivery given up", "event_id", in.EventID, "endpoint_id", in.EndpointID, "error", err)
	}
	return nil
}
