package monitoring

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// These tests check the shipped configuration on its own; internal/testkit/e2e's
// TestObservability holds it against the running service and a real Prometheus.

// repoRoot is the module's root, found from the test's directory rather than counted in "../"
// steps, so the package can move without its tests reading the wrong directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func dir(t *testing.T) string { return filepath.Join(repoRoot(t), Dir) }

// promtool returns Debian's promtool, which `make test` installs (the Makefile's prometheus
// target).
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Fatal("promtool not found: run `make prometheus` (Debian's prometheus package), as `make test` does")
	return ""
}

func runPromtool(t *testing.T, workdir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = workdir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (outcome) (rate(onboarding_invitations_completed_total{outcome="accepted", job=~"a|b"}[5m])) * 3600`,
			[]string{"onboarding_invitations_completed_total"}},
		{`histogram_quantile(0.95, sum by (le, task_queue) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`,
			[]string{"temporal_workflow_task_schedule_to_start_latency_seconds_bucket"}},
		{`(sum(rate(a_total{status=~"5.."}[5m])) / sum(rate(a_total[5m]))) > 0.05 and sum(rate(b_total[5m])) > 1e3`,
			[]string{"a_total", "b_total"}},
		{`sum(x) without (instance) / on (job) group_left (team) y offset 5m > bool 0`, []string{"x", "y"}},
		{`absent(up{job="w"} == 1) or vector(0) unless max(z:recorded:rate5m) < Inf`, []string{"up", "z:recorded:rate5m"}},
		{`{__name__="by_name_total", kind="invite"}`, []string{"by_name_total"}},
		{`sum(rate(m[${__range}])) / ignoring(le) count(n{l="}"})`, []string{"m", "n"}},
	}
	for _, c := range cases {
		if got := MetricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("MetricNames(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestPromtoolCheckConfig(t *testing.T) {
	out := runPromtool(t, dir(t), "check", "config", PrometheusConfig)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check config did not succeed:\n%s", out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(dir(t), RulesGlob))
	if len(files) == 0 {
		t.Fatal("no rule files")
	}
	runPromtool(t, dir(t), append([]string{"check", "rules"}, files...)...)
}

// TestPromtoolTestRules runs the rules' unit tests, and requires each alert to be shown firing
// by at least one of them.
func TestPromtoolTestRules(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(dir(t), RulesTestGlob))
	if len(files) == 0 {
		t.Fatal("no rule test files")
	}
	for _, f := range files {
		runPromtool(t, filepath.Dir(f), "test", "rules", filepath.Base(f))
	}

	fired := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, tc := range doc.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fired[a.Alertname] = true
				}
			}
		}
	}
	rules, err := LoadRules(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Alert != "" && !fired[r.Alert] {
			t.Errorf("alert %s has no unit test in which it fires", r.Alert)
		}
	}
	if len(fired) < 2 {
		t.Errorf("unit tests show %d alerts firing, want at least 2", len(fired))
	}
}

// githubAnchors returns the anchors GitHub gives the headings of a Markdown file.
func githubAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	anchors := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	inFence := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		slug := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")
		anchors[slug] = true
	}
	return anchors
}

// TestAlertAnnotations: every alert has a severity, a summary, a description and a runbook link
// to a section of docs/sre.md that exists.
func TestAlertAnnotations(t *testing.T) {
	root := repoRoot(t)
	rules, err := LoadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	anchors := githubAnchors(t, filepath.Join(root, "docs", "sre.md"))
	const runbookBase = "https://github.com/onboarding-service/onboarding/blob/main/docs/sre.md#"
	alerts := 0
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		alerts++
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		switch {
		case !ok:
			t.Errorf("%s: runbook_url %q is not under %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
		case !anchors[anchor]:
			t.Errorf("%s: runbook_url's anchor #%s names no heading of docs/sre.md", r.Alert, anchor)
		case anchor != strings.ToLower(r.Alert):
			t.Errorf("%s: runbook_url's anchor #%s, want the alert's own section #%s", r.Alert, anchor, strings.ToLower(r.Alert))
		}
		if !strings.HasPrefix(r.Alert, "Onboarding") {
			t.Errorf("%s: alert names start with Onboarding, so the service's alerts group together", r.Alert)
		}
	}
	// The list: email failures, workflow task failures, schedule-to-start latency,
	// provisioning failures, API 5xx rate, no worker polling.
	for _, want := range []string{"OnboardingEmailFailures", "OnboardingWorkflowTaskFailures",
		"OnboardingWorkflowTaskScheduleToStartHigh", "OnboardingActivityScheduleToStartHigh",
		"OnboardingProvisioningFailures", "OnboardingAPIErrorRate", "OnboardingNoWorkerPolling"} {
		if !slices.ContainsFunc(rules, func(r Rule) bool { return r.Alert == want }) {
			t.Errorf("no alert %s", want)
		}
	}
	t.Logf("%d alerts, each with a runbook section", alerts)
}

// provisioning reads the Grafana provisioning files: the data sources' uids and the dashboard
// providers' paths.
func provisioning(t *testing.T) (uids []string, paths []string) {
	t.Helper()
	prov := filepath.Join(dir(t), "grafana", "provisioning")
	dsFiles, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.yaml"))
	dbFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.yaml"))
	if len(dsFiles) == 0 || len(dbFiles) == 0 {
		t.Fatalf("want provisioning files in %s/datasources and %s/dashboards", prov, prov)
	}
	for _, f := range dsFiles {
		var doc struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []struct {
				Name, UID, Type, URL, Access string
			} `yaml:"datasources"`
		}
		readYAML(t, f, &doc)
		if doc.APIVersion != 1 || len(doc.Datasources) == 0 {
			t.Errorf("%s: want apiVersion 1 and data sources", f)
		}
		for _, ds := range doc.Datasources {
			if ds.Type != "prometheus" || ds.UID == "" || ds.URL == "" || ds.Name == "" {
				t.Errorf("%s: data source %+v needs name, uid, url and type prometheus", f, ds)
			}
			uids = append(uids, ds.UID)
		}
	}
	for _, f := range dbFiles {
		var doc struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Name, Type string
				Options    struct{ Path string } `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, f, &doc)
		if doc.APIVersion != 1 || len(doc.Providers) == 0 {
			t.Errorf("%s: want apiVersion 1 and providers", f)
		}
		for _, p := range doc.Providers {
			if p.Type != "file" || p.Options.Path == "" || p.Name == "" {
				t.Errorf("%s: provider %+v needs a name, type file and options.path", f, p)
			}
			paths = append(paths, p.Options.Path)
		}
	}
	return uids, paths
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestDashboards: each dashboard is a Grafana dashboard that provisioning loads as it stands,
// with unique uids, and every query parses into at least one metric.
func TestDashboards(t *testing.T) {
	uids, _ := provisioning(t)
	dashboards, err := LoadDashboards(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dashboards {
		if err := Validate(d, uids); err != nil {
			t.Error(err)
		}
		if seen[d.UID] {
			t.Errorf("%s: uid %s used twice", d.File, d.UID)
		}
		seen[d.UID] = true
		queries := d.Queries()
		if len(queries) == 0 {
			t.Errorf("%s: no queries", d.File)
		}
		for _, q := range queries {
			if len(MetricNames(q.Expr)) == 0 {
				t.Errorf("%s %s: no metric in %q", filepath.Base(d.File), q.Where, q.Expr)
			}
		}
		t.Logf("%s: %q, %d panels, %d queries", filepath.Base(d.File), d.Title, len(d.AllPanels()), len(queries))
	}
	for _, want := range []string{"onboarding-overview.json", "temporal-worker.json"} {
		if !slices.ContainsFunc(dashboards, func(d Dashboard) bool { return filepath.Base(d.File) == want }) {
			t.Errorf("no dashboard %s", want)
		}
	}
}

// TestValidateCatchesBrokenDashboards keeps Validate honest.
func TestValidateCatchesBrokenDashboards(t *testing.T) {
	good := Dashboard{File: "x.json", UID: "x", Title: "X", SchemaVersion: 39, Time: &TimeRange{"now-6h", "now"},
		Templating: Templating{List: []Variable{{Name: "datasource", Type: "datasource"}}},
		Panels: []Panel{{ID: 1, Type: "timeseries", Title: "T", GridPos: &GridPos{H: 8, W: 12},
			Datasource: &Datasource{Type: "prometheus", UID: "${datasource}"}, Targets: []Target{{RefID: "A", Expr: "up"}}}}}
	if err := Validate(good, nil); err != nil {
		t.Fatalf("a good dashboard: %v", err)
	}
	for name, mutate := range map[string]func(d *Dashboard){
		"no uid":             func(d *Dashboard) { d.UID = "" },
		"old schema":         func(d *Dashboard) { d.SchemaVersion = 16 },
		"import placeholder": func(d *Dashboard) { d.Raw = []byte(`"uid": "${DS_PROMETHEUS}"`) },
		"duplicate id":       func(d *Dashboard) { d.Panels = append(d.Panels, d.Panels[0]) },
		"off the grid":       func(d *Dashboard) { d.Panels[0].GridPos = &GridPos{H: 8, W: 12, X: 16} },
		"plugin panel":       func(d *Dashboard) { d.Panels[0].Type = "grafana-clock-panel" },
		"unknown datasource": func(d *Dashboard) { d.Panels[0].Datasource = &Datasource{Type: "prometheus", UID: "nope"} },
		"undeclared var":     func(d *Dashboard) { d.Panels[0].Datasource = &Datasource{Type: "prometheus", UID: "${ds}"} },
		"empty expr":         func(d *Dashboard) { d.Panels[0].Targets = []Target{{RefID: "A"}} },
		"repeated refId":     func(d *Dashboard) { d.Panels[0].Targets = []Target{{RefID: "A", Expr: "up"}, {RefID: "A", Expr: "up"}} },
	} {
		d := good
		d.Panels = slices.Clone(good.Panels)
		mutate(&d)
		if Validate(d, nil) == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

// TestComposeMountsProvisioning: deploy/compose.yaml with the observability overlay mounts the
// dashboards where the provider looks for them, and the rules where prometheus.yml's rule_files
// point.
func TestComposeMountsProvisioning(t *testing.T) {
	_, paths := provisioning(t)
	mounts := map[string]string{} // container path -> path relative to deploy/
	for _, file := range []string{filepath.Join(filepath.Dir(dir(t)), "compose.yaml"), filepath.Join(dir(t), "compose.yaml")} {
		var compose struct {
			Services map[string]struct {
				Volumes []string `yaml:"volumes"`
			} `yaml:"services"`
		}
		readYAML(t, file, &compose)
		for _, s := range compose.Services {
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 {
					mounts[parts[1]] = parts[0]
				}
			}
		}
	}
	deploy := filepath.Dir(dir(t))
	for _, p := range paths {
		src, ok := mounts[p]
		if !ok {
			t.Errorf("compose.yaml mounts nothing at the dashboard provider's path %s", p)
			continue
		}
		if files, _ := filepath.Glob(filepath.Join(deploy, src, "*.json")); len(files) == 0 {
			t.Errorf("compose.yaml mounts %s at %s, which holds no dashboard", src, p)
		}
	}
	for target, src := range map[string]string{
		"/etc/prometheus/prometheus.yml": "observability/prometheus.yml",
		"/etc/prometheus/rules":          "observability/rules",
		"/etc/grafana/provisioning":      "observability/grafana/provisioning",
	} {
		if got := strings.TrimPrefix(mounts[target], "./"); got != src {
			t.Errorf("compose.yaml mounts %q at %s, want %q", mounts[target], target, src)
		}
	}
}
