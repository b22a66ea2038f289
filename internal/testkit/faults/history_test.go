package faults

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// historyBound is the most events one run of an invitation's workflow may hold: the workflow
// continues as new once its history passes 1000 events (workflows.maxHistoryEvents) or Temporal
// suggests it, at its next quiet moment (no email in flight, every handler finished); the slack
// covers the events of the action in progress when the bound is crossed and of the
// continue-as-new itself.
const historyBound = 1000 + 100

// TestBoundedHistory: one invitation is resent 200 times (RESEND_MIN_INTERVAL=0), another
// expires and is renewed 20 times. Every run of either workflow stays under historyBound
// events; the resent one continued as new on its own when its history filled; the renewed one
// has a run per generation (each expiry ends a run, each renew starts one); and nothing was lost
// across the runs: sends, generation, emails, events, and both can still be accepted.
func TestBoundedHistory(t *testing.T) {
	t.Parallel()
	resends := newService(t, "history-resend", map[string]string{"RESEND_MIN_INTERVAL": "0s"})
	renews := newService(t, "history-renew", map[string]string{
		"INVITATION_TTL": "3s", "INVITATION_REMINDER_BEFORE": "0s", "TEMPORAL_TASK_QUEUE": resends.taskQueue(),
	})
	resends.startAll(t)
	renews.startAPI(t)
	c := resends.client()

	t.Run("200 resends", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, c, 2)
		email := unique("Resent.Often")
		inv := f.invite(t, c, email)
		refused := 0
		for i := 0; i < 200; {
			r, err := c.call("POST", f.path("/invitations/"+inv.ID+"/resend"), nil)
			// While a full run continues as new, resends are refused with 429 and Retry-After,
			// as the contract's rate_limited says; a client waits and retries.
			if err == nil && r.Status == 429 && r.Header.Get("Retry-After") != "" && refused < 50 {
				refused++
				secs, _ := strconv.Atoi(r.Header.Get("Retry-After"))
				time.Sleep(time.Duration(secs) * time.Second)
				continue
			}
			if err != nil || r.Status != 200 {
				t.Fatalf("resend %d: %v %d %s", i+1, err, r.Status, r.Body)
			}
			i++
		}
		waitEmails(t, email, "invited you", 201, 60*time.Second)
		got := f.invitation(t, c, inv.ID)
		if got.Sends != 201 || got.count("created") != 1 {
			t.Fatalf("after 200 resends: sends %d, %d created events; want 201 sends", got.Sends, got.count("created"))
		}
		eventually(t, 30*time.Second, "201 email_sent events", func() bool {
			return f.invitation(t, c, inv.ID).count("email_sent") == 201
		})
		keys := map[string]bool{}
		for _, e := range env.resend.EmailsTo(email) {
			keys[e.IdempotencyKey] = true
		}
		if len(keys) != 201 || emailsTo(email, "invited you") != 201 {
			t.Fatalf("%d emails with %d distinct keys, want 201 of each", emailsTo(email, "invited you"), len(keys))
		}
		st := queryState(t, inv.ID)
		if st.Sends != 201 || st.Generation != 1 || st.Status != contract.StatusPending {
			t.Fatalf("workflow state after 200 resends: %+v", st)
		}
		rs := checkRuns(t, inv.ID)
		if len(rs) < 2 {
			t.Fatalf("%d runs after 200 resends: the history never continued as new", len(rs))
		}
		resends.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *inv.InviteURL))).expect(t, 200)
		checkProvisionedOnce(t, resends, f, inv.ID, email)
	})

	t.Run("20 renewals", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, c, 2)
		email := unique("Renewed.Often")
		inv := f.invite(t, renews.client(), email)
		links := []string{*inv.InviteURL}
		for gen := 1; gen <= 20; gen++ {
			waitEmails(t, email, "invited you", gen, 30*time.Second) // this generation's invite went out
			// Expired, and its run ended: a renew that comes while the run still finishes what it
			// had in flight is taken in that run (by design), so waiting for the end makes each
			// renewal start the next run, and the count below exact.
			eventually(t, 30*time.Second, fmt.Sprintf("generation %d to expire and its run to end", gen), func() bool {
				return f.invitation(t, c, inv.ID).Status == "expired" &&
					describe(t, env.tc, wfID(inv.ID)).GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			})
			// Through the short API: a renew's run takes the lifecycle durations of the API that
			// starts it.
			var renewed invitation
			renews.client().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
			links = append(links, *renewed.InviteURL)
		}
		waitEmails(t, email, "invited you", 21, 30*time.Second)
		// Accept the 21st generation before its 3 s run out; older links are dead.
		resends.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, links[0]))).expectProblem(t, 410, "invitation_expired")
		r := resends.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, links[20])))
		if r.Status != 200 {
			r.expectProblem(t, 410, "invitation_expired") // the machine was too slow for 3 s; the runs are still checked
			t.Logf("generation 21 expired before it could be accepted")
		}
		got := f.invitation(t, c, inv.ID)
		if got.count("renewed") != 20 || got.count("expired") < 20 || got.count("created") != 1 || got.Sends != 21 {
			t.Fatalf("after 20 renewals: sends %d, events renewed %d, expired %d, created %d",
				got.Sends, got.count("renewed"), got.count("expired"), got.count("created"))
		}
		if n := emailsTo(email, "invited you"); n != 21 {
			t.Fatalf("%d invite emails, want one per generation (21)", n)
		}
		rs := checkRuns(t, inv.ID)
		if len(rs) != 21 {
			t.Fatalf("%d runs after 20 renewals, want 21 (one per generation)", len(rs))
		}
		st := queryState(t, inv.ID)
		if st.Generation != 21 || st.Sends != 21 {
			t.Fatalf("workflow state after 20 renewals: %+v", st)
		}
	})
}

