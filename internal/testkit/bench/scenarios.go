package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
)

// The raw baseline: a workflow type nobody registered, on a task queue nobody polls. Starting
// it is all Temporal does for it: the start is persisted and a workflow task is queued.
const (
	rawWorkflowType = "BenchNoop"
	rawTaskQueue    = "bench-raw-unpolled"
)

// runner drives one bench run against its stack.
type runner struct {
	opts   Options
	st     *stack
	portal *portal
	fix    fixture
	db     *pgxpool.Pool
	prof   *profiler
	report *Report
	runID  string
	seq    atomic.Int64
	// created and accepted count the emails the fake Resend should have: an invite per create,
	// a welcome per accept.
	created, accepted atomic.Int64
	// ownPids are the stack's processes (Postgres backends included) seen by sampleCPU.
	ownPids map[int]bool
}

// measure runs fn as scenario key and appends it to ph.
func (r *runner) measure(ctx context.Context, ph *Phase, key, label, kind string, callers, n int, fn op, more <-chan struct{}) error {
	r.say("%s: %s, %s, %d ops", ph.Name, label, plural(callers, "caller"), n)
	before := r.sampleCPU(ctx)
	var saved string
	lat, elapsed, err := load(ctx, callers, n, fn, more, func() { saved = r.diagnose(ph.Name + "-" + key) })
	after := r.sampleCPU(ctx)
	if err != nil {
		if alive := r.st.alive(); alive != nil {
			err = fmt.Errorf("%w (%v)", err, alive)
		}
		if saved != "" {
			err = fmt.Errorf("%w; the stack's state at the failure is in %s", err, saved)
		}
		return fmt.Errorf("%s / %s: %w", ph.Name, key, err)
	}
	s := Scenario{Key: key, Label: label, Kind: kind, Callers: callers, Stats: Summarize(lat, elapsed),
		Load1: loadAverage(), OthersCPU: othersShare(before, after)}
	if s.OthersCPU >= 0.10 {
		s.Busiest = busiestOthers(before, after, r.ownPids)
	}
	ph.Scenarios = append(ph.Scenarios, s)
	r.report.OthersCPUMax = max(r.report.OthersCPUMax, s.OthersCPU)
	r.say("  %.1f ops/s, p50 %s ms, p95 %s ms, p99 %s ms (other processes: %.0f%% of the CPUs%s)",
		s.Stats.PerSecond, ms(s.Stats.P50), ms(s.Stats.P95), ms(s.Stats.P99), 100*s.OthersCPU, strings.Join(append([]string{""}, s.Busiest...), ", "))
	return nil
}

// raw measures StartWorkflow at callers callers.
func (r *runner) raw(ctx context.Context, ph *Phase, callers, n int) error {
	prefix := fmt.Sprintf("bench-raw-%s-%s-%d", r.runID, ph.Name, callers)
	return r.measure(ctx, ph, fmt.Sprintf("raw-%d", callers), "raw `StartWorkflow`", kindRaw, callers, n, func(ctx context.Context, _, i int) error {
		_, err := r.st.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", prefix, i), TaskQueue: rawTaskQueue}, rawWorkflowType)
		return err
	}, nil)
}

// email returns an address no invitation of this run has used.
func (r *runner) email() string {
	return fmt.Sprintf("bench-%s-%d@bench.test", r.runID, r.seq.Add(1))
}

// creates measures creating n invitations for new people, subscription picking each one's
// subscription from the caller and the operation's number, and returns them.
func (r *runner) creates(ctx context.Context, ph *Phase, key, label string, callers, n int, subscription func(caller, i int) string, more <-chan struct{}) ([]invitation, error) {
	var mu sync.Mutex
	out := make([]invitation, 0, n)
	err := r.measure(ctx, ph, key, label, kindCreate, callers, n, func(ctx context.Context, caller, i int) error {
		inv, err := r.portal.create(ctx, r.fix, subscription(caller, i), r.email())
		if err != nil {
			return err
		}
		r.created.Add(1)
		mu.Lock()
		out = append(out, inv)
		mu.Unlock()
		return nil
	}, more)
	return out, err
}

