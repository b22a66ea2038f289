package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The email-delivery experiment (issue 10, item 3: "emails may stay regular activities on their
// rate-limited queue or become local activities behind a limiter shared by all workers; measure
// both"). A model of the invitation's email step runs in both shapes on the bench's own
// Temporal server and Postgres, with two workers standing for two worker replicas:
//
//   - queued: the email is a regular activity on its own task queue, throttled by the server
//     (TaskQueueActivitiesPerSecond, as worker.Run sets EMAIL_RATE_PER_SECOND), ordered by task
//     priority (a welcome email's key 1 before invites' 3);
//   - local: the email is a local activity that first reserves a slot from a limiter in
//     Postgres shared by every worker (one row, a generic cell rate: each reservation takes the
//     next 1/rate slot), then sends.
//
// A burst of emailModelBurst invitations is created at once; then one welcome email (urgent)
// is sent, and the administrator edits each of the burst's invitations (an update, as revoke,
// resend or edit is) while its email waits for a slot. The send itself is modelled as
// emailModelSend of work. Measured: the rate both workers together reached, events and workflow
// tasks per run, the update's latency while the run's email waits for its slot, and how long
// the welcome email waited behind the burst.
const (
	emailModelWorkflow = "BenchEmailModel"
	emailModelUpdate   = "edit"
	emailModelBurst    = 120
	emailModelRate     = 10.0
	emailModelSend     = 20 * time.Millisecond
	emailModeQueued    = "queued"
	emailModeLocal     = "local"
)

// EmailMode is one shape's figures.
type EmailMode struct {
	Mode   string  `json:"mode"`
	Emails int     `json:"emails"`
	Rate   float64 `json:"rate_limit"`
	// Achieved is the send rate from the first send to the last; PerWorker the sends each of
	// the two workers made.
	Achieved  float64 `json:"achieved_per_second"`
	PerWorker []int   `json:"per_worker"`
	// Events and Tasks are the fewest and most history events and workflow tasks of a run.
	EventsMin int `json:"events_min"`
	EventsMax int `json:"events_max"`
	TasksMin  int `json:"tasks_min"`
	TasksMax  int `json:"tasks_max"`
	// Update is the latency of the administrator's update to a run whose email waits for its slot.
	Update Stats `json:"update"`
	// Urgent is how long the welcome email, started after the burst, took to be sent.
	Urgent time.Duration `json:"urgent_ns"`
	// Behind is how many of the burst's emails went out before the welcome email.
	Behind int           `json:"behind"`
	Took   time.Duration `json:"took_ns"`
}

type emailModelInput struct {
	Mode    string
	Account string
	Urgent  bool
}

// emailModel is the invitation's shape around its first email: the email goes out in a
// workflow goroutine while the main loop stays free for the administrator's updates.
func emailModel(ctx workflow.Context, in emailModelInput) error {
	edited := false
	if err := workflow.SetUpdateHandler(ctx, emailModelUpdate, func(workflow.Context) error {
		edited = true
		return nil
	}); err != nil {
		return err
	}
	sent := false
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer func() { sent = true }()
		if in.Mode == emailModeLocal {
			lctx := workflow.WithLocalActivityOptions(gctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: 2 * time.Minute,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
			})
			_ = workflow.ExecuteLocalActivity(lctx, "BenchSendLimited", in).Get(gctx, nil)
			return
		}
		prio := temporal.Priority{PriorityKey: 3, FairnessKey: in.Account}
		if in.Urgent {
			prio = temporal.Priority{PriorityKey: 1}
		}
		actx := workflow.WithActivityOptions(gctx, workflow.ActivityOptions{
			TaskQueue:           workflow.GetInfo(gctx).TaskQueueName + "-send",
			StartToCloseTimeout: 30 * time.Second,
			Priority:            prio,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		_ = workflow.ExecuteActivity(actx, "BenchSend", in).Get(gctx, nil)
	})
	return workflow.Await(ctx, func() bool { return sent && (edited || in.Urgent) })
}

