package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/onboarding-service/onboarding/internal/testkit/monitoring"
)

// TestObservability is issue 4's proof that support and SREs can read the service: it runs the
// stack as production does (the onboarding-worker binary, the API, a Temporal dev server with
// its Web UI), drives invitations through every outcome, and then checks
//   - that both /metrics endpoints export every metric the shipped alert rules and Grafana
//     dashboards name, with the counts the scenario implies and no id or email in a label;
//   - that Debian's Prometheus, running the shipped scrape config and rules against the stack,
//     scrapes every job, evaluates every rule without error, and raises the workflow task
//     failure alert when workflow tasks do fail, while the healthy stack raises nothing else;
//   - that each dashboard is valid Grafana JSON whose every query runs on that Prometheus and
//     names metrics the run emitted;
//   - that a visibility query on each search attribute finds exactly the right invitations;
//   - that the worker's JSON log lines about an invitation carry its ids and no secret;
//   - and it takes screenshots of the Temporal UI showing an invitation's summary, current
//     details and search attributes (test-artifacts/screenshots/temporal-ui-*.png).
func TestObservability(t *testing.T) {
	o := startObsStack(t)
	prom := startPrometheus(t, o) // before the scenario, so that it sees the counters move
	sc := driveEveryOutcome(t, o)
	t.Cleanup(func() { o.terminateUnregistered(t, sc) })

	uses, err := monitoring.ExpressionMetrics(o.Root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the rules and dashboards name %d metrics", len(uses))

	var worker, api exposition
	t.Run("exported-metrics", func(t *testing.T) {
		worker, api = o.checkBusinessMetrics(t)
		emitted := obsUnion(worker.names, api.names)
		for _, name := range slices.Sorted(maps.Keys(uses)) {
			if monitoring.Synthetic(name) {
				continue // Prometheus makes these; checked in the prometheus subtest
			}
			if !emitted[name] {
				t.Errorf("metric %s, named by %s, is exported by neither the API nor the worker", name, strings.Join(uses[name], "; "))
			}
		}
		for _, e := range []exposition{worker, api} {
			for _, problem := range e.labelProblems() {
				t.Error(problem)
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		o.checkPrometheus(t, prom, sc, uses)
	})

	t.Run("dashboards", func(t *testing.T) {
		if worker.names == nil {
			t.Skip("no scrape: exported-metrics failed")
		}
		emitted := obsUnion(worker.names, api.names)
		uids, err := monitoring.DatasourceUIDs(o.Root)
		if err != nil {
			t.Fatal(err)
		}
		dashboards, err := monitoring.LoadDashboards(o.Root)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dashboards {
			name := filepath.Base(d.File)
			if err := monitoring.Validate(d, uids); err != nil {
				t.Errorf("%s is not a valid Grafana dashboard: %v", name, err)
			}
			withData := 0
			queries := d.Queries()
			for _, q := range queries {
				metrics := monitoring.MetricNames(q.Expr)
				if len(metrics) == 0 {
					t.Errorf("%s %s: no metric in %q", name, q.Where, q.Expr)
				}
				for _, m := range metrics {
					if !emitted[m] && !monitoring.Synthetic(m) {
						t.Errorf("%s %s: metric %s was not emitted by the live run", name, q.Where, m)
					}
				}
				res, err := prom.query(dashboardQuery(q.Expr))
				if err != nil {
					t.Errorf("%s %s: Prometheus cannot run it: %v", name, q.Where, err)
				}
				if len(res) > 0 {
					withData++
				}
			}
			t.Logf("%s (%q): valid; %d queries, every metric emitted, %d of them with data in Prometheus now", name, d.Title, len(queries), withData)
		}
	})

	t.Run("visibility", func(t *testing.T) { o.checkVisibility(t, sc) })
	t.Run("logs", func(t *testing.T) { o.checkLogs(t, sc) })
	t.Run("temporal-ui", func(t *testing.T) { o.screenshotTemporalUI(t, sc) })
}

// checkVisibility lists workflows with a visibility query on each search attribute, as support
// does in the Temporal UI, and expects exactly the scenario's invitations.
func (o *obsStack) checkVisibility(t *testing.T, sc *obsScenario) {
	t.Helper()
	wf := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, "invitation:"+sc.Inv[k].ID)
		}
		slices.Sort(out)
		return out
	}
	acme, globex := sc.Acme.ID, sc.Globex.ID
	// An invitation may have several runs under its workflow ID, each listed with the search
	// attributes it had when it closed:
	//   - the lifecycle-0 run (renewed) continued as new into a lifecycle-2 run when it was
	//     renewed: its first run stays listed as ContinuedAsNew, still expired, generation 1;
	//   - a lifecycle-2 run completes with the expiry, and a renew (or revoke) of the expired
	//     invitation starts the next run: the expired invitation has two completed runs, the
	//     expiry's and the refused renew's, both expired.
	// Leaving ContinuedAsNew runs out drops the handed-over run; runs says how many are left.
	const latest = ` AND ExecutionStatus != "ContinuedAsNew"`
	cases := []struct {
		query string
		want  []string
		runs  int // the runs listed, when not one per invitation
	}{
		{`InvitationStatus = "accepted" AND AccountId = "` + acme + `"`, wf("accepted"), 0},
		{`InvitationStatus = "accepted" AND AccountId = "` + globex + `"`, wf("renewed"), 0},
		{`InvitationStatus = "declined" AND AccountId = "` + acme + `"`, wf("declined"), 0},
		{`InvitationStatus = "revoked" AND AccountId = "` + acme + `"`, wf("revoked"), 0},
		{`InvitationStatus = "pending" AND AccountId = "` + acme + `"`, wf("pending", "email_failed", "email_retried"), 0},
		{`InvitationStatus = "expired" AND AccountId = "` + globex + `"` + latest, wf("expired"), 2},
		// Without the filter, the renewed invitation's first run still says what it was then.
		{`InvitationStatus = "expired" AND AccountId = "` + globex + `"`, wf("expired", "renewed"), 3},
		{`InvitationStatus = "pending" AND AccountId = "` + globex + `"`, wf("globex_pending"), 0},
		{`DeliveryStatus = "failed"`, wf("email_failed"), 0},
		{`DeliveryStatus = "sent" AND AccountId = "` + acme + `" AND InvitationStatus = "pending"`, wf("pending", "email_retried"), 0},
		{`InvitationGeneration = 2`, wf("renewed"), 0},
		{`InvitationGeneration = 1 AND AccountId = "` + globex + `"` + latest, wf("expired", "globex_pending"), 3},
		{`InviteeEmailHash = "` + o.emailHash(t, sc.Inv["accepted"].Email) + `"`, wf("accepted"), 0},
		// The hash ignores case and surrounding spaces, as support types addresses.
		{`InviteeEmailHash = "` + o.emailHash(t, "  "+strings.ToUpper(sc.Inv["email_failed"].Email)+" ") + `"`, wf("email_failed"), 0},
		{`Application = "` + sc.Acme.Subs["acrobat"].Application + `"`, wf("pending"), 0},
		{`Application = "` + sc.Globex.Subs["figma"].Application + `"` + latest, wf("expired", "renewed", "globex_pending"), 4},
		{`SubscriptionId = "` + sc.Acme.Subs["acrobat"].ID + `"`, wf("pending"), 0},
		{`SubscriptionId = "` + sc.Globex.Subs["figma"].ID + `"` + latest, wf("expired", "renewed", "globex_pending"), 4},
		// The welcome emails' InvitationEmail workflows carry no search attributes: they are
		// not listed with the account's invitations.
		{`AccountId = "` + acme + `" AND WorkflowType = "Invitation"`, wf("accepted", "declined", "revoked", "pending", "email_failed", "email_retried"), 0},
	}
	for _, c := range cases {
		wantRuns := c.runs
		if wantRuns == 0 {
			wantRuns = len(c.want)
		}
		var got []string
		var runs int
		deadline := time.Now().Add(30 * time.Second) // visibility is eventually consistent
		for {
			got, runs = o.listWorkflows(t, c.query)
			if (slices.Equal(got, c.want) && runs == wantRuns) || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s\n  found %v\n  want  %v", c.query, got, c.want)
			continue
		}
		if runs != wantRuns {
			t.Errorf("%s: %d runs for %d invitations, want %d runs", c.query, runs, len(got), wantRuns)
		}
		t.Logf("%s -> %d invitation(s), %d run(s)", c.query, len(got), runs)
	}
}

