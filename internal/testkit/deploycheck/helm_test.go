package deploycheck

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// helmStore is a persistence store of the Temporal chart (0.72) as the values set it.
type helmStore struct {
	Driver string `yaml:"driver"`
	SQL    struct {
		Driver          string `yaml:"driver"`
		Host            string `yaml:"host"`
		Port            int    `yaml:"port"`
		Database        string `yaml:"database"`
		User            string `yaml:"user"`
		ExistingSecret  string `yaml:"existingSecret"`
		MaxConns        int    `yaml:"maxConns"`
		MaxIdleConns    int    `yaml:"maxIdleConns"`
		MaxConnLifetime string `yaml:"maxConnLifetime"`
	} `yaml:"sql"`
}

type enabled struct {
	Enabled bool `yaml:"enabled"`
}

// helmValues covers what deploy/helm/temporal-values.yaml sets; decoded with unknown keys
// refused, so a key outside it (a typo, or a key the chart does not have at this level) fails.
type helmValues struct {
	Server struct {
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
		ReplicaCount int `yaml:"replicaCount"`
		Metrics      struct {
			ServiceMonitor enabled `yaml:"serviceMonitor"`
		} `yaml:"metrics"`
		Config struct {
			NumHistoryShards int `yaml:"numHistoryShards"`
			Persistence      struct {
				DefaultStore string    `yaml:"defaultStore"`
				Default      helmStore `yaml:"default"`
				Visibility   helmStore `yaml:"visibility"`
			} `yaml:"persistence"`
			Namespaces struct {
				Create    bool `yaml:"create"`
				Namespace []struct {
					Name      string `yaml:"name"`
					Retention string `yaml:"retention"`
				} `yaml:"namespace"`
			} `yaml:"namespaces"`
		} `yaml:"config"`
		DynamicConfig dynamicConfig `yaml:"dynamicConfig"`
	} `yaml:"server"`
	Cassandra     enabled `yaml:"cassandra"`
	MySQL         enabled `yaml:"mysql"`
	PostgreSQL    enabled `yaml:"postgresql"`
	Elasticsearch enabled `yaml:"elasticsearch"`
	Prometheus    enabled `yaml:"prometheus"`
	Grafana       enabled `yaml:"grafana"`
	Schema        struct {
		CreateDatabase enabled `yaml:"createDatabase"`
		Setup          enabled `yaml:"setup"`
		Update         enabled `yaml:"update"`
	} `yaml:"schema"`
	Web                        enabled           `yaml:"web"`
	OnboardingSearchAttributes map[string]string `yaml:"onboardingSearchAttributes"`
}

func TestHelmValues(t *testing.T) {
	root := repoRoot(t)
	var v helmValues
	if err := DecodeYAMLStrict(filepath.Join(root, HelmValues), &v); err != nil {
		t.Fatal(err)
	}
	// The same server as the production compose file.
	temporal := service(t, loadCompose(t, ComposeProduction), "temporal")
	if got := v.Server.Image.Repository + ":" + v.Server.Image.Tag; got != temporal.Image {
		t.Errorf("chart server image %s, compose.production.yaml runs %s", got, temporal.Image)
	}
	p := v.Server.Config.Persistence
	if p.DefaultStore != "default" {
		t.Errorf("defaultStore %q", p.DefaultStore)
	}
	for name, s := range map[string]helmStore{"default": p.Default, "visibility": p.Visibility} {
		if s.Driver != "sql" || s.SQL.Driver != "postgres12" || s.SQL.Database == "" || s.SQL.ExistingSecret == "" {
			t.Errorf("store %s: %+v, want SQL on postgres12 with a database and a password secret", name, s)
		}
	}
	if p.Default.SQL.Database == p.Visibility.SQL.Database {
		t.Errorf("persistence and visibility share database %s", p.Default.SQL.Database)
	}
	for name, e := range map[string]enabled{"cassandra": v.Cassandra, "mysql": v.MySQL, "postgresql": v.PostgreSQL, "elasticsearch": v.Elasticsearch} {
		if e.Enabled {
			t.Errorf("the chart's bundled %s is enabled: persistence and visibility are on the external Postgres", name)
		}
	}
	if !v.Schema.CreateDatabase.Enabled || !v.Schema.Setup.Enabled || !v.Schema.Update.Enabled {
		t.Error("the chart's schema jobs are not all enabled")
	}

	// The namespace the service uses (deploy/k8s/configmap.yaml), with a retention.
	m := loadManifests(t)
	wantNS := m.configMaps[0].Data["TEMPORAL_NAMESPACE"]
	found := false
	for _, ns := range v.Server.Config.Namespaces.Namespace {
		if ns.Name == wantNS && ns.Retention != "" {
			found = true
		}
	}
	if !v.Server.Config.Namespaces.Create || !found {
		t.Errorf("the chart does not create namespace %s with a retention", wantNS)
	}
	if !strings.HasPrefix(m.configMaps[0].Data["TEMPORAL_ADDRESS"], "temporal-frontend.") {
		t.Errorf("TEMPORAL_ADDRESS %s is not the chart's frontend Service", m.configMaps[0].Data["TEMPORAL_ADDRESS"])
	}

	if want := contractSearchAttributes(); !maps.Equal(v.OnboardingSearchAttributes, want) {
		t.Errorf("onboardingSearchAttributes %v, want the contract's %v", v.OnboardingSearchAttributes, want)
	}

	var dc dynamicConfig
	if err := DecodeYAMLStrict(filepath.Join(root, TemporalDynConfig), &dc); err != nil {
		t.Fatal(err)
	}
	if got, want := flattenDynamicConfig(t, v.Server.DynamicConfig), flattenDynamicConfig(t, dc); !maps.Equal(got, want) {
		t.Errorf("server.dynamicConfig %v, want %s's %v", got, TemporalDynConfig, want)
	}
}
