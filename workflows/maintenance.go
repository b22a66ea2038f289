package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Maintenance is one pass of the onboarding-maintenance schedule: it prunes what retention no
// longer needs, releases pending invitations whose workflow has ended (the reconciler), and ends
// runs of lifecycle 0 that wait after their expiry. The
// schedule starts it every MAINTENANCE_INTERVAL and skips a pass while the last one still runs.
func Maintenance(ctx workflow.Context, in contract.MaintenanceInput) (contract.MaintenanceResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
		},
	})
	var res contract.MaintenanceResult
	if err := workflow.ExecuteActivity(ctx, a.Prune, in).Get(ctx, &res); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(ctx, a.Reconcile, in).Get(ctx, &res.Reconciled); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(ctx, a.RetireExpired).Get(ctx, &res.Retired); err != nil {
		return res, err
	}
	return res, nil
}