// accepts measures accepting invs, created beforehand, as new users.
func (r *runner) accepts(ctx context.Context, ph *Phase, key, label string, callers int, invs []invitation) error {
	return r.measure(ctx, ph, key, label, kindAccept, callers, len(invs), func(ctx context.Context, _, i int) error {
		if err := r.portal.accept(ctx, invs[i]); err != nil {
			return err
		}
		r.accepted.Add(1)
		return nil
	}, nil)
}

// phase runs every scenario once against the system as it is, and returns the invitations the
// single caller created and accepted (for the live history count).
func (r *runner) phase(ctx context.Context, name, title string) (Phase, []invitation, error) {
	o := r.opts
	ph := Phase{Name: name, Title: title}
	var err error
	if ph.Pending, err = r.pending(ctx); err != nil {
		return ph, nil, err
	}
	r.say("== %s (%d pending invitations)", title, ph.Pending)
	r.memory(&ph, "start")
	fail := func(err error) (Phase, []invitation, error) { return ph, nil, err }
	if err := r.raw(ctx, &ph, 1, o.N1); err != nil {
		return fail(err)
	}
	if err := r.raw(ctx, &ph, o.Callers, o.N); err != nil {
		return fail(err)
	}
	r.memory(&ph, "raw StartWorkflow")

	own := func(caller, _ int) string { return r.fix.Subs[caller] }
	one, err := r.creates(ctx, &ph, "create-1", "create", 1, o.N1, own, nil)
	if err != nil {
		return fail(err)
	}
	r.settle(ctx)
	var more <-chan struct{}
	if r.prof != nil && name == "empty" {
		r.prof.resetStatements(ctx)
		r.say("  profiling the API and the worker for %d s during this scenario", o.ProfileSeconds)
		more = r.prof.cpu(ctx, "create-16")
	}
	many, err := r.creates(ctx, &ph, fmt.Sprintf("create-%d", o.Callers), "create, each caller its own subscription", o.Callers, o.N, own, more)
	if err != nil {
		return fail(err)
	}
	if more != nil {
		r.prof.statementsTop(ctx, "create-16")
	}
	r.settle(ctx)
	hot := func(_, _ int) string { return r.fix.HotSub }
	if _, err := r.creates(ctx, &ph, fmt.Sprintf("create-%d-hot", o.Callers), "create, all callers into one subscription (hot seat row)", o.Callers, o.N, hot, nil); err != nil {
		return fail(err)
	}
	r.settle(ctx)
	r.memory(&ph, "creates")

	if err := r.accepts(ctx, &ph, "accept-1", "accept → provisioned", 1, one); err != nil {
		return fail(err)
	}
	r.settle(ctx)
	if err := r.accepts(ctx, &ph, fmt.Sprintf("accept-%d", o.Callers), "accept → provisioned", o.Callers, many[:min(len(many), o.N)]); err != nil {
		return fail(err)
	}
	r.settle(ctx)
	r.memory(&ph, "accepts")
	if r.prof != nil {
		r.prof.heap(ctx, name)
	}
	return ph, one, nil
}

// fill creates invitations until target are pending, at the fill concurrency, spread over
// every subscription, printing its progress.
func (r *runner) fill(ctx context.Context, target int) error {
	pending, err := r.pending(ctx)
	if err != nil {
		return err
	}
	n := target - pending
	if n <= 0 {
		return nil
	}
	subs := append(append([]string(nil), r.fix.Subs...), r.fix.HotSub)
	r.say("== filling: %d invitations at %d callers, to %d pending", n, r.opts.FillCallers, target)
	var done atomic.Int64
	stop := make(chan struct{})
	go func() {
		began := time.Now()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				r.say("  fill: %d/%d (%.0f/s)", d, n, float64(d)/time.Since(began).Seconds())
			}
		}
	}()
	ph := Phase{Name: "fill"}
	err = r.measure(ctx, &ph, "fill", "create (fill)", kindCreate, r.opts.FillCallers, n, func(ctx context.Context, _, i int) error {
		if _, err := r.portal.create(ctx, r.fix, subs[i%len(subs)], r.email()); err != nil {
			return err
		}
		r.created.Add(1)
		done.Add(1)
		return nil
	}, nil)
	close(stop)
	if err != nil {
		return err
	}
	r.report.Fill = &ph.Scenarios[0]
	r.settle(ctx)
	return nil
}

