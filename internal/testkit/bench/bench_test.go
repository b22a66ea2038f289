package bench

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func msd(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	for _, c := range []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{msd(7), 0.99, 7 * time.Millisecond},
		{msd(1, 2, 3, 4), 0.5, 2 * time.Millisecond},  // rank ceil(2) = 2
		{msd(1, 2, 3, 4), 0.51, 3 * time.Millisecond}, // rank ceil(2.04) = 3
		{msd(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{msd(1, 2, 3, 4), 0.01, 1 * time.Millisecond},
		{hundred, 0.50, 50 * time.Millisecond},
		{hundred, 0.95, 95 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
	} {
		if got := Percentile(c.sorted, c.q); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.sorted, c.q, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := msd(30, 10, 20, 40) // unsorted: Summarize must not rely on the order
	s := Summarize(lat, 2*time.Second)
	if s.Ops != 4 || s.PerSecond != 2 || s.Min != 10*time.Millisecond || s.Max != 40*time.Millisecond ||
		s.Mean != 25*time.Millisecond || s.P50 != 20*time.Millisecond || s.P99 != 40*time.Millisecond {
		t.Errorf("Summarize = %+v", s)
	}
	if lat[0] != 30*time.Millisecond {
		t.Error("Summarize reordered the caller's slice")
	}
	if z := Summarize(nil, time.Second); z.Ops != 0 || z.PerSecond != 0 || z.P99 != 0 {
		t.Errorf("Summarize(nil) = %+v", z)
	}
}

func TestLoadRunsEveryOperationOnceAndStopsAtTheFirstFailure(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Int32, 50)
	lat, _, err := load(context.Background(), 4, 50, func(_ context.Context, caller, i int) error {
		if caller < 0 || caller >= 4 {
			t.Errorf("caller %d out of range", caller)
		}
		seen[i].Add(1)
		calls.Add(1)
		return nil
	}, nil, nil)
	if err != nil || len(lat) != 50 || calls.Load() != 50 {
		t.Fatalf("load: %d latencies, %d calls, err %v", len(lat), calls.Load(), err)
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Errorf("operation %d ran %d times", i, seen[i].Load())
		}
	}
	boom := errors.New("boom")
	failures := 0
	_, _, err = load(context.Background(), 2, 1000, func(_ context.Context, _, i int) error {
		if i == 3 {
			return boom
		}
		return nil
	}, nil, func() { failures++ })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "operation 3") || failures != 1 {
		t.Errorf("err = %v, onFail ran %d times; want boom at operation 3, onFail once", err, failures)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tonboarding-api\nVmPeak:\t 2000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70001 kB\nThreads:\t9\n"))
	if err != nil || m.HWMKiB != 81234 || m.RSSKiB != 70001 {
		t.Errorf("parseStatus = %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("a status without VmHWM parsed")
	}
}

func TestCountEvents(t *testing.T) {
	if n, err := countEvents([]byte(`{"events":[{"eventId":"1"},{"eventId":"2"},{"eventId":"3"}]}`)); err != nil || n != 3 {
		t.Errorf("countEvents = %d, %v", n, err)
	}
	n, types, err := readHistory([]byte(`{"events":[{"eventType":"EVENT_TYPE_MARKER_RECORDED"},{"eventType":"EVENT_TYPE_MARKER_RECORDED"},{"eventType":"EVENT_TYPE_TIMER_STARTED"}]}`))
	if err != nil || n != 3 || types["MARKER_RECORDED"] != 2 || types["TIMER_STARTED"] != 1 || len(types) != 2 {
		t.Errorf("readHistory = %d, %v, %v", n, types, err)
	}
	if got := beyond(map[string]int{"A": 2, "B": 1}, map[string]int{"A": 2, "B": 1}); got != "none" {
		t.Errorf("beyond of equal counts = %q, want none", got)
	}
	if _, err := countEvents([]byte(`{"history":[]}`)); err == nil {
		t.Error("a file without events counted")
	}
}

// sampleReport is a two-phase report with fixed figures.
func sampleReport() *Report {
	st := func(perSec float64, p99ms int) Stats {
		return Stats{Ops: 100, Elapsed: time.Second, PerSecond: perSec, P50: 10 * time.Millisecond, P95: 20 * time.Millisecond, P99: time.Duration(p99ms) * time.Millisecond}
	}
	phase := func(name, title string, createRate float64, createP99 int) Phase {
		return Phase{Name: name, Title: title, Scenarios: []Scenario{
			{Key: "raw-1", Label: "raw `StartWorkflow`", Kind: kindRaw, Callers: 1, Stats: st(200, 8)},
			{Key: "raw-16", Label: "raw `StartWorkflow`", Kind: kindRaw, Callers: 16, Stats: st(400, 100)},
			{Key: "create-16", Label: "create, each caller its own subscription", Kind: kindCreate, Callers: 16, Stats: st(createRate, createP99)},
			{Key: "accept-1", Label: "accept → provisioned", Kind: kindAccept, Callers: 1, Stats: st(12, 90)},
		}, Memory: []MemoryPoint{{After: "accepts", API: Memory{RSSKiB: 51200, HWMKiB: 61440}, Worker: Memory{RSSKiB: 102400, HWMKiB: 204800}}}}
	}
	return &Report{
		Started: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Took: 7 * time.Minute, Command: "make bench",
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", MemTotal: "23.5 GiB", GoVersion: "go1.26.8", Commit: "abc1234"},
		Phases:  []Phase{phase("empty", "Empty system", 80, 150), phase("pending", "With 10000 pending invitations", 60, 300)},
		Histories: []HistoryCount{
			{Path: "happy path", Source: "live", Events: 26, Min: 23, Runs: 5, Against: "accepted",
				Types: map[string]int{"WORKFLOW_TASK_SCHEDULED": 4, "WORKFLOW_TASK_STARTED": 4, "WORKFLOW_TASK_TIMED_OUT": 1, "MARKER_RECORDED": 2}},
			{Path: "accepted", Source: "accepted.json", Events: 23,
				Types: map[string]int{"WORKFLOW_TASK_SCHEDULED": 3, "WORKFLOW_TASK_STARTED": 3, "WORKFLOW_TASK_COMPLETED": 1, "MARKER_RECORDED": 2}},
			{Path: "accepted.lifecycle0", Source: "accepted.lifecycle0.json", Events: 46},
			{Path: "rejected.before-v1", Source: "rejected.before-v1.json", Events: 18},
			{Path: "rejected", Source: "rejected.json", Events: 9},
		},
		EmailModes: []EmailMode{
			{Mode: emailModeQueued, Emails: 121, Rate: 10, Achieved: 9.8, PerWorker: []int{61, 60}, EventsMin: 17, EventsMax: 17, TasksMin: 3, TasksMax: 3,
				Update: Stats{P50: 12 * time.Millisecond, P99: 40 * time.Millisecond}, Urgent: 150 * time.Millisecond, Behind: 3},
			{Mode: emailModeLocal, Emails: 121, Rate: 10, Achieved: 9.9, PerWorker: []int{70, 51}, EventsMin: 12, EventsMax: 18, TasksMin: 2, TasksMax: 4,
				Update: Stats{P50: 5 * time.Second, P99: 8 * time.Second}, Urgent: 12 * time.Second, Behind: 118},
		},
	}
}

func TestRenderMarkdown(t *testing.T) {
	md := renderMarkdown(sampleReport())
	for _, want := range []string{
		"2026-12-02 10:00 UTC, `make bench`",
		"| create, each caller its own subscription | 16 | 100 | 80.0 | 10.0 | 20.0 | 150.0 | 0.20× | +50.0 ms |",
		"| raw `StartWorkflow` | 1 | 100 | 200.0 | 10.0 | 20.0 | 8.0 |  |  |",
		// the second phase: change against the empty system, and the ratio to its own raw
		"| create, each caller its own subscription | 16 | 100 | 60.0 | −25% | 10.0 | 20.0 | 300.0 | +100% | 0.15× |",
		"| accept → provisioned (1 caller): p99 ≤ 100 ms | 90.0 ms | met |",
		"| create, each caller its own subscription (16 callers): ops/s ≥ 0.8× raw | 0.20× | **not met** |",
		"worker RSS ≤ 150 MB (peak, VmHWM) | 210 MB | **not met** |",
		"| pending | accepts | 50 | 60 | 100 | 200 |",
		"| happy path | 5 | 23–26 | `accepted.json`: −1 WORKFLOW_TASK_COMPLETED, +1 WORKFLOW_TASK_SCHEDULED, +1 WORKFLOW_TASK_STARTED, +1 WORKFLOW_TASK_TIMED_OUT |",
		"| accepted | 23 | 46 | – |",
		"| rejected | 9 | – | 18 |",
		"| queued | 121 | 9.8 (10) | 61 + 60 | 17–17 | 3–3 | 12.0 | 40.0 | 150.0 | 3 of 120 |",
		"| local | 121 | 9.9 (10) | 70 + 51 | 12–18 | 2–4 | 5000.0 | 8000.0 | 12000.0 | 118 of 120 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "not quiet") {
		t.Error("a quiet machine (load 0) reported as busy")
	}
	r := sampleReport()
	r.OthersCPUMax = 0.4
	if !strings.Contains(renderMarkdown(r), "not quiet") {
		t.Error("a scenario beside 40% of the CPUs used by others not reported as busy")
	}
}

func TestRenderSaysWhichTemporal(t *testing.T) {
	r := sampleReport()
	if md := renderMarkdown(r); !strings.Contains(md, "a Temporal dev server") || strings.Contains(md, "cluster") {
		t.Errorf("a dev-server run's markdown does not say so:\n%s", md)
	}
	r.Temporal, r.Machine.TemporalServer = "cluster", "v1.29.1"
	md, txt := renderMarkdown(r), renderText(r)
	for _, want := range []string{"a Temporal cluster (`-temporal cluster`", "temporal-server v1.29.1's four services", "Temporal VmRSS (4 services)"} {
		if !strings.Contains(md, want) {
			t.Errorf("a cluster run's markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(txt, "temporal: cluster, temporal-server v1.29.1") {
		t.Errorf("a cluster run's text does not say so:\n%s", txt)
	}
}

func TestRenderText(t *testing.T) {
	r := sampleReport()
	r.Failure = "empty / create-16: POST /v1/accounts/x/invitations answered 503"
	txt := renderText(r)
	for _, want := range []string{"FAILED: empty / create-16", "create-16", "204800", "accepted.json",
		"local   emails 121, 9.90/s (limit 10), per worker [70 51], events 12..18, workflow tasks 2..4, update p50 5000.0 p95 0.0 p99 8000.0"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
}

func TestRewriteDocKeepsWhatPeopleWrote(t *testing.T) {
	fresh := rewriteDoc("", "## Latest run\nv1")
	if !strings.HasPrefix(fresh, "# Benchmarks") || !strings.Contains(fresh, beginMarker+"\n## Latest run\nv1\n"+endMarker) {
		t.Fatalf("new doc:\n%s", fresh)
	}
	human := "# Benchmarks\n\nIntro.\n\n" + "<!-- bench:begin: an older comment -->\nold figures\n" + endMarker + "\n\n## Findings\n\nCreate is bound by the seat row.\n"
	got := rewriteDoc(human, "new figures")
	want := "# Benchmarks\n\nIntro.\n\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\n## Findings\n\nCreate is bound by the seat row.\n"
	if got != want {
		t.Errorf("rewrite:\n%q\nwant\n%q", got, want)
	}
	if again := rewriteDoc(got, "new figures"); again != got {
		t.Errorf("a second identical rewrite changed the doc:\n%s", again)
	}
	noMarkers := "# Notes\n\nHand-written.\n"
	if got := rewriteDoc(noMarkers, "figures"); !strings.HasPrefix(got, noMarkers) || !strings.HasSuffix(got, beginMarker+"\nfigures\n"+endMarker+"\n") {
		t.Errorf("doc without markers:\n%s", got)
	}
	unterminated := "# Notes\n\n" + beginMarker + "\nhalf\n"
	if got := rewriteDoc(unterminated, "figures"); !strings.HasPrefix(got, unterminated) || strings.Count(got, endMarker) != 1 {
		t.Errorf("doc with an unterminated section lost text:\n%s", got)
	}
}

func TestCPUAccounting(t *testing.T) {
	// user nice system idle iowait irq softirq steal: busy = 100+0+50+0(irq)+10+5 = 165 ticks
	if got := machineBusy("cpu  100 0 50 9000 300 0 10 5 0 0\ncpu0 50 0 25 4500 150 0 5 2 0 0\n"); got != 1.65 {
		t.Errorf("machineBusy = %v, want 1.65", got)
	}
	// a command name with spaces and a parenthesis; utime 250 and stime 50 ticks
	stat := "4242 (onboarding (api) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 2000000 5000"
	if comm, got := processCPU(stat); got != 3 || comm != "onboarding (api) x" {
		t.Errorf("processCPU = %q, %v; want onboarding (api) x, 3", comm, got)
	}
	t0 := time.Now()
	cpus := float64(runtime.NumCPU())
	a := cpuSample{at: t0, total: 10, ours: 4}
	b := cpuSample{at: t0.Add(10 * time.Second), total: 10 + 3*cpus, ours: 4 + 2*cpus} // others: 1 s of each CPU's 10
	if got := othersShare(a, b); got < 0.0999 || got > 0.1001 {
		t.Errorf("othersShare = %v, want 0.1", got)
	}
	if got := othersShare(a, a); got != 0 {
		t.Errorf("othersShare over no time = %v", got)
	}
	a.procs = map[int]procTime{1: {"go", 1}, 2: {"onboarding-api", 1}, 3: {"idle", 1}}
	b.procs = map[int]procTime{1: {"go", 1 + 0.5*cpus}, 2: {"onboarding-api", 1 + 2*cpus}, 3: {"idle", 1}, 4: {"new", 9}}
	if got := busiestOthers(a, b, map[int]bool{2: true}); len(got) != 2 || got[0] != "new[4] 45%" || got[1] != "go[1] 5%" {
		t.Errorf("busiestOthers = %q, want new[4] 45%%, go[1] 5%%", got)
	}
}
