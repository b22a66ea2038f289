package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// diagnose saves what the stack looked like when a scenario failed, before the stack is
// stopped and the evidence with it: goroutine dumps of the API and the worker (through their
// PPROF_ADDR), the worker's metrics (task slots, schedule-to-start), Postgres' sessions and
// ungranted locks in the bench database, the task queues' pollers and backlog, and whether raw
// Temporal still answers a StartWorkflow. It returns the directory it wrote.
func (r *runner) diagnose(key string) string {
	dir := filepath.Join(r.opts.Artifacts, "failure-"+key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	// The run's own context may be what failed (Ctrl-C): the evidence gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	save := func(name, text string) { _ = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	get := func(u string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error() + "\n"
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if r.st.apiPprof != "" {
		save("api-goroutines.txt", get("http://"+r.st.apiPprof+"/debug/pprof/goroutine?debug=2"))
		save("worker-goroutines.txt", get("http://"+r.st.workerPprof+"/debug/pprof/goroutine?debug=2"))
	}
	save("worker-metrics.txt", get(r.st.workerMetrics+"/metrics"))

	var b strings.Builder
	if r.db != nil {
		for _, q := range []string{
			`select pid, application_name, state, wait_event_type, wait_event, now() - xact_start as xact_age, left(regexp_replace(query, '\s+', ' ', 'g'), 200)
			   from pg_stat_activity where datname = current_database() order by xact_start nulls last`,
			`select l.pid, l.locktype, l.mode, l.relation::regclass::text, l.objid, a.application_name
			   from pg_locks l join pg_stat_activity a using (pid) where not l.granted and a.datname = current_database()`,
		} {
			rows, err := r.db.Query(ctx, q)
			if err != nil {
				fmt.Fprintf(&b, "%s\n  error: %v\n\n", q, err)
				continue
			}
			fmt.Fprintf(&b, "%s\n", q)
			for rows.Next() {
				vals, _ := rows.Values()
				fmt.Fprintf(&b, "  %v\n", vals)
			}
			rows.Close()
			b.WriteString("\n")
		}
	}
	save("postgres.txt", b.String())

	b.Reset()
	for _, tq := range []string{"onboarding", "onboarding-email"} {
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			d, err := r.st.tc.DescribeTaskQueue(ctx, tq, typ)
			if err != nil {
				fmt.Fprintf(&b, "%s %s: %v\n", tq, typ, err)
				continue
			}
			fmt.Fprintf(&b, "%s %s: %d pollers, status %v\n", tq, typ, len(d.GetPollers()), d.GetTaskQueueStatus())
		}
	}
	began := time.Now()
	_, err := r.st.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-probe-" + randomHex(4), TaskQueue: rawTaskQueue}, rawWorkflowType)
	fmt.Fprintf(&b, "raw StartWorkflow probe: %s, error %v\n", time.Since(began).Round(time.Millisecond), err)
	save("temporal.txt", b.String())
	return dir
}