// settle waits until the work the last scenario left behind is done (every invite and welcome
// email delivered to the fake Resend), so it does not weigh on the next scenario.
func (r *runner) settle(ctx context.Context) {
	want := int(r.created.Load() + r.accepted.Load())
	began := time.Now()
	deadline := began.Add(r.opts.SettleTimeout)
	said := false
	for {
		got := len(r.st.resend.Emails())
		if got >= want {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.note(fmt.Sprintf("after %s, %d of %d expected emails had reached the fake Resend; the next scenario ran beside that backlog", r.opts.SettleTimeout, got, want))
			return
		}
		if !said && time.Since(began) > 5*time.Second {
			r.say("  waiting for emails: %d of %d delivered", got, want)
			said = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The last deliveries' workflow tasks (delivery status, search attributes) follow the send.
	time.Sleep(time.Second)
}

// memory records the API's, the worker's and Temporal's memory after step.
func (r *runner) memory(ph *Phase, step string) {
	p := MemoryPoint{After: step}
	var err error
	if p.API, err = readMemory(r.st.api.Pid()); err != nil {
		r.note(fmt.Sprintf("memory of the API: %v", err))
	}
	if p.Worker, err = readMemory(r.st.worker.Pid()); err != nil {
		r.note(fmt.Sprintf("memory of the worker: %v", err))
	}
	// A cluster's memory is its four services' together (VmHWM: the sum of their peaks).
	for _, pid := range r.st.temporalPids() {
		if m, err := readMemory(pid); err == nil {
			p.Temporal.RSSKiB += m.RSSKiB
			p.Temporal.HWMKiB += m.HWMKiB
		}
	}
	ph.Memory = append(ph.Memory, p)
}

// pending counts the pending invitations in Postgres.
func (r *runner) pending(ctx context.Context) (int, error) {
	var n int
	err := r.db.QueryRow(ctx, "select count(*) from invitations where status = 'pending'").Scan(&n)
	return n, err
}

// happyPathHistories counts the events of the runs of invs (created, invited, accepted) and
// of their welcome emails' workflows.
func (r *runner) happyPathHistories(ctx context.Context, invs []invitation) error {
	var runs, welcomes []string
	for _, inv := range invs {
		runs = append(runs, "invitation:"+inv.ID)
		for _, e := range r.st.resend.EmailsTo(inv.Email) {
			if strings.Contains(e.IdempotencyKey, "-welcome-") {
				welcomes = append(welcomes, "invitation:"+inv.ID+":email:"+e.IdempotencyKey)
			}
		}
	}
	h, err := liveHistory(ctx, r.st.tc, "created → invite sent → accepted (the invitation's run)", "accepted", runs)
	if err != nil {
		return err
	}
	r.report.Histories = append(r.report.Histories, h)
	if len(welcomes) == 0 {
		r.note("no welcome email found at the fake Resend for the accepted invitations: their workflow's history was not read")
		return nil
	}
	h, err = liveHistory(ctx, r.st.tc, "… its welcome email (a workflow of its own)", "", welcomes)
	if err != nil {
		return err
	}
	r.report.Histories = append(r.report.Histories, h)
	return nil
}

func (r *runner) say(format string, args ...any) { r.opts.Say(format, args...) }

func (r *runner) note(n string) {
	r.say("note: %s", n)
	r.report.Notes = append(r.report.Notes, n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
