package faults

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Worker faults: a worker killed, or asked to stop, while it provisions a user.

// acceptAnswer is the outcome of an accept call made in the background.
type acceptAnswer struct {
	r   response
	err error
	at  time.Time
}

// acceptInBackground starts an accept of token and returns where its answer arrives.
func acceptInBackground(c apiClient, token string) <-chan acceptAnswer {
	ch := make(chan acceptAnswer, 1)
	go func() {
		r, err := c.call("POST", "/v1/invitations/accept", acceptBody(token))
		ch <- acceptAnswer{r: r, err: err, at: time.Now()}
	}()
	return ch
}

// settleAccept judges an accept answer that may have met a fault: it must be 200, or a
// retry-safe 503 after which the invitee's retries (as a client would make them) end in 200 or,
// once the first attempt's provisioning has gone through, 409 invalid_state "already accepted".
// It returns the answers in order.
func settleAccept(t *testing.T, c apiClient, token string, first acceptAnswer, within time.Duration) []response {
	t.Helper()
	if first.err != nil {
		t.Fatalf("accept: transport error %v", first.err)
	}
	answers := []response{first.r}
	deadline := time.Now().Add(within)
	for last := first.r; last.Status != 200; last = answers[len(answers)-1] {
		switch {
		case last.retrySafe():
			if last.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", last.Body)
			}
		case last.Status == 409 && last.code() == "invalid_state" && len(answers) > 1:
			return answers // a retry learned that the first attempt went through
		default:
			t.Fatalf("accept answered %d %s (answers so far %s); want 200 or a retry-safe 503", last.Status, last.Body, statuses(answers))
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept still not answered after %s: %s", within, statuses(answers))
		}
		time.Sleep(time.Second)
		r, err := c.call("POST", "/v1/invitations/accept", acceptBody(token))
		if err != nil {
			t.Fatalf("accept retry: %v", err)
		}
		answers = append(answers, r)
	}
	return answers
}

func statuses(rs []response) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(r.Status))
		if c := r.code(); c != "" {
			b.WriteString(" " + c)
		}
	}
	return b.String()
}

// checkProvisionedOnce checks that an accepted invitation left exactly one user, membership
// and used seat, one acceptance event and one welcome email.
func checkProvisionedOnce(t *testing.T, svc *service, f fixture, id, email string) {
	t.Helper()
	c := svc.client()
	eventually(t, 30*time.Second, "the invitation to read accepted", func() bool {
		return f.invitation(t, c, id).Status == "accepted"
	})
	inv := f.invitation(t, c, id)
	if inv.UserID == nil || inv.count("accepted") != 1 {
		t.Fatalf("accepted invitation %+v: want a user and one accepted event", inv)
	}
	if p := provisionedFor(t, f, email); p != (provisioned{1, 1, 1}) {
		t.Fatalf("Postgres holds %+v for %s, want exactly one user, membership and seat", p, email)
	}
	s := seatsOf(t, f)
	if err := s.consistent(); err != nil {
		t.Fatal(err)
	}
	if s.Used != 1 {
		t.Fatalf("subscription %+v: want one used seat", s)
	}
	if api := f.subscription(t, c); api.SeatsUsed != 1 || api.SeatsReserved != s.PendingRows {
		t.Fatalf("API shows subscription %+v", api)
	}
	waitEmails(t, email, "Welcome", 1, 30*time.Second)
	time.Sleep(time.Second) // a doubled welcome would arrive right behind the first
	if n := emailsTo(email, "Welcome"); n != 1 {
		t.Fatalf("%d welcome emails to %s, want 1", n, email)
	}
}

