package faults

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/onboarding-service/onboarding/workflows/contract"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Temporal helpers: what the dev server knows of an invitation's workflow.

// dataConverter decodes payloads: the tests' services run without payload encryption.
var dataConverter = converter.GetDefaultDataConverter()

// wfID is the workflow ID of an invitation.
func wfID(invitationID string) string {
	return contract.InvitationWorkflowID(uuid.MustParse(invitationID))
}

// history returns the events of one run (runID "" is the latest).
func history(t *testing.T, c client.Client, workflowID, runID string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s/%s: %v", workflowID, runID, err)
		}
		events = append(events, e)
	}
	return events
}

// run is one run of a workflow with its history.
type run struct {
	RunID  string
	Events []*historypb.HistoryEvent
}

// runs returns every run of a workflow ID, oldest first: the latest run and those it continued
// as new from (followed through the history, which is never stale), and any other run under the
// same ID that visibility lists (a renew after the expiry ended a run starts a fresh one).
func runs(t *testing.T, c client.Client, workflowID string) []run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	var out []run
	add := func(runID string) []*historypb.HistoryEvent {
		if seen[runID] {
			return nil
		}
		seen[runID] = true
		events := history(t, c, workflowID, runID)
		out = append(out, run{RunID: runID, Events: events})
		return events
	}
	var runIDs []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", workflowID), NextPageToken: token,
		})
		if err != nil {
			t.Fatalf("list runs of %s: %v", workflowID, err)
		}
		for _, info := range resp.GetExecutions() {
			runIDs = append(runIDs, info.GetExecution().GetRunId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	for runID := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); runID != ""; {
		events := add(runID)
		if events == nil {
			break
		}
		runID = events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
	}
	for _, runID := range runIDs {
		add(runID)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Events[0].GetEventTime().AsTime().Before(out[j].Events[0].GetEventTime().AsTime())
	})
	return out
}

// describe returns the raw description of a workflow's latest run.
func describe(t *testing.T, c client.Client, workflowID string) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	return d.GetWorkflowExecutionInfo()
}

// pendingActivity returns the pending activity of type typ of a workflow, or nil.
func pendingActivity(c client.Client, workflowID, typ string) *workflowpb.PendingActivityInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return nil
	}
	for _, a := range d.GetPendingActivities() {
		if a.GetActivityType().GetName() == typ {
			return a
		}
	}
	return nil
}

// waitActivityStarted waits until an activity of type typ runs on a worker.
func waitActivityStarted(t *testing.T, c client.Client, workflowID, typ string, timeout time.Duration) *workflowpb.PendingActivityInfo {
	t.Helper()
	var got *workflowpb.PendingActivityInfo
	eventually(t, timeout, typ+" to start on a worker", func() bool {
		got = pendingActivity(c, workflowID, typ)
		return got != nil && got.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED
	})
	return got
}

// searchKeyword returns a keyword search attribute of a workflow's latest run.
func searchKeyword(t *testing.T, c client.Client, workflowID string, key temporal.SearchAttributeKeyKeyword) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflow(ctx, workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	v, _ := d.TypedSearchAttributes.GetKeyword(key)
	return v
}

// activityRuns returns, for each activity of type typ in events, the started event's attempt
// and identity and whether it completed.
type activityRun struct {
	Attempt     int32
	Identity    string
	LastFailure string
	Completed   bool
	Failed      bool
	StartedAt   time.Time
	EndedAt     time.Time
}

func activityRuns(events []*historypb.HistoryEvent, typ string) []activityRun {
	scheduled := map[int64]bool{}
	started := map[int64]int{} // started event id -> index in out
	var out []activityRun
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == typ {
				scheduled[e.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			if scheduled[a.GetScheduledEventId()] {
				started[e.GetEventId()] = len(out)
				out = append(out, activityRun{Attempt: a.GetAttempt(), Identity: a.GetIdentity(),
					LastFailure: a.GetLastFailure().GetMessage(), StartedAt: e.GetEventTime().AsTime()})
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if i, ok := started[e.GetActivityTaskCompletedEventAttributes().GetStartedEventId()]; ok {
				out[i].Completed, out[i].EndedAt = true, e.GetEventTime().AsTime()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			if i, ok := started[e.GetActivityTaskFailedEventAttributes().GetStartedEventId()]; ok {
				out[i].Failed, out[i].EndedAt = true, e.GetEventTime().AsTime()
			}
		}
	}
	return out
}