// modelSender is one worker's sends; every worker of a run shares sends and the limiter.
type modelSender struct {
	worker   int
	sends    *modelSends
	db       *pgxpool.Pool
	limiter  string
	interval time.Duration
}

type modelSends struct {
	mu     sync.Mutex
	at     []time.Time
	worker []int
	urgent time.Time
	// failed are the sends that returned an error (the model ignores it: the run completes
	// without its email), to say why emails are missing.
	failed []string
}

// fail records a send's error.
func (s *modelSends) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, err.Error())
	return err
}

func (s *modelSender) Send(ctx context.Context, in emailModelInput) error {
	time.Sleep(emailModelSend)
	s.sends.mu.Lock()
	defer s.sends.mu.Unlock()
	now := time.Now()
	s.sends.at = append(s.sends.at, now)
	s.sends.worker = append(s.sends.worker, s.worker)
	if in.Urgent {
		s.sends.urgent = now
	}
	return nil
}

// wait waits until n emails were sent.
func (s *modelSends) wait(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		sent := len(s.at)
		s.mu.Unlock()
		if sent >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SendLimited reserves the next slot of the shared limiter, waits for it, and sends.
func (s *modelSender) SendLimited(ctx context.Context, in emailModelInput) error {
	var wait time.Duration
	if err := s.db.QueryRow(ctx, `
		insert into bench_email_limiter as l (name, next_at) values ($1, clock_timestamp() + $2::interval)
		on conflict (name) do update set next_at = greatest(l.next_at, clock_timestamp()) + $2::interval
		returning greatest(l.next_at - $2::interval - clock_timestamp(), interval '0')`,
		s.limiter, s.interval.String()).Scan(&wait); err != nil {
		return s.sends.fail(fmt.Errorf("limiter: %w", err))
	}
	select {
	case <-ctx.Done():
		return s.sends.fail(fmt.Errorf("waiting %s for the slot: %w", wait, context.Cause(ctx)))
	case <-time.After(wait):
	}
	return s.Send(ctx, in)
}

// emailModes runs the experiment in both shapes, one after the other.
func (r *runner) emailModes(ctx context.Context) error {
	if _, err := r.db.Exec(ctx, `create table if not exists bench_email_limiter (name text primary key, next_at timestamptz not null)`); err != nil {
		return err
	}
	for _, mode := range []string{emailModeQueued, emailModeLocal} {
		m, err := r.emailMode(ctx, mode)
		if err != nil {
			return fmt.Errorf("email mode %s: %w", mode, err)
		}
		r.report.EmailModes = append(r.report.EmailModes, m)
		r.say("email %s: %.1f sends/s (limit %.0f, per worker %v), %d..%d events, %d..%d workflow tasks, update p50 %s ms p99 %s ms, welcome waited %s ms behind %d",
			mode, m.Achieved, m.Rate, m.PerWorker, m.EventsMin, m.EventsMax, m.TasksMin, m.TasksMax, ms(m.Update.P50), ms(m.Update.P99), ms(m.Urgent), m.Behind)
	}
	return nil
}

func (r *runner) emailMode(ctx context.Context, mode string) (EmailMode, error) {
	began := time.Now()
	res := EmailMode{Mode: mode, Emails: emailModelBurst + 1, Rate: emailModelRate}
	queue := fmt.Sprintf("bench-email-%s-%s", r.runID, mode)
	sends := &modelSends{}
	interval := time.Duration(float64(time.Second) / emailModelRate)
	var workers []sdkworker.Worker
	defer func() {
		for _, w := range workers {
			w.Stop()
		}
	}()
	for i := range 2 {
		s := &modelSender{worker: i, sends: sends, db: r.db, limiter: queue, interval: interval}
		main := sdkworker.New(r.st.tc, queue, sdkworker.Options{Identity: fmt.Sprintf("bench-email-worker-%d", i)})
		main.RegisterWorkflowWithOptions(emailModel, workflow.RegisterOptions{Name: emailModelWorkflow})
		main.RegisterActivityWithOptions(s.SendLimited, activity.RegisterOptions{Name: "BenchSendLimited"})
		send := sdkworker.New(r.st.tc, queue+"-send", sdkworker.Options{
			Identity: fmt.Sprintf("bench-email-sender-%d", i), TaskQueueActivitiesPerSecond: emailModelRate, DisableWorkflowWorker: true,
		})
		send.RegisterActivityWithOptions(s.Send, activity.RegisterOptions{Name: "BenchSend"})
		for _, w := range []sdkworker.Worker{main, send} {
			if err := w.Start(); err != nil {
				return res, err
			}
			workers = append(workers, w)
		}
	}
	start := func(id string, in emailModelInput) error {
		_, err := r.st.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, emailModelWorkflow, in)
		return err
	}
	ids := make([]string, 0, emailModelBurst+1)
	for i := range emailModelBurst {
		ids = append(ids, fmt.Sprintf("%s-%d", queue, i))
	}
	// The burst first, as a bulk import creates it; then the welcome email; then, while the
	// burst's emails wait for their slots, the administrator's updates.
	if _, _, err := load(ctx, r.opts.Callers, emailModelBurst, func(ctx context.Context, _, i int) error {
		return start(ids[i], emailModelInput{Mode: mode, Account: "bulk"})
	}, nil, nil); err != nil {
		return res, err
	}
	urgentAt := time.Now()
	urgentID := queue + "-welcome"
	if err := start(urgentID, emailModelInput{Mode: mode, Account: "someone", Urgent: true}); err != nil {
		return res, err
	}
	// The updates go to runs whose first workflow task has run (so the local activity is in
	// flight): an update that arrives before it rides on that first task.
	if err := sends.wait(ctx, 10); err != nil {
		return res, err
	}
	var (
		mu      sync.Mutex
		updates []time.Duration
	)
	_, elapsed, err := load(ctx, emailModelBurst, emailModelBurst, func(ctx context.Context, _, i int) error {
		t0 := time.Now()
		h, err := r.st.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: ids[i], UpdateName: emailModelUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			return err
		}
		took := time.Since(t0)
		mu.Lock()
		updates = append(updates, took)
		mu.Unlock()
		return nil
	}, nil, nil)
	if err != nil {
		return res, err
	}
	res.Update = Summarize(updates, elapsed)
	ids = append(ids, urgentID)
	for _, id := range ids {
		if err := waitClosed(ctx, r.st.tc, id); err != nil {
			return res, err
		}
	}
	sends.mu.Lock()
	at, byWorker, urgent, failed := slices.Clone(sends.at), slices.Clone(sends.worker), sends.urgent, slices.Clone(sends.failed)
	sends.mu.Unlock()
	if len(at) != emailModelBurst+1 || urgent.IsZero() {
		why := ""
		if len(failed) > 0 {
			why = fmt.Sprintf("; %d sends failed, the first: %s", len(failed), failed[0])
		}
		return res, fmt.Errorf("%d emails sent, want %d (welcome sent: %v)%s", len(at), emailModelBurst+1, !urgent.IsZero(), why)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	res.Achieved = float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
	res.PerWorker = make([]int, 2)
	for _, w := range byWorker {
		res.PerWorker[w]++
	}
	res.Urgent = urgent.Sub(urgentAt)
	for _, t := range at {
		if t.Before(urgent) {
			res.Behind++
		}
	}
	for i, id := range ids {
		events, tasks, err := countRun(ctx, r.st.tc, id)
		if err != nil {
			return res, err
		}
		if i == 0 || events < res.EventsMin {
			res.EventsMin = events
		}
		if i == 0 || tasks < res.TasksMin {
			res.TasksMin = tasks
		}
		res.EventsMax, res.TasksMax = max(res.EventsMax, events), max(res.TasksMax, tasks)
	}
	res.Took = time.Since(began)
	return res, nil
}

// countRun returns a closed run's history events and completed workflow tasks.
func countRun(ctx context.Context, tc client.Client, id string) (events, tasks int, err error) {
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return 0, 0, fmt.Errorf("history of %s: %w", id, err)
		}
		events++
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			tasks++
		}
	}
	return events, tasks, nil
}