// listWorkflows runs a visibility query and returns the distinct workflow IDs, sorted, and the
// number of runs listed.
func (o *obsStack) listWorkflows(t *testing.T, query string) ([]string, int) {
	t.Helper()
	ctx, cancel := obsContext(t)
	defer cancel()
	ids := map[string]bool{}
	runs := 0
	var token []byte
	for {
		resp, err := o.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: o.Temporal.Namespace(), Query: query, NextPageToken: token,
		})
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		for _, e := range resp.GetExecutions() {
			ids[e.GetExecution().GetWorkflowId()] = true
			runs++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return slices.Sorted(maps.Keys(ids)), runs
}

// checkLogs reads the worker's JSON log: every line is JSON with a time, level and message;
// the service's own lines about an invitation carry the invitation, account and workflow ids;
// no line carries a secret or an invitee's address.
func (o *obsStack) checkLogs(t *testing.T, sc *obsScenario) {
	t.Helper()
	secrets := map[string]string{
		"TOKEN_SECRET":       o.Env["TOKEN_SECRET"],
		"the API token":      stack.Token,
		"an invite link":     "token=",
		"a password":         "Correct-Horse-42",
		"a password hash":    "$argon2id$",
		"the Resend API key": o.Resend.APIKey,
	}
	for key, inv := range sc.Inv {
		secrets["the address of "+key] = inv.Email
	}
	own := map[string]bool{} // messages of the service's own code about an invitation
	for _, msg := range []string{"email rejected", "continuing as new", "email failure not recorded",
		"undo of an unfinished create failed", "expiry not recorded", "search attributes not updated"} {
		own[msg] = true
	}
	for _, file := range []string{o.WorkerLog, filepath.Join(o.Artifacts, "api.log")} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines, ownLines := 0, map[string]int{}
		scan := bufio.NewScanner(bytes.NewReader(data))
		scan.Buffer(make([]byte, 1<<20), 1<<20)
		for scan.Scan() {
			line := scan.Bytes()
			lines++
			var rec map[string]any
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Errorf("%s: a line that is not JSON: %.200s", filepath.Base(file), line)
				continue
			}
			if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
				t.Errorf("%s: a line without time, level or msg: %.200s", filepath.Base(file), line)
			}
			for what, secret := range secrets {
				if secret != "" && bytes.Contains(bytes.ToLower(line), bytes.ToLower([]byte(secret))) {
					t.Errorf("%s: a line carries %s: %.300s", filepath.Base(file), what, line)
				}
			}
			msg, _ := rec["msg"].(string)
			if !own[msg] {
				continue
			}
			ownLines[msg]++
			wid, _ := rec["WorkflowID"].(string)
			if wid == "" {
				wid, _ = rec["workflow_id"].(string)
			}
			iid, _ := rec["invitation_id"].(string)
			if aid, _ := rec["account_id"].(string); iid == "" || aid == "" || wid != "invitation:"+iid {
				t.Errorf("%s: %q lacks the invitation, account or workflow id: %.400s", filepath.Base(file), msg, line)
			}
		}
		t.Logf("%s: %d JSON lines; the service's own lines about invitations: %v", filepath.Base(file), lines, ownLines)
	}
	// The scenario made both kinds of the service's own lines happen.
	data, _ := os.ReadFile(o.WorkerLog)
	for _, msg := range []string{"email rejected", "continuing as new"} {
		if !bytes.Contains(data, []byte(`"msg":"`+msg+`"`)) {
			t.Errorf("the worker never logged %q", msg)
		}
	}
}
