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

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
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
// retry-safe 503 after which the invitee's retries (as a client would make them) end in 200.
// Every accept of a link carries the update ID of its action and generation (accept-g1), so a
// retry joins the first attempt's update, or gets its outcome once it is done, however far the
// first attempt went: a 409 "already accepted" is no longer a truthful answer to a retry. It
// returns the answers in order.
func settleAccept(t *testing.T, c apiClient, token string, first acceptAnswer, within time.Duration) []response {
	t.Helper()
	if first.err != nil {
		t.Fatalf("accept: transport error %v", first.err)
	}
	answers := []response{first.r}
	deadline := time.Now().Add(within)
	for last := first.r; last.Status != 200; last = answers[len(answers)-1] {
		if !last.retrySafe() {
			t.Fatalf("accept answered %d %s (answers so far %s); want 200 or a retry-safe 503", last.Status, last.Body, statuses(answers))
		}
		if last.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %s", last.Body)
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

// checkAnsweredUser checks that the accept's 200 named the user the invitation was accepted
// as: the first attempt's outcome, even when a retry brought it.
func checkAnsweredUser(t *testing.T, svc *service, f fixture, id string, answers []response) {
	t.Helper()
	var got struct {
		UserID *string `json:"user_id"`
	}
	answers[len(answers)-1].decode(t, &got)
	inv := f.invitation(t, svc.client(), id)
	if got.UserID == nil || inv.UserID == nil || *got.UserID != *inv.UserID {
		t.Errorf("the accept answered user %v; the invitation was accepted as %v", deref(got.UserID), deref(inv.UserID))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
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
// and used seat, one acceptance event and one welcome email. (The provisioning step starts the
// welcome email's own workflow, InvitationEmail, under an ID named after the email: a
// provisioning run again starts none.)
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

// Runs of contract.Lifecycle2 provision as a local activity: inside the workflow task that
// handles the accept's update, on the worker that took that task. These tests see provisioning
// in progress as that task started (waitWorkflowTaskStarted), and read what became of it from
// the LocalActivity marker the history records once a worker completes the task
// (workflowtask_test.go).

// Timings of the worker and of Temporal the tests below reason with.
const (
	// workerStopTimeout is how long a stopping worker lets the tasks in hand run
	// (worker.stopTimeout; the worker's deadline is that plus a second's grace).
	workerStopTimeout = 19 * time.Second
	// workflowTaskTimeout is the workflow task's start-to-close timeout (Temporal's default):
	// a task whose worker went silent is given to another worker that long after it started.
	workflowTaskTimeout = 10 * time.Second
	// takeoverSlack covers a task's way to the next worker once it may have it: the poll
	// answered, the history fetched, on a busy machine.
	takeoverSlack = 2 * time.Second
)

// acceptWhenIdle waits until the invitation's workflow has nothing in flight (the invite
// email sent and recorded), sends an accept of its link in the background, and waits until a
// workflow task started since then runs: the task that handles the accept, its provisioning
// running inside it on the service's only worker. It returns where the answer arrives, when
// the accept was sent, and the started task.
func acceptWhenIdle(t *testing.T, svc *service, inv invitation) (<-chan acceptAnswer, time.Time, *workflowpb.PendingWorkflowTaskInfo) {
	t.Helper()
	waitIdle(t, env.tc, wfID(inv.ID), 30*time.Second)
	sent := time.Now()
	answer := acceptInBackground(svc.invitee(), tokenOf(t, *inv.InviteURL))
	task := waitWorkflowTaskStarted(t, env.tc, wfID(inv.ID), sent, 30*time.Second)
	return answer, sent, task
}

// provisionedBy checks that the history of the invitation's run records the provisioning
// once: one ProvisionUser marker, with a result (no failure), recorded in a workflow task that
// worker p completed. It returns the marker and the workflow tasks started since the accept
// was sent.
func provisionedBy(t *testing.T, inv invitation, p *proc, sent time.Time) (laMarker, []workflowTask) {
	t.Helper()
	events := history(t, env.tc, wfID(inv.ID), "")
	var tasks []workflowTask
	for _, w := range workflowTasks(events) {
		if !w.StartedAt.Before(sent.Truncate(time.Millisecond)) {
			tasks = append(tasks, w)
		}
	}
	markers := localActivityMarkers(t, events, "ProvisionUser")
	if len(markers) != 1 || markers[0].Failure != "" || markers[0].Task.Outcome != enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED ||
		!ranOn(markers[0].Task.StartedBy, p) {
		t.Fatalf("ProvisionUser markers %+v; want one result, recorded by a task %s (pid %d) completed; workflow tasks since the accept:%s",
			markers, p.name, p.Pid(), tasksSince(tasks, sent))
	}
	t.Logf("workflow tasks since the accept:%s", tasksSince(tasks, sent))
	return markers[0], tasks
}

// near reports whether a and b are within d of each other.
func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }

// TestWorkerKilledDuringProvisioning: the worker is SIGKILLed while it provisions the user an
// accept asked for: inside the workflow task that handles the accept (the test kit's slow
// worker holds the provisioning 4 s, within the step's 5 s attempt timeout). Nothing tells
// Temporal of a kill: the task times out after its 10 s start-to-close timeout, and a worker
// started after the kill takes it (as soon as both the timeout has passed and it polls) and
// provisions again, which is idempotent (keyed by invitation and generation). The invitee's
// accept answers 200, or a retry-safe 503 after which a retry gets 200 (the update ID gives a
// retry the first accept's answer); Postgres holds exactly one user, membership and used seat;
// one welcome email goes out. The history records the provisioning once: one ProvisionUser
// marker, in a task the new worker started no sooner than the lost task's timeout allowed and
// completed.
func TestWorkerKilledDuringProvisioning(t *testing.T) {
	t.Parallel()
	svc := newService(t, "workerkill", nil)
	first := svc.startSlowWorker(t, 4*time.Second, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Killed.Worker")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	answer, sent, lost := acceptWhenIdle(t, svc, inv)
	first.signal(t, syscall.SIGKILL)
	if exited, _ := first.exitedIn(10 * time.Second); !exited {
		t.Fatal("the worker survived SIGKILL")
	}
	killedAt := time.Now()
	lostAt := lost.GetStartedTime().AsTime()
	second := svc.startWorker(t, nil)
	ready := time.Now()

	answers := settleAccept(t, svc.invitee(), token, <-answer, 90*time.Second)
	t.Logf("accept answers: %s; settled %s after the kill", statuses(answers), time.Since(killedAt).Round(time.Second))
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	checkAnsweredUser(t, svc, f, inv.ID, answers)

	m, _ := provisionedBy(t, inv, second, sent)
	took := m.Task.StartedAt.Sub(lostAt)
	t.Logf("killed %s after the accept's task started; the new worker (ready %s after it) took the task %s after it",
		killedAt.Sub(lostAt).Round(time.Millisecond), ready.Sub(lostAt).Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	if took < workflowTaskTimeout-time.Second {
		t.Errorf("the new worker took the accept's task %s after the killed worker did: sooner than its %s timeout could tell Temporal of the kill",
			took.Round(100*time.Millisecond), workflowTaskTimeout)
	}
	if due := later(lostAt.Add(workflowTaskTimeout), ready).Add(takeoverSlack); m.Task.StartedAt.After(due) {
		t.Errorf("the new worker took the accept's task %s after the killed worker did; want it once the %s timeout passed and the worker polled (by %s)",
			took.Round(100*time.Millisecond), workflowTaskTimeout, due.Format("15:04:05.000"))
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestWorkerSIGTERMFinishesActivity: SIGTERM reaches the worker while it provisions a user
// (held 3 s, within the step's 5 s attempt timeout), inside the workflow task that handles the
// accept. The worker stops polling but finishes the task in hand: the provisioning completes,
// the task completes with its marker and the accept's outcome, and the worker exits cleanly
// well inside its 20 s deadline. The accept answers 200 at once; the history holds one
// ProvisionUser marker, from its first attempt, recorded by the task the stopping worker had
// started before the SIGTERM and completed after it.
func TestWorkerSIGTERMFinishesActivity(t *testing.T) {
	t.Parallel()
	svc := newService(t, "workerterm", nil)
	first := svc.startSlowWorker(t, 3*time.Second, nil)
	svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Graceful.Worker")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)
	token := tokenOf(t, *inv.InviteURL)

	answer, sent, task := acceptWhenIdle(t, svc, inv)
	signalled := time.Now()
	first.signal(t, syscall.SIGTERM)
	exited, err := first.exitedIn(25 * time.Second)
	took := time.Since(signalled)
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
	svc.startWorker(t, nil) // the welcome email's workflow needs a worker

	answers := settleAccept(t, svc.invitee(), token, <-answer, 60*time.Second)
	t.Logf("accept answers: %s", statuses(answers))
	if len(answers) != 1 {
		t.Errorf("accept answered %s; want 200 at once: the stopping worker completed its update", statuses(answers))
	}
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	checkAnsweredUser(t, svc, f, inv.ID, answers)
	m, _ := provisionedBy(t, inv, first, sent)
	startedAt := task.GetStartedTime().AsTime()
	if m.Attempt != 1 || !near(m.Task.StartedAt, startedAt, 10*time.Millisecond) || !m.Task.EndedAt.After(signalled) {
		t.Errorf("ProvisionUser marker from attempt %d, recorded by the task %s; want attempt 1, by the task started %s, completed after the SIGTERM (%s)",
			m.Attempt, m.Task, startedAt.Format("15:04:05.000"), signalled.Format("15:04:05.000"))
	}
}

// TestWorkerSIGTERMHandsBackActivity: SIGTERM reaches the worker while provisioning cannot
// finish on it (every attempt held 28 s, past the step's 5 s attempt timeout, so each times
// out and is retried on that worker, as a step stuck on a dead Postgres connection would be)
// and while emails wait in its email queue (rate-limited to one every 4 s, each taking 10 s at
// Resend). The retries keep the accept's workflow task on the worker, which heartbeats it
// (every 8 s it completes the task with no commands and takes the next one). The worker stops
// taking tasks of both queues at once and exits within its 20 s deadline (plus up to 2 s for
// the process's own teardown) with the provisioning unfinished: it records nothing of it. A
// local activity cannot be handed back, and the worker does not fail the task it gives up:
// Temporal gives the task to another worker when it times out, 10 s (the workflow task
// timeout) after the stopping worker last took it. What is guaranteed, and checked, is that
// the stopping worker takes no task after its 19 s stop timeout, and that the new worker
// takes the task over one workflow task timeout after that at the latest (or as soon as it is
// up and polls, if later): within 29 s of the SIGTERM, instead of whenever the step's retries
// would give up or Temporal's 30-minute limit on a heartbeating task would end it. (A kill at
// the same moment would have it taken over sooner, 10 s after the worker last took it: a
// stopping worker keeps the task its 19 s, in case the provisioning finishes.) The new worker
// provisions the user, exactly once; the accept answers 200, or a retry-safe 503 (its 20 s
// wait ran out) and then 200 on retry; and every email is sent.
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

	answer, sent, task := acceptWhenIdle(t, svc, inv)
	// A backlog of slow emails on the email queue.
	var slowAddrs []string
	for i := range 4 {
		addr := unique(fmt.Sprintf("Slow.Mail%d", i))
		slow.slowFor(addr)
		slowAddrs = append(slowAddrs, addr)
		f.invite(t, c, addr)
	}
	eventually(t, 10*time.Second, "a slow email in flight", func() bool { return slow.inFlight() > 0 })
	signalled := time.Now()
	first.signal(t, syscall.SIGTERM)
	exited, err := first.exitedIn(60 * time.Second)
	stopped := time.Now()
	took := stopped.Sub(signalled)
	if !exited {
		t.Fatalf("the worker did not exit within 60 s of SIGTERM:\n%s", first.logTail())
	}
	if err != nil {
		t.Errorf("the worker's exit after SIGTERM: %v\n%s", err, first.logTail())
	}
	// 20 s, plus the process's own teardown on a busy machine (race detector on).
	if took > 22*time.Second {
		t.Errorf("the worker took %s to stop, past its 20 s deadline; its log ends:\n%s", took.Round(100*time.Millisecond), first.logTail())
	}
	t.Logf("worker stopped %s after SIGTERM (the accept's task started %s before it)", took.Round(100*time.Millisecond),
		signalled.Sub(task.GetStartedTime().AsTime()).Round(100*time.Millisecond))
	second := svc.startWorker(t, nil)
	ready := time.Now()

	answers := settleAccept(t, svc.invitee(), token, <-answer, 90*time.Second)
	t.Logf("accept answers: %s", statuses(answers))
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	checkAnsweredUser(t, svc, f, inv.ID, answers)
	m, tasks := provisionedBy(t, inv, second, sent)
	// The tasks the stopping worker held: the accept's, and those its heartbeats took.
	var last time.Time
	for _, w := range tasks {
		if !w.StartedAt.Before(m.Task.StartedAt) {
			break
		}
		if w.StartedBy != "" && !ranOn(w.StartedBy, first) {
			t.Errorf("task %s before the new worker's: want only the stopping worker's", w)
		}
		last = w.StartedAt
	}
	if last.IsZero() {
		t.Fatalf("no task of the stopping worker in the history since the accept:%s", tasksSince(tasks, sent))
	}
	t.Logf("the stopping worker took its last task %s after SIGTERM; the new worker took over %s after that, %s after SIGTERM, %s after the old one exited",
		last.Sub(signalled).Round(100*time.Millisecond), m.Task.StartedAt.Sub(last).Round(100*time.Millisecond),
		m.Task.StartedAt.Sub(signalled).Round(100*time.Millisecond), m.Task.StartedAt.Sub(stopped).Round(100*time.Millisecond))
	if last.After(signalled.Add(workerStopTimeout + time.Second)) {
		t.Errorf("the stopping worker took a task %s after SIGTERM: it heartbeats past its %s stop timeout",
			last.Sub(signalled).Round(100*time.Millisecond), workerStopTimeout)
	}
	if due := later(last.Add(workflowTaskTimeout), ready).Add(takeoverSlack); m.Task.StartedAt.After(due) {
		t.Errorf("the new worker took the accept's task %s after SIGTERM; want it by %s: once the stopping worker's last task timed out (%s) and the new worker polled",
			m.Task.StartedAt.Sub(signalled).Round(100*time.Millisecond), due.Format("15:04:05.000"), workflowTaskTimeout)
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
