package worker

import (
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities/bulk"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/invitecreate"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// registerBulk registers the bulk batch's workflow and activities on the main worker. Its rows
// are created through invitecreate, as the API's single create is, with this worker's client.
func registerBulk(w sdkworker.Worker, c client.Client, cfg config.Config, st *store.Store, logger *slog.Logger) {
	w.RegisterWorkflowWithOptions(workflows.InvitationBatch, workflow.RegisterOptions{Name: contract.BatchWorkflowName})
	acts := &bulk.Activities{Store: st, Logger: logger, Creator: &invitecreate.Service{
		Store: st, Config: cfg,
		Workflows: &workflowclient.Client{
			Temporal: c, TaskQueue: cfg.TemporalTaskQueue,
			Settings: invitecreate.LifecycleSettings(cfg), EmailHashKey: cfg.EmailHashKey,
		},
	}}
	w.RegisterActivityWithOptions(acts.CreateBatchRows, activity.RegisterOptions{Name: contract.ActivityCreateBatchRows})
	w.RegisterActivityWithOptions(acts.CompleteBatch, activity.RegisterOptions{Name: contract.ActivityCompleteBatch})
}
