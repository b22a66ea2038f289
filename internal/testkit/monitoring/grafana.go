package monitoring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// MinSchemaVersion is the oldest dashboard schema accepted: Grafana 10 and later read it
// without migrating (and provisioning from files never migrates into the file).
const MinSchemaVersion = 36

// panelTypes are Grafana's built-in panel types these dashboards may use; a plugin panel would
// need installing first.
var panelTypes = map[string]bool{
	"row": true, "timeseries": true, "stat": true, "gauge": true, "bargauge": true, "table": true,
	"text": true, "heatmap": true, "histogram": true, "piechart": true, "state-timeline": true,
	"status-history": true, "alertlist": true, "dashlist": true, "logs": true,
}

// Validate checks that a dashboard is one Grafana provisions from a file as it stands: a uid and
// title, a current schema, no import-time placeholders, unique panel ids on the 24-column grid,
// known panel types, and Prometheus queries with unique refIds through a declared data source
// variable or the provisioned data source uid.
func Validate(d Dashboard, datasourceUIDs []string) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	name := filepath.Base(d.File)

	if d.UID == "" || len(d.UID) > 40 {
		fail("%s: uid %q must be 1 to 40 characters", name, d.UID)
	}
	if d.Title == "" {
		fail("%s: no title", name)
	}
	if d.SchemaVersion < MinSchemaVersion {
		fail("%s: schemaVersion %d, want at least %d", name, d.SchemaVersion, MinSchemaVersion)
	}
	if len(d.ID) > 0 && string(d.ID) != "null" {
		fail("%s: id %s must be null: Grafana assigns it, and a fixed id clashes across instances", name, d.ID)
	}
	if len(d.Inputs) > 0 || bytes.Contains(d.Raw, []byte("${DS_")) {
		fail("%s: has __inputs or ${DS_...} placeholders, which only the import UI resolves, not provisioning", name)
	}
	if d.Time == nil || d.Time.From == "" || d.Time.To == "" {
		fail("%s: no default time range", name)
	}

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Name == "" || v.Type == "" {
			fail("%s: a variable without a name or type", name)
		}
		vars[v.Name] = v.Type
		if v.Type == "query" && v.QueryText() == "" {
			fail("%s: variable %s has no query", name, v.Name)
		}
	}
	dsOK := func(ds *Datasource) error {
		if ds == nil {
			return errors.New("no datasource")
		}
		if ds.Type != "prometheus" {
			return fmt.Errorf("datasource type %q, want prometheus", ds.Type)
		}
		if v, ok := strings.CutPrefix(ds.UID, "$"); ok {
			v = strings.Trim(v, "{}")
			if vars[v] != "datasource" {
				return fmt.Errorf("datasource uid %s names no datasource variable", ds.UID)
			}
			return nil
		}
		for _, uid := range datasourceUIDs {
			if ds.UID == uid {
				return nil
			}
		}
		return fmt.Errorf("datasource uid %q is neither a variable nor a provisioned data source %v", ds.UID, datasourceUIDs)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			if err := dsOK(v.Datasource); err != nil {
				fail("%s: variable %s: %v", name, v.Name, err)
			}
		}
	}

	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		where := fmt.Sprintf("%s: panel %d %q", name, p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] {
			fail("%s: id must be positive and unique", where)
		}
		ids[p.ID] = true
		if !panelTypes[p.Type] {
			fail("%s: unknown panel type %q", where, p.Type)
		}
		if p.Title == "" {
			fail("%s: no title", where)
		}
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			fail("%s: gridPos %+v is not on the 24-column grid", where, p.GridPos)
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				fail("%s: a row has no queries", where)
			}
			continue
		}
		if p.Type != "text" && p.Type != "alertlist" && p.Type != "dashlist" && len(p.Targets) == 0 {
			fail("%s: no queries", where)
		}
		if len(p.Targets) > 0 {
			if err := dsOK(p.Datasource); err != nil {
				fail("%s: %v", where, err)
			}
		}
		refs := map[string]bool{}
		for _, t := range p.Targets {
			if t.RefID == "" || refs[t.RefID] {
				fail("%s: refId %q missing or repeated", where, t.RefID)
			}
			refs[t.RefID] = true
			if strings.TrimSpace(t.Expr) == "" {
				fail("%s %s: empty expr", where, t.RefID)
			}
			if t.Datasource != nil {
				if err := dsOK(t.Datasource); err != nil {
					fail("%s %s: %v", where, t.RefID, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// DatasourceUIDs returns the uids of the data sources the Grafana provisioning files under root
// declare.
func DatasourceUIDs(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, "grafana", "provisioning", "datasources", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Datasources []struct {
				UID string `yaml:"uid"`
			} `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, ds := range doc.Datasources {
			uids = append(uids, ds.UID)
		}
	}
	if len(uids) == 0 {
		return nil, errors.New("no provisioned data source")
	}
	return uids, nil
}