// TestWorkerKilledDuringProvisioning: the worker is SIGKILLed while the accept's provisioning
// activity runs on it (the test kit's slow worker holds it there). A worker started afterwards finishes it
// once Temporal notices the loss (the activity's 30 s start-to-close timeout); the invitee's
// accept answers 200 or a retry-safe 503, and retrying answers consistently; Postgres holds
// exactly one user, membership and used seat.
func TestWorkerKilledDuringProvisioning(t *testing.T) {
	t.Parallel()
	svc := newService(t, "workerkill", nil)
	first := svc.startSlowWorker(t, 5*time.Second, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Killed.Worker")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	answer := acceptInBackground(svc.invitee(), token)
	waitActivityStarted(t, env.tc, wfID(inv.ID), "ProvisionUser", 30*time.Second)
	first.signal(t, syscall.SIGKILL)
	if exited, _ := first.exitedIn(10 * time.Second); !exited {
		t.Fatal("the worker survived SIGKILL")
	}
	killedAt := time.Now()
	second := svc.startWorker(t, nil)

	answers := settleAccept(t, svc.invitee(), token, <-answer, 90*time.Second)
	t.Logf("accept answers: %s; settled %s after the kill", statuses(answers), time.Since(killedAt).Round(time.Second))
	checkProvisionedOnce(t, svc, f, inv.ID, email)

	// The provisioning ran twice: cut off on the killed worker, then completed by the new one.
	runs := activityRuns(history(t, env.tc, wfID(inv.ID), ""), "ProvisionUser")
	if len(runs) != 1 || !runs[0].Completed || runs[0].Attempt < 2 ||
		!strings.Contains(runs[0].Identity, fmt.Sprintf(":%d", second.Pid())) {
		t.Fatalf("ProvisionUser in history: %+v; want one activity completed by the new worker (pid %d) on attempt 2 or later",
			runs, second.Pid())
	}
	if !strings.Contains(strings.ToLower(runs[0].LastFailure), "timeout") {
		t.Errorf("the retry's last failure is %q; want the start-to-close timeout that detected the kill", runs[0].LastFailure)
	}
}

// TestWorkerSIGTERMFinishesActivity: SIGTERM reaches the worker while it provisions a user for
// 5 s; it stops polling, lets the activity finish, and exits cleanly well inside its 20 s
// deadline. The provisioning completed on that worker, on its first attempt.
func TestWorkerSIGTERMFinishesActivity(t *testing.T) {
	t.Parallel()
	svc := newService(t, "workerterm", nil)
	first := svc.startSlowWorker(t, 5*time.Second, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Graceful.Worker")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	answer := acceptInBackground(svc.invitee(), token)
	waitActivityStarted(t, env.tc, wfID(inv.ID), "ProvisionUser", 30*time.Second)
	sent := time.Now()
	first.signal(t, syscall.SIGTERM)
	exited, err := first.exitedIn(25 * time.Second)
	took := time.Since(sent)
	if !exited {
		t.Fatalf("the worker did not exit within 25 s of SIGTERM:\n%s", first.logTail())
	}
	if err != nil {
		t.Fatalf("the worker's exit after SIGTERM: %v\n%s", err, first.logTail())
	}
	if took > 20*time.Second {
		t.Errorf("the worker took %s to stop, past its 20 s deadline", took.Round(100*time.Millisecond))
	}
	t.Logf("worker stopped %s after SIGTERM", took.Round(100*time.Millisecond))
	svc.startWorker(t, nil) // the accept's update completes on a workflow task, which needs a worker

	answers := settleAccept(t, svc.invitee(), token, <-answer, 60*time.Second)
	t.Logf("accept answers: %s", statuses(answers))
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	runs := activityRuns(history(t, env.tc, wfID(inv.ID), ""), "ProvisionUser")
	if len(runs) != 1 || !runs[0].Completed || runs[0].Attempt != 1 ||
		!strings.Contains(runs[0].Identity, fmt.Sprintf(":%d", first.Pid())) {
		t.Fatalf("ProvisionUser in history: %+v; want it completed by the stopping worker (pid %d) on attempt 1", runs, first.Pid())
	}
}

// TestWorkerSIGTERMHandsBackActivity: SIGTERM reaches the worker while an activity that needs
// longer than the worker's 20 s stop deadline runs (provisioning held 28 s) and while emails
// wait in its email queue (rate-limited to one every 4 s, each taking 10 s at Resend). The
// worker stops taking tasks of both queues at once and exits within its deadline (plus up to
// 2 s for the process's own teardown), handing the provisioning back (failed as cancelled by
// the shutdown, so Temporal retries it at once rather than after its 30 s timeout); a new worker
// provisions the user, exactly once, and sends every email.
func TestWorkerSIGTERMHandsBackActivity(t *testing.T) {
	t.Parallel()
	slow := newSlowResend(t, 10*time.Second)
	svc := newService(t, "workerhandback", map[string]string{"RESEND_BASE_URL": slow.URL})
	first := svc.startSlowWorker(t, 28*time.Second, map[string]string{"EMAIL_RATE_PER_SECOND": "0.25"})
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 8)
	email := unique("Handed.Back")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	answer := acceptInBackground(svc.invitee(), token)
	activity := waitActivityStarted(t, env.tc, wfID(inv.ID), "ProvisionUser", 30*time.Second)
	// A backlog of slow emails on the email queue.
	var slowAddrs []string
	for i := range 4 {
		addr := unique(fmt.Sprintf("Slow.Mail%d", i))
		slow.slowFor(addr)
		slowAddrs = append(slowAddrs, addr)
		f.invite(t, c, addr)
	}
	eventually(t, 10*time.Second, "a slow email in flight", func() bool { return slow.inFlight() > 0 })
	sent := time.Now()
	first.signal(t, syscall.SIGTERM)
	exited, err := first.exitedIn(60 * time.Second)
	took := time.Since(sent)
	if !exited {
		t.Fatalf("the worker did not exit within 60 s of SIGTERM:\n%s", first.logTail())
	}
	if err != nil {
		t.Errorf("the worker's exit after SIGTERM: %v\n%s", err, first.logTail())
	}
	// 20 s, plus the process's own teardown on a busy machine (race detector on).
	if took > 22*time.Second {
		t.Errorf("the worker took %s to stop, past its 20 s deadline", took.Round(100*time.Millisecond))
	}
	t.Logf("worker stopped %s after SIGTERM", took.Round(100*time.Millisecond))
	second := svc.startWorker(t, nil)

	answers := settleAccept(t, svc.invitee(), token, <-answer, 90*time.Second)
	t.Logf("accept answers: %s", statuses(answers))
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	runs := activityRuns(history(t, env.tc, wfID(inv.ID), ""), "ProvisionUser")
	if len(runs) != 1 || !runs[0].Completed || runs[0].Attempt != 2 ||
		!strings.Contains(runs[0].Identity, fmt.Sprintf(":%d", second.Pid())) {
		t.Fatalf("ProvisionUser in history: %+v; want it completed by the new worker (pid %d) on attempt 2", runs, second.Pid())
	}
	// Handed back: the retry started right after the shutdown, not after the 30 s timeout.
	firstStart := activity.GetLastStartedTime().AsTime()
	if gap := runs[0].StartedAt.Sub(firstStart); gap >= 30*time.Second {
		t.Errorf("the retry started %s after the first attempt: the stopping worker did not hand it back (last failure %q)",
			gap.Round(100*time.Millisecond), runs[0].LastFailure)
	}
	slow.releaseAll()
	for _, addr := range slowAddrs {
		waitEmails(t, addr, "invited you", 1, 60*time.Second)
		if n := emailsTo(addr, "invited you"); n != 1 {
			t.Errorf("%d invite emails to %s, want 1", n, addr)
		}
	}
}

// TestWorkerFatalErrorEndsTheProcess removes the namespace a running worker polls. That is a
// fatal error for the SDK's workers once it has lasted the SDK's grace period (2 minutes of
// polls answered NamespaceNotFound): they stop for good. The process must then end with a
// non-zero exit and say why, so an orchestrator restarts it, instead of idling on while it
// looks alive. (The dev server takes up to a minute to stop serving a deleted namespace.)
func TestWorkerFatalErrorEndsTheProcess(t *testing.T) {
	t.Parallel()
	c := ctx(t, 30*time.Second)
	ns := "faults-fatal-" + randomHex(4)
	if _, err := env.tc.WorkflowService().RegisterNamespace(c, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "namespace "+ns+" to be served", func() bool {
		_, err := env.tc.WorkflowService().DescribeNamespace(c, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
		return err == nil
	})
	svc := newService(t, "fatal", map[string]string{"TEMPORAL_NAMESPACE": ns})
	p := svc.startWorker(t, nil)

	if _, err := env.tc.OperatorService().DeleteNamespace(c, &operatorservice.DeleteNamespaceRequest{Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	sawFailed := false
	const patience = 5 * time.Minute
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		if exited, err := p.exitedIn(200 * time.Millisecond); exited {
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("the worker exited with %v, want a non-zero exit; log:\n%s", err, p.logTail())
			}
			if !strings.Contains(p.logTail(), "worker failed") {
				t.Errorf("the worker's log does not say why it stopped:\n%s", p.logTail())
			}
			t.Logf("worker exited with %v (healthz said failed before: %v)", err, sawFailed)
			return
		}
		if resp, err := http.Get("http://" + svc.metricsAddr + "/healthz"); err == nil {
			sawFailed = sawFailed || resp.StatusCode == http.StatusServiceUnavailable
			resp.Body.Close()
		}
	}
	t.Fatalf("the worker still runs %s after its namespace was deleted; log:\n%s", patience, p.logTail())
}
