package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// maxHappyPathEvents is the budget of the invitation's run from create to accepted (issue 10):
// a bare start, local email, signal and local provision takes 13 events.
const maxHappyPathEvents = 24

// TestHappyPathHistoryIsLean walks create → invite sent → accept → welcome sent on the real
// server and reads the run's history: within the budget, no timer that fired or was cancelled,
// no version marker, search attributes upserted only when they changed, and the welcome email
// delivered by its own workflow.
func TestHappyPathHistoryIsLean(t *testing.T) {
	f := newFixture(t, 2)
	email := unique("Lean.Lena")
	inv := f.createInvitation(t, portal(), email)
	waitEmail(t, email, "invited you", 1)
	// The invite's delivery is recorded before the accept, as it is when a person reads the email.
	eventually(t, 10*time.Second, "the invite's delivery to be recorded", func() bool {
		d := f.invitation(t, portal(), inv.ID).Delivery
		return d != nil && d.Status == "sent"
	})
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200)
	waitEmail(t, email, "Welcome", 1)
	eventually(t, 10*time.Second, "the invitation's run to complete", func() bool {
		return describeRun(t, "invitation:"+inv.ID).GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})

	events := runHistory(t, "invitation:"+inv.ID)
	if got := events[len(events)-1].GetEventType(); got != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("the run's last event is %s, want completed (the run ends with the accept)", got)
	}
	t.Logf("happy path: %d events", len(events))
	if len(events) > maxHappyPathEvents {
		t.Errorf("happy path took %d events, budget %d:\n%s", len(events), maxHappyPathEvents, eventList(events))
	}
	upserts := 0
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_TIMER_FIRED, enumspb.EVENT_TYPE_TIMER_CANCELED:
			t.Errorf("a timer the state machine did not need: %s\n%s", ev.GetEventType(), eventList(events))
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if name := ev.GetMarkerRecordedEventAttributes().GetMarkerName(); name != "LocalActivity" {
				t.Errorf("marker %q on a fresh run's path", name)
			}
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			upserts++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if typ := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(); typ != "SendEmail" {
				t.Errorf("activity %s runs as a regular activity; the Postgres steps are local", typ)
			}
		}
	}
	if upserts != 2 { // the invite's delivery (queued → sent) and the status (pending → accepted)
		t.Errorf("%d search-attribute upserts, want 2:\n%s", upserts, eventList(events))
	}

	// The email is out before its workflow records it: wait for the workflow to complete.
	welcomeID := "invitation:" + inv.ID + ":email:invitation-" + inv.ID + "-g1-welcome-1"
	eventually(t, 10*time.Second, "the welcome email's workflow to complete", func() bool {
		return describeRun(t, welcomeID).GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	welcome := runHistory(t, welcomeID)
	if got := welcome[len(welcome)-1].GetEventType(); got != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("the welcome email's workflow ended with %s", got)
	}
	t.Logf("welcome email workflow: %d events", len(welcome))
}

// TestExpiredRunEndsAndRenewStartsTheNext: the short-TTL invitation's run completes with its
// expiry; renew starts a new run under the same workflow ID; revoking an expired invitation is a
// change of its row (with its event), with no run at all.
func TestExpiredRunEndsAndRenewStartsTheNext(t *testing.T) {
	f := newFixture(t, 2)
	inv := f.createInvitation(t, short(), unique("Ended.Ed"))
	id := "invitation:" + inv.ID
	eventually(t, shortTTL+15*time.Second, "the invitation's run to complete with its expiry", func() bool {
		return describeRun(t, id).GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	if got := f.invitation(t, short(), inv.ID); got.Status != "expired" {
		t.Fatalf("status %s after the run ended, want expired", got.Status)
	}
	firstRun := describeRun(t, id).GetWorkflowExecutionInfo().GetExecution().GetRunId()

	var renewed invitation
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	if renewed.Status != "pending" || renewed.InviteURL == nil || *renewed.InviteURL == *inv.InviteURL {
		t.Fatalf("renewed invitation %+v", renewed)
	}
	next := describeRun(t, id).GetWorkflowExecutionInfo()
	if next.GetExecution().GetRunId() == firstRun || next.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("after renew, the latest run is %s (%s); want a new running one after %s", next.GetExecution().GetRunId(), next.GetStatus(), firstRun)
	}
	// Renewing the pending invitation again is refused by the new run.
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expectProblem(t, 409, "invalid_state")

	// Left to expire again, its run ends; the revoke then needs no run: the row and its event.
	eventually(t, shortTTL+15*time.Second, "the renewed invitation's run to complete with its expiry", func() bool {
		return describeRun(t, id).GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	secondRun := describeRun(t, id).GetWorkflowExecutionInfo().GetExecution().GetRunId()
	var revoked invitation
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200).decode(t, &revoked)
	if revoked.Status != "revoked" {
		t.Fatalf("revoke of an expired invitation answered %+v", revoked)
	}
	if latest := describeRun(t, id).GetWorkflowExecutionInfo().GetExecution().GetRunId(); latest != secondRun {
		t.Errorf("the revoke started run %s; an expired invitation is revoked without one", latest)
	}
	short().do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expectProblem(t, 409, "invalid_state")
	if got := f.invitation(t, short(), inv.ID); !hasEvents(got, "created", "expired", "renewed", "expired", "revoked") {
		t.Errorf("events %+v", got.Events)
	}
}

// runHistory is the latest run's history of a workflow.
func runHistory(t *testing.T, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := stack.Temporal.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		t.Fatalf("no history for %s", workflowID)
	}
	return events
}

// describeRun describes the latest run of a workflow.
func describeRun(t *testing.T, workflowID string) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := stack.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	return d
}

func eventList(events []*historypb.HistoryEvent) string {
	var b strings.Builder
	for _, ev := range events {
		b.WriteString("  " + ev.GetEventType().String() + "\n")
	}
	return b.String()
}
