package deploycheck

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/monitoring"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// composeEnv satisfies the files' required variables (${VAR:?...}); nothing is read from the
// environment or an .env file, so the result does not depend on the machine.
var composeEnv = []string{
	"TOKEN_SECRET=0123456789abcdef0123456789abcdef",
	"BOOTSTRAP_API_TOKEN=bootstrap",
	"PAYLOAD_ENCRYPTION_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	"POSTGRES_PASSWORD=postgres",
}

// loadCompose loads compose files the way `docker compose -f a -f b` does (relative paths
// against the first file's directory), validating each against the Compose schema.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	p, err := loadComposePaths(paths...)
	if err != nil {
		t.Fatalf("compose %v: %v", files, err)
	}
	return p
}

func loadComposePaths(paths ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions(paths,
		cli.WithEnv(composeEnv),
		cli.WithDiscardEnvFile,
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// TestComposeLoaderRefuses shows the loader validates against the Compose schema and checks
// references, so the tests below mean something.
func TestComposeLoaderRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown service key": "services:\n  a:\n    image: x\n    replicas: 2\n",
		"wrong type":          "services:\n  a:\n    image: x\n    ports: 8080\n",
		"unknown dependency":  "services:\n  a:\n    image: x\n    depends_on: [b]\n",
		"unset required var":  "services:\n  a:\n    image: ${NOT_SET_ANYWHERE:?required}\n",
	} {
		f := filepath.Join(t.TempDir(), "compose.yaml")
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadComposePaths(f); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose project %s has no service %s (has %v)", p.Name, name, slices.Sorted(maps.Keys(p.Services)))
	}
	return s
}

func env(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// checkBindMounts requires every bind mount's source to exist.
func checkBindMounts(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: service %s mounts %s, which does not exist", p.Name, name, v.Source)
			}
		}
	}
}

// checkOnboardingCommands requires the services built from deploy/Dockerfile to run a binary
// it installs.
func checkOnboardingCommands(t *testing.T, p *types.Project) {
	t.Helper()
	info, err := ParseDockerfile(filepath.Join(repoRoot(t), Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	installed := installedBinaries(info)
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
			t.Errorf("%s: service %s builds %s", p.Name, name, s.Build.Dockerfile)
		}
		if len(s.Command) == 0 || !installed[s.Command[0]] {
			t.Errorf("%s: service %s runs %v, not a binary of the image (%v)", p.Name, name, s.Command, installed)
		}
	}
}

