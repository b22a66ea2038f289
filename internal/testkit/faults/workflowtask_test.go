package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
)

// Workflow tasks and local activities: runs of contract.Lifecycle2 run their Postgres steps
// (ProvisionUser among them) as local activities, inside the workflow task that needs them.
// Such a step never shows as a pending activity: while it runs, the workflow's pending workflow
// task is started on the worker running it, and once it is done the history holds one
// MARKER_RECORDED event ("LocalActivity") among the commands of the workflow task that worker
// completed.

// localActivityMarker is the marker name the Go SDK records a local activity's result under.
const localActivityMarker = "LocalActivity"

// pendingWorkflowTask returns the pending workflow task of a workflow's latest run, or nil.
func pendingWorkflowTask(c client.Client, workflowID string) (*workflowpb.PendingWorkflowTaskInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return nil, err
	}
	return d.GetPendingWorkflowTask(), nil
}

// waitIdle waits until a workflow's latest run has nothing in flight: no pending activity and
// no pending workflow task. A workflow task that starts afterwards was made by what the test
// does next.
func waitIdle(t *testing.T, c client.Client, workflowID string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, workflowID+" to have nothing in flight", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
		return err == nil && d.GetPendingWorkflowTask() == nil && len(d.GetPendingActivities()) == 0
	})
}

// waitWorkflowTaskStarted waits until a workflow task of the workflow's latest run, started no
// earlier than since, runs on a worker, and returns it as DescribeWorkflowExecution shows it.
// The description does not name the worker (the history does, once the task has ended): a
// test that needs to know runs only one worker on the service's task queue at that moment.
func waitWorkflowTaskStarted(t *testing.T, c client.Client, workflowID string, since time.Time, timeout time.Duration) *workflowpb.PendingWorkflowTaskInfo {
	t.Helper()
	var got *workflowpb.PendingWorkflowTaskInfo
	eventually(t, timeout, "a workflow task of "+workflowID+" to start on a worker", func() bool {
		wt, err := pendingWorkflowTask(c, workflowID)
		if err != nil || wt.GetState() != enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED {
			return false
		}
		got = wt
		return !wt.GetStartedTime().AsTime().Before(since.Truncate(time.Millisecond))
	})
	return got
}

// workflowTask is one attempt of a workflow task as the history records it.
type workflowTask struct {
	Attempt     int32
	ScheduledAt time.Time
	StartedAt   time.Time
	// StartedBy names the worker that took the task (its client identity,
	// "onboarding-worker@host:pid"); it is empty for a task the history holds only because it
	// timed out (the speculative task an update first runs on, lost with its worker).
	StartedBy string
	// Outcome is WORKFLOW_TASK_COMPLETED, _TIMED_OUT or _FAILED; unspecified while it runs.
	Outcome enumspb.EventType
	EndedAt time.Time
	// Why says why a task that did not complete ended (the timeout type or failure cause).
	Why string
}

func (w workflowTask) String() string {
	s := fmt.Sprintf("started %s by %s (attempt %d)", w.StartedAt.Format("15:04:05.000"), workerName(w.StartedBy), w.Attempt)
	if w.Outcome != enumspb.EVENT_TYPE_UNSPECIFIED {
		s += fmt.Sprintf(", %s at %s", strings.TrimPrefix(w.Outcome.String(), "EVENT_TYPE_WORKFLOW_TASK_"), w.EndedAt.Format("15:04:05.000"))
	}
	if w.Why != "" {
		s += " (" + w.Why + ")"
	}
	return s
}

// workerName shortens a worker identity to its pid, for messages.
func workerName(identity string) string {
	if i := strings.LastIndexByte(identity, ':'); i >= 0 {
		return "pid " + identity[i+1:]
	}
	return identity
}

// ranOn reports whether identity is the client identity of process p.
func ranOn(identity string, p *proc) bool {
	return strings.HasSuffix(identity, fmt.Sprintf(":%d", p.Pid()))
}

// laMarker is one local activity's result marker.
type laMarker struct {
	ActivityType string
	// Attempt is the attempt that produced the result, counted within the workflow task that
	// ran it (a local activity run again by another worker starts again at 1).
	Attempt int32
	// Failure is the message of the failure the marker records; "" for a result.
	Failure    string
	RecordedAt time.Time
	// Task is the workflow task whose completion recorded the marker.
	Task workflowTask
}

// workflowTasks returns every attempt of a workflow task in events, in order.
func workflowTasks(events []*historypb.HistoryEvent) []workflowTask {
	tasks, _ := scanTasks(events, "")
	return tasks
}

// localActivityMarkers returns the LocalActivity markers of activity type typ in events, each
// with the workflow task that recorded it.
func localActivityMarkers(t *testing.T, events []*historypb.HistoryEvent, typ string) []laMarker {
	t.Helper()
	_, markers := scanTasks(events, typ)
	for _, m := range markers {
		if m.ActivityType == "" {
			t.Fatalf("a LocalActivity marker without its data: %+v", m)
		}
	}
	return markers
}

func scanTasks(events []*historypb.HistoryEvent, typ string) ([]workflowTask, []laMarker) {
	var tasks []workflowTask
	scheduled := map[int64]workflowTask{} // scheduled event id -> its attempt and time
	started := map[int64]int{}            // started event id -> index in tasks
	lastCompleted := -1
	var markers []laMarker
	end := func(startedID int64, e *historypb.HistoryEvent, why string) {
		if i, ok := started[startedID]; ok {
			tasks[i].Outcome, tasks[i].EndedAt, tasks[i].Why = e.GetEventType(), e.GetEventTime().AsTime(), why
			if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				lastCompleted = i
			}
		}
	}
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = workflowTask{
				Attempt: e.GetWorkflowTaskScheduledEventAttributes().GetAttempt(), ScheduledAt: e.GetEventTime().AsTime(),
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			a := e.GetWorkflowTaskStartedEventAttributes()
			w := scheduled[a.GetScheduledEventId()]
			w.StartedAt, w.StartedBy = e.GetEventTime().AsTime(), a.GetIdentity()
			started[e.GetEventId()] = len(tasks)
			tasks = append(tasks, w)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			end(e.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId(), e, "")
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			a := e.GetWorkflowTaskTimedOutEventAttributes()
			end(a.GetStartedEventId(), e, a.GetTimeoutType().String())
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			a := e.GetWorkflowTaskFailedEventAttributes()
			end(a.GetStartedEventId(), e, a.GetCause().String()+": "+a.GetFailure().GetMessage())
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != localActivityMarker {
				continue
			}
			var data struct {
				ActivityType string
				Attempt      int32
			}
			// A marker whose data does not decode is kept, with no type: the caller fails on it.
			if err := dataConverter.FromPayloads(a.GetDetails()["data"], &data); err == nil && typ != "" && data.ActivityType != typ {
				continue
			}
			m := laMarker{ActivityType: data.ActivityType, Attempt: data.Attempt, Failure: a.GetFailure().GetMessage(), RecordedAt: e.GetEventTime().AsTime()}
			if lastCompleted >= 0 {
				m.Task = tasks[lastCompleted]
			}
			markers = append(markers, m)
		}
	}
	return tasks, markers
}

// tasksSince describes the workflow tasks started at or after since, for messages and logs.
func tasksSince(tasks []workflowTask, since time.Time) string {
	var b strings.Builder
	for _, w := range tasks {
		if w.StartedAt.Before(since.Truncate(time.Millisecond)) {
			continue
		}
		b.WriteString("\n\t" + w.String())
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}