// checkRuns checks that every run of an invitation's workflow stays under historyBound events,
// that each ended by continuing as new or by completing expired, and that each next run started
// from the state carried on (or read from the row), and returns the runs.
func checkRuns(t *testing.T, id string) []run {
	t.Helper()
	rs := runs(t, env.tc, wfID(id))
	longest := 0
	for i, r := range rs {
		longest = max(longest, len(r.Events))
		if len(r.Events) > historyBound {
			t.Errorf("run %d of %s holds %d events, over the bound of %d", i+1, id, len(r.Events), historyBound)
		}
		last := r.Events[len(r.Events)-1]
		switch ended := last.GetEventType(); {
		case i == len(rs)-1:
		case ended == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		case ended == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED && completedAs(t, last) == contract.StatusExpired:
			// an expired invitation's run ends; the renew started the next from the row
		default:
			t.Errorf("run %d of %s ended with %s, want continued as new or completed as expired", i+1, id, ended)
		}
		if i > 0 {
			var in contract.InvitationInput
			p := r.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
			if err := dataConverter.FromPayloads(p, &in); err != nil || in.Carried == nil {
				t.Errorf("run %d of %s started without the carried state (%v)", i+1, id, err)
			}
		}
	}
	t.Logf("%s: %d runs, the longest %d events (bound %d)", id, len(rs), longest, historyBound)
	return rs
}

// completedAs is the status a completed run answered with.
func completedAs(t *testing.T, ev *historypb.HistoryEvent) contract.Status {
	t.Helper()
	var st contract.State
	if err := dataConverter.FromPayloads(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &st); err != nil {
		t.Errorf("result of a completed run: %v", err)
	}
	return st.Status
}

// queryState asks the invitation's workflow for its state (a closed one answers too).
func queryState(t *testing.T, id string) contract.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := env.tc.QueryWorkflow(ctx, wfID(id), "", contract.QueryState)
	if err != nil {
		t.Fatalf("query state of %s: %v", id, err)
	}
	var st contract.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
