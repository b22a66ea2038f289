package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// TestMaintenanceReleasesAnOrphanedInvitation: an operator ends a pending invitation's workflow
// by hand, so nothing will ever expire it and its seat would stay held. Once it is past its
// expiry, a pass of the maintenance workflow (as the onboarding-maintenance schedule, which the
// worker keeps, starts it) finds it, closes it as expired with the reconciler's event, and gives
// the seat back; an invitation whose workflow runs is left alone. The same pass ends a run of
// lifecycle 0 that waited after its expiry (runs of the current lifecycle end with it).
func TestMaintenanceReleasesAnOrphanedInvitation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sched, err := stack.Temporal.ScheduleClient().GetHandle(ctx, contract.MaintenanceScheduleID).Describe(ctx)
	if err != nil {
		t.Fatalf("the worker keeps the %s schedule: %v", contract.MaintenanceScheduleID, err)
	}
	action, ok := sched.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || action.Workflow != contract.MaintenanceWorkflowName || len(sched.Schedule.Spec.Intervals) != 1 ||
		sched.Schedule.Spec.Intervals[0].Every != stack.Cfg.Maintenance.Interval {
		t.Fatalf("schedule %+v, action %+v: want %s every %s", sched.Schedule.Spec, sched.Schedule.Action, contract.MaintenanceWorkflowName, stack.Cfg.Maintenance.Interval)
	}

	f := newFixture(t, 3)
	orphan := f.createInvitation(t, short(), unique("Orphan.Olga"))
	alive := f.createInvitation(t, portal(), unique("Alive.Al"))
	acc, sub, group := uuid.MustParse(f.AccountID), uuid.MustParse(f.SubscriptionID), uuid.MustParse(f.GroupID)
	old := contract.InvitationInput{
		InvitationID: uuid.Must(uuid.NewV7()), AccountID: acc, AccountName: f.AccountName, SubscriptionID: sub,
		SubscriptionName: "Design Team", Application: "Adobe Creative Cloud", Role: "editor", GroupIDs: []uuid.UUID{group},
		Email: unique("Old.Otto"), FirstName: "Otto", LastName: "Old", Inviter: contract.Person{Name: "Ada Admin", Email: "ada@acme.test"},
		Settings: contract.Settings{TTL: 2 * time.Second},
	}
	createLifecycle0(ctx, t, stack.Temporal, stack.Cfg.TemporalTaskQueue, old)
	oldID := "invitation:" + old.InvitationID.String()
	if err := stack.Temporal.TerminateWorkflow(ctx, "invitation:"+orphan.ID, "", "ended by hand (test)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(orphan.ExpiresAt.Add(time.Second)))
	if got := f.invitation(t, short(), orphan.ID); got.Status != "pending" {
		t.Fatalf("the orphan is %s before the reconciler ran; want pending (nothing else closes it)", got.Status)
	}
	eventually(t, 15*time.Second, "the lifecycle-0 invitation to expire", func() bool {
		return f.invitation(t, portal(), old.InvitationID.String()).Status == "expired"
	})
	if got := describeRun(t, oldID).GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the expired lifecycle-0 run is %s; it should still wait, as such runs did", got)
	}

	run, err := stack.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "maintenance-test-" + uuid.NewString(), TaskQueue: stack.Cfg.TemporalTaskQueue,
	}, contract.MaintenanceWorkflowName, contract.MaintenanceInput{
		IdempotencyKeyTTL: 24 * time.Hour, EmailBodyRetention: 24 * time.Hour, ReconcileGrace: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	var res contract.MaintenanceResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("maintenance pass: %v", err)
	}
	if !slices.Contains(res.Reconciled, uuid.MustParse(orphan.ID)) {
		t.Fatalf("the pass released %v; want it to include %s", res.Reconciled, orphan.ID)
	}
	got := f.invitation(t, short(), orphan.ID)
	if got.Status != "expired" || !hasEvents(got, "created", "expired") {
		t.Fatalf("after the pass the orphan is %+v", got)
	}
	if ev := got.Events[len(got.Events)-1]; ev.Type != "expired" || !strings.Contains(ev.Detail, "reconciler") {
		t.Errorf("the last event %+v does not say the reconciler released it", ev)
	}
	if s := f.subscription(t); s.SeatsReserved != 1 || s.SeatsAvailable != 2 {
		t.Fatalf("after the pass, subscription %+v: want only the live invitation's seat held", s)
	}
	if got := f.invitation(t, portal(), alive.ID); got.Status != "pending" {
		t.Fatalf("the invitation whose workflow runs is %s after the pass", got.Status)
	}
	if res.Retired < 1 {
		t.Errorf("the pass retired %d expired runs of lifecycle 0, want at least the one", res.Retired)
	}
	eventually(t, 10*time.Second, "the retired run to complete", func() bool {
		return describeRun(t, oldID).GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	if got := f.invitation(t, portal(), old.InvitationID.String()); got.Status != "expired" {
		t.Errorf("the retired invitation is %s, want still expired", got.Status)
	}
}
