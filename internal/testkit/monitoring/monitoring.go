// Package monitoring reads the service's shipped monitoring configuration
// (deploy/observability): the Prometheus alert rules and the Grafana dashboards. It names the
// metrics their queries select, so that tests hold them against what the processes export and a
// renamed metric breaks the build instead of a dashboard or an alert.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dir is the monitoring configuration's directory, relative to the repository root.
const Dir = "deploy/observability"

// Paths of the shipped files, relative to Dir.
const (
	PrometheusConfig = "prometheus.yml"
	RulesGlob        = "rules/*.rules.yml"
	RulesTestGlob    = "rules/*.rules.test.yml"
	DashboardsGlob   = "grafana/dashboards/*.json"
)

// Rule is one alerting or recording rule.
type Rule struct {
	File        string            `yaml:"-"`
	Group       string            `yaml:"-"`
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// LoadRules reads every rule file of the configuration under root (the repository root).
func LoadRules(root string) ([]Rule, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, RulesGlob))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule files match %s", filepath.Join(root, Dir, RulesGlob))
	}
	var rules []Rule
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []Rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				r.File, r.Group = f, g.Name
				rules = append(rules, r)
			}
		}
	}
	return rules, nil
}

// Dashboard is one Grafana dashboard file, decoded far enough to check and query it.
type Dashboard struct {
	File          string
	Raw           []byte
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	SchemaVersion int             `json:"schemaVersion"`
	Editable      bool            `json:"editable"`
	Panels        []Panel         `json:"panels"`
	Templating    Templating      `json:"templating"`
	Time          *TimeRange      `json:"time"`
	Tags          []string        `json:"tags"`
	ID            json.RawMessage `json:"id"`
	Inputs        json.RawMessage `json:"__inputs"`
}

// TimeRange is a dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds a dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable. Query is a string or an object with a `query` field
// (Prometheus' variable query editor), depending on the Grafana version that saved it.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryText returns the variable's query as text.
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &obj) == nil && obj.Query != "" {
		return obj.Query
	}
	return v.Definition
}

// Panel is a dashboard panel; rows hold their collapsed panels in Panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    *GridPos    `json:"gridPos"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// GridPos places a panel on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Datasource references a data source by type and uid (or a variable such as ${datasource}).
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// LoadDashboards reads every dashboard of the configuration under root.
func LoadDashboards(root string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, DashboardsGlob))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards match %s", filepath.Join(root, Dir, DashboardsGlob))
	}
	var out []Dashboard
	for _, f := range files {
		d, err := LoadDashboard(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// LoadDashboard reads one dashboard file.
func LoadDashboard(path string) (Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", path, err)
	}
	d.File, d.Raw = path, data
	return d, nil
}

// AllPanels returns the dashboard's panels, those inside collapsed rows included.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Query is one PromQL expression of a dashboard, and where it is.
type Query struct {
	Where string // "panel <title> <refId>" or "variable <name>"
	Expr  string
}

// labelValues matches Grafana's label_values(metric, label) variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// Queries returns every PromQL expression of the dashboard: each panel target's, and each query
// variable's (label_values(metric, label) counts as its metric selector).
func (d Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{Where: fmt.Sprintf("panel %q %s", p.Title, t.RefID), Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.QueryText()
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, Query{Where: "variable " + v.Name, Expr: q})
	}
	return out
}

var (
	stringLit      = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	nameMatcher    = regexp.MustCompile(`__name__\s*=\s*"([^"]+)"`)
	braces         = regexp.MustCompile(`\{[^{}]*\}`)
	brackets       = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping       = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar     = regexp.MustCompile(`\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*`)
	identifier     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "start": true, "end": true,
	}
)

// MetricNames returns the metric names an expression selects (PromQL, with Grafana's $variables
// allowed), sorted and without duplicates. It is a lexical reading, enough for the expressions
// of dashboards and rules: function names, keywords, label matchers, grouping labels, durations
// and strings are not metrics.
func MetricNames(expr string) []string {
	var names []string
	for _, m := range nameMatcher.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
	}
	s := stringLit.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if promqlKeywords[word] {
			continue
		}
		if loc[0] > 0 {
			if prev := s[loc[0]-1]; prev >= '0' && prev <= '9' || prev == '.' {
				continue // the exponent or unit of a number: 1e3, 5m
			}
		}
		if next := strings.TrimLeft(s[loc[1]:], " \t\r\n"); strings.HasPrefix(next, "(") {
			continue // a function or aggregation
		}
		names = append(names, word)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Synthetic reports whether Prometheus itself makes the series of a metric (scrape health and
// alert state) rather than a scraped process exporting it.
func Synthetic(name string) bool {
	switch name {
	case "up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped",
		"scrape_samples_post_metric_relabeling", "scrape_series_added":
		return true
	}
	return false
}

// ExpressionMetrics returns, for every metric the rules and dashboards under root name, where
// they name it.
func ExpressionMetrics(root string) (map[string][]string, error) {
	rules, err := LoadRules(root)
	if err != nil {
		return nil, err
	}
	dashboards, err := LoadDashboards(root)
	if err != nil {
		return nil, err
	}
	uses := map[string][]string{}
	for _, r := range rules {
		name := r.Alert
		if name == "" {
			name = r.Record
		}
		for _, m := range MetricNames(r.Expr) {
			uses[m] = append(uses[m], "rule "+name)
		}
	}
	for _, d := range dashboards {
		for _, q := range d.Queries() {
			for _, m := range MetricNames(q.Expr) {
				uses[m] = append(uses[m], filepath.Base(d.File)+" "+q.Where)
			}
		}
	}
	return uses, nil
}