// devFlags returns the values of one repeated flag of the dev server's command.
func devFlags(s types.ServiceConfig, flag string) []string {
	var out []string
	for _, a := range s.Command {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

func contractSearchAttributes() map[string]string {
	out := map[string]string{}
	for name, typ := range contract.SearchAttributeTypes() {
		out[name] = typ.String()
	}
	return out
}

func TestComposeDev(t *testing.T) {
	p := loadCompose(t, ComposeFile)
	checkBindMounts(t, p)
	checkOnboardingCommands(t, p)
	for _, name := range []string{"postgres", "temporal", "migrate", "worker", "api", "prometheus"} {
		service(t, p, name)
	}
	temporal := service(t, p, "temporal")
	if want := "temporalio/temporal:" + strings.TrimPrefix(devstack.TemporalCLIVersion, "v"); temporal.Image != want {
		t.Errorf("temporal image %s, want the pinned CLI %s", temporal.Image, want)
	}
	got := map[string]string{}
	for _, sa := range devFlags(temporal, "--search-attribute") {
		name, typ, _ := strings.Cut(sa, "=")
		got[name] = typ
	}
	if want := contractSearchAttributes(); !maps.Equal(got, want) {
		t.Errorf("dev server search attributes %v, want the contract's %v", got, want)
	}
}

// TestComposeObservability: deploy/compose.yaml plus the overlay runs Prometheus with the
// rules and Grafana provisioned with the shipped dashboards.
func TestComposeObservability(t *testing.T) {
	root := repoRoot(t)
	p := loadCompose(t, ComposeFile, ComposeOverlay)
	checkBindMounts(t, p)
	prom := service(t, p, "prometheus")
	mounts := map[string]string{} // target -> source
	for _, v := range prom.Volumes {
		mounts[v.Target] = v.Source
	}
	if mounts["/etc/prometheus/prometheus.yml"] != filepath.Join(root, monitoring.Dir, monitoring.PrometheusConfig) {
		t.Errorf("prometheus does not mount %s: %v", monitoring.PrometheusConfig, mounts)
	}
	if mounts["/etc/prometheus/rules"] != filepath.Join(root, monitoring.Dir, "rules") {
		t.Errorf("prometheus does not mount the rules: %v", mounts)
	}

	g := service(t, p, "grafana")
	if _, ok := g.DependsOn["prometheus"]; !ok {
		t.Error("grafana does not depend on prometheus")
	}
	gm := map[string]string{}
	for _, v := range g.Volumes {
		gm[v.Target] = v.Source
	}
	prov, ok := gm["/etc/grafana/provisioning"]
	if !ok {
		t.Fatalf("grafana mounts no provisioning directory: %v", gm)
	}
	// The dashboard provider's path is a mount of the shipped dashboards directory.
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	data, err := os.ReadFile(filepath.Join(prov, "dashboards", "onboarding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &providers); err != nil || len(providers.Providers) == 0 {
		t.Fatalf("dashboard provisioning: %v", err)
	}
	dashDir := gm[providers.Providers[0].Options.Path]
	if dashDir != filepath.Join(root, monitoring.Dir, "grafana", "dashboards") {
		t.Errorf("the provider's path %s mounts %q, want the shipped dashboards", providers.Providers[0].Options.Path, dashDir)
	}
	dashboards, _ := filepath.Glob(filepath.Join(dashDir, "*.json"))
	if len(dashboards) == 0 {
		t.Errorf("no dashboards in %s", dashDir)
	}
	if home := env(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		rel, err := filepath.Rel(providers.Providers[0].Options.Path, home)
		if err != nil || !fileExists(filepath.Join(dashDir, rel)) {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %s is not a shipped dashboard", home)
		}
	}
	// The data source points at the prometheus service.
	ds, err := os.ReadFile(filepath.Join(prov, "datasources", "prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ds), "url: http://prometheus:9090") {
		t.Error("the Grafana data source does not point at http://prometheus:9090")
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// TestComposeProduction: the production-shaped variant runs a real Temporal server on Postgres
// with SQL visibility, schemas from temporal-sql-tool, replicas behind a load balancer.
func TestComposeProduction(t *testing.T) {
	root := repoRoot(t)
	p := loadCompose(t, ComposeProduction)
	checkBindMounts(t, p)
	checkOnboardingCommands(t, p)

	for name, s := range p.Services {
		if strings.Contains(strings.Join(s.Command, " "), "start-dev") || strings.HasPrefix(s.Image, "temporalio/temporal:") {
			t.Errorf("service %s runs the dev server", name)
		}
	}
	temporal := service(t, p, "temporal")
	image, tag, _ := strings.Cut(temporal.Image, ":")
	if image != "temporalio/server" || tag == "" {
		t.Errorf("temporal image %s, want temporalio/server:<version>", temporal.Image)
	}
	if env(temporal, "DB") != "postgres12" {
		t.Errorf("temporal DB=%s, want postgres12", env(temporal, "DB"))
	}
	dbs := []string{env(temporal, "DBNAME"), env(temporal, "VISIBILITY_DBNAME"), "onboarding"}
	if dbs[0] == "" || dbs[1] == "" || dbs[0] == dbs[1] || slices.Contains(dbs[:2], "onboarding") {
		t.Errorf("Temporal databases %v: want a database each for persistence and visibility, apart from the service's", dbs[:2])
	}
	// The dynamic config file is mounted where DYNAMIC_CONFIG_FILE_PATH points.
	dynPath := env(temporal, "DYNAMIC_CONFIG_FILE_PATH")
	mounted := false
	for _, v := range temporal.Volumes {
		if v.Target == dynPath && v.Source == filepath.Join(root, TemporalDynConfig) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("temporal: %s is not mounted at DYNAMIC_CONFIG_FILE_PATH %s", TemporalDynConfig, dynPath)
	}
	if dependsOn(temporal, "temporal-schema") != types.ServiceConditionCompletedSuccessfully {
		t.Error("temporal does not wait for temporal-schema to complete")
	}

	schema := service(t, p, "temporal-schema")
	if !strings.HasPrefix(schema.Image, "temporalio/admin-tools:"+tag) {
		t.Errorf("temporal-schema image %s, want temporalio/admin-tools:%s", schema.Image, tag)
	}
	script := strings.Join(append(slices.Clone(schema.Entrypoint), schema.Command...), " ")
	for _, want := range []string{"temporal-sql-tool", dbs[0], dbs[1], "setup-schema", "update-schema",
		"/etc/temporal/schema/postgresql/v12/temporal/versioned", "/etc/temporal/schema/postgresql/v12/visibility/versioned"} {
		if !strings.Contains(script, want) {
			t.Errorf("temporal-schema does not run %q: %s", want, script)
		}
	}
	if env(schema, "SQL_PLUGIN") != "postgres12" {
		t.Errorf("temporal-schema SQL_PLUGIN=%s", env(schema, "SQL_PLUGIN"))
	}

	sa := service(t, p, "search-attributes")
	if !slices.Equal(sa.Command, []string{"/usr/local/bin/onboarding-worker", "register-search-attributes"}) {
		t.Errorf("search-attributes runs %v", sa.Command)
	}
	if dependsOn(sa, "temporal-namespace") != types.ServiceConditionCompletedSuccessfully {
		t.Error("search-attributes does not wait for the namespace")
	}
	ns := service(t, p, "temporal-namespace")
	if !strings.Contains(strings.Join(ns.Command, " "), "namespace create -n "+env(sa, "TEMPORAL_NAMESPACE")) {
		t.Errorf("temporal-namespace does not create TEMPORAL_NAMESPACE %s: %v", env(sa, "TEMPORAL_NAMESPACE"), ns.Command)
	}
	if !slices.Equal(service(t, p, "migrate").Command, []string{"/usr/local/bin/onboarding-worker", "migrate"}) {
		t.Error("migrate does not run onboarding-worker migrate")
	}
	for _, name := range []string{"api", "worker"} {
		s := service(t, p, name)
		if s.GetScale() != 2 {
			t.Errorf("%s: %d replicas, want 2", name, s.GetScale())
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes ports: two replicas cannot share one host port (the load balancer does)", name)
		}
		for _, dep := range []string{"migrate", "search-attributes"} {
			if dependsOn(s, dep) != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for %s to complete", name, dep)
			}
		}
		if env(s, "TEMPORAL_ADDRESS") != "temporal:7233" {
			t.Errorf("%s: TEMPORAL_ADDRESS=%s", name, env(s, "TEMPORAL_ADDRESS"))
		}
	}

	lb := service(t, p, "lb")
	if len(lb.Ports) != 1 || lb.Ports[0].Target != 8080 {
		t.Errorf("lb publishes %v, want the API's 8080", lb.Ports)
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy/lb/nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if api := service(t, p, "api"); !strings.Contains(string(conf), "server api:"+strings.TrimPrefix(env(api, "HTTP_ADDR"), ":")+" resolve") {
		t.Errorf("nginx.conf's upstream is not the api service on HTTP_ADDR %s", env(api, "HTTP_ADDR"))
	}

	ui := service(t, p, "temporal-ui")
	if !strings.HasPrefix(ui.Image, "temporalio/ui:") || env(ui, "TEMPORAL_ADDRESS") != "temporal:7233" {
		t.Errorf("temporal-ui: image %s, TEMPORAL_ADDRESS %s", ui.Image, env(ui, "TEMPORAL_ADDRESS"))
	}
}

func dependsOn(s types.ServiceConfig, name string) string {
	if d, ok := s.DependsOn[name]; ok {
		return d.Condition
	}
	return ""
}
