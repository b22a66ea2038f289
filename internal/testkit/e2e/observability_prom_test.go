package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/monitoring"
)

// prometheusServer is Debian's Prometheus running the shipped configuration against the
// observability stack.
type prometheusServer struct {
	URL string
}

// startPrometheus writes a copy of deploy/observability/prometheus.yml whose targets are the
// test's processes and whose intervals are one second, next to a copy of the shipped rules, and
// runs Prometheus on it. t's cleanup stops it.
func startPrometheus(t *testing.T, o *obsStack) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: run `make prometheus` (Debian's prometheus package), as `make test` does")
	}
	shipped := filepath.Join(o.Root, monitoring.Dir)
	data, err := os.ReadFile(filepath.Join(shipped, monitoring.PrometheusConfig))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		t.Fatal("prometheus.yml has no global section")
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"

	temporalMetrics, err := url.Parse(o.Temporal.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	apiURL, _ := url.Parse(o.API.URL)
	targets := map[string]string{
		"onboarding-api":    apiURL.Host,
		"onboarding-worker": o.WorkerMetricsAddr,
		"temporal":          temporalMetrics.Host,
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	seen := map[string]bool{}
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		name, _ := job["job_name"].(string)
		target, ok := targets[name]
		if !ok {
			t.Fatalf("prometheus.yml has a job %q the test does not know how to point at the stack", name)
		}
		seen[name] = true
		job["static_configs"] = []any{map[string]any{"targets": []any{target}}}
	}
	for name := range targets {
		if !seen[name] {
			t.Errorf("prometheus.yml has no job %s", name)
		}
	}

	dir := t.TempDir()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(o.Artifacts, "prometheus.yml"), out, 0o644)
	rules, _ := filepath.Glob(filepath.Join(shipped, monitoring.RulesGlob))
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rules", filepath.Base(r)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(o.Artifacts, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--log.level=warn",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc, err := devstack.StartProcess("prometheus", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop(10 * time.Second) })
	p := &prometheusServer{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	obsEventually(t, 60*time.Second, "Prometheus to be ready", func() bool {
		select {
		case <-proc.Done():
			t.Fatalf("prometheus exited: %v (log in %s)", proc.Wait(), logFile.Name())
		default:
		}
		res, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return p
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Float is the sample's value.
func (s promSample) Float() float64 {
	str, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

// api calls Prometheus' HTTP API and decodes data into v.
func (p *prometheusServer) api(path string, params url.Values, v any) error {
	u := p.URL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	res, err := http.Get(u)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %d %s", u, res.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s", u, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

// query runs an instant query.
func (p *prometheusServer) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, nil // a scalar or string: no series
	}
	var out []promSample
	err := json.Unmarshal(data.Result, &out)
	return out, err
}

// promRule is a rule as /api/v1/rules reports it.
type promRule struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	Health         string    `json:"health"`
	LastError      string    `json:"lastError"`
	State          string    `json:"state"`
	LastEvaluation time.Time `json:"lastEvaluation"`
	Alerts         []struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
	} `json:"alerts"`
}

func (p *prometheusServer) rules() ([]promRule, error) {
	var data struct {
		Groups []struct {
			Name  string     `json:"name"`
			File  string     `json:"file"`
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &data); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// targetsUp returns each scrape job's health as Prometheus last saw it.
func (p *prometheusServer) targetsUp() (map[string]string, error) {
	var data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := p.api("/api/v1/targets", nil, &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, tg := range data.ActiveTargets {
		h := tg.Health
		if tg.LastError != "" {
			h += ": " + tg.LastError
		}
		out[tg.Labels["job"]] = h
	}
	return out, nil
}

// dashboardQuery makes a dashboard query runnable outside Grafana: its variables become what
// Grafana would put there with every value selected.
func dashboardQuery(expr string) string {
	r := strings.NewReplacer(
		"$__rate_interval", "1m", "${__rate_interval}", "1m",
		"$__interval", "15s", "${__interval}", "15s",
		"$__range", "1h", "${__range}", "1h",
	)
	expr = r.Replace(expr)
	// Remaining variables are label values of multi-value variables: match anything.
	for _, v := range []string{"$namespace", "$task_queue", "${namespace}", "${task_queue}"} {
		expr = strings.ReplaceAll(expr, v, ".*")
	}
	return expr
}

// checkPrometheus holds the shipped configuration against a real Prometheus.
func (o *obsStack) checkPrometheus(t *testing.T, prom *prometheusServer, sc *obsScenario, uses map[string][]string) {
	t.Helper()
	// Every job of the shipped scrape config is up.
	var health map[string]string
	obsEventually(t, 30*time.Second, "every scrape job to be up", func() bool {
		var err error
		if health, err = prom.targetsUp(); err != nil {
			t.Fatal(err)
		}
		for _, job := range []string{"onboarding-api", "onboarding-worker", "temporal"} {
			if health[job] != "up" {
				return false
			}
		}
		return true
	})
	t.Logf("targets: %v", health)

	// Prometheus holds every metric the rules and dashboards name.
	var missing []string
	obsEventually(t, 30*time.Second, "Prometheus to hold every metric the rules and dashboards name", func() bool {
		missing = missing[:0]
		for name := range uses {
			q := fmt.Sprintf(`count({__name__=%q})`, name)
			if name == "up" {
				q = `up{job=~"onboarding-api|onboarding-worker"} == 1`
			}
			if monitoring.Synthetic(name) && name != "up" {
				continue
			}
			res, err := prom.query(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if len(res) == 0 {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0
	})
	t.Logf("Prometheus holds all %d metrics the rules and dashboards name", len(uses))

	// Every rule evaluates without error.
	rules, err := monitoring.LoadRules(o.Root)
	if err != nil {
		t.Fatal(err)
	}
	var loaded []promRule
	obsEventually(t, 30*time.Second, "every rule to be evaluated", func() bool {
		if loaded, err = prom.rules(); err != nil {
			t.Fatal(err)
		}
		if len(loaded) != len(rules) {
			return false
		}
		for _, r := range loaded {
			if r.LastEvaluation.IsZero() || r.Health == "unknown" {
				return false
			}
		}
		return true
	})
	for _, r := range loaded {
		if r.Health != "ok" || r.LastError != "" {
			t.Errorf("rule %s: health %s, error %q", r.Name, r.Health, r.LastError)
		}
	}
	t.Logf("Prometheus loaded and evaluated %d rules, all healthy", len(loaded))

	// Workflow tasks that fail raise OnboardingWorkflowTaskFailures. The first failures of the
	// unregistered workflow happened together; a second such workflow, once Prometheus holds
	// the counter, makes the increase the rule looks for.
	obsEventually(t, 30*time.Second, "Prometheus to scrape the workflow task failures", func() bool {
		res, err := prom.query(`temporal_workflow_task_execution_failed_total{workflow_type="InvitationV0"}`)
		return err == nil && len(res) > 0
	})
	ctx, cancel := obsContext(t)
	defer cancel()
	second := sc.UnregisteredWorkflowID + "-again"
	if _, err := o.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: second, TaskQueue: obsTaskQueue}, "InvitationV0"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Client.TerminateWorkflow(ctx, second, "", "observability test: failures seen") }()
	var state string
	obsEventually(t, 60*time.Second, "OnboardingWorkflowTaskFailures to become pending", func() bool {
		if loaded, err = prom.rules(); err != nil {
			t.Fatal(err)
		}
		for _, r := range loaded {
			for _, a := range r.Alerts {
				if r.Name == "OnboardingWorkflowTaskFailures" && a.Labels["workflow_type"] == "InvitationV0" {
					state = a.State
					return true
				}
			}
		}
		return false
	})
	t.Logf("OnboardingWorkflowTaskFailures is %s for workflow_type InvitationV0", state)

	// The healthy parts of the stack raise nothing.
	for _, r := range loaded {
		switch r.Name {
		case "OnboardingNoWorkerPolling", "OnboardingAPIDown", "OnboardingAPIErrorRate",
			"OnboardingProvisioningFailures", "OnboardingWorkerDatabaseUnavailable":
			if len(r.Alerts) > 0 {
				t.Errorf("alert %s is %s on a healthy stack: %v", r.Name, r.Alerts[0].State, r.Alerts[0].Labels)
			}
		}
	}
}
