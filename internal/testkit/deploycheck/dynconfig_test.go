package deploycheck

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// dynamicConfig is a Temporal dynamic config file: key -> constrained values.
type dynamicConfig map[string][]devstack.DynamicConfigEntry

// devOnlyDynamicConfig are the dev server's speed-ups that production leaves at the defaults
// (see deploy/temporal/dynamicconfig.yaml).
var devOnlyDynamicConfig = []string{
	"matching.numTaskqueueReadPartitions",
	"matching.numTaskqueueWritePartitions",
	"system.enableActivityEagerExecution",
}

// TestTemporalDynamicConfig: the production dynamic config holds every setting the dev server
// of deploy/compose.yaml (the same as `make run`'s) is given, but its dev-only speed-ups, for
// every task queue; and for one, the email queue of the deploy files' TEMPORAL_TASK_QUEUE, one
// partition (matching paces and orders a queue per partition).
func TestTemporalDynamicConfig(t *testing.T) {
	var dc dynamicConfig
	if err := DecodeYAMLStrict(filepath.Join(repoRoot(t), TemporalDynConfig), &dc); err != nil {
		t.Fatal(err)
	}
	dev := service(t, loadCompose(t, ComposeFile), "temporal")
	want := map[string]string{}
	for _, kv := range devFlags(dev, "--dynamic-config-value") {
		k, v, _ := strings.Cut(kv, "=")
		if !slices.Contains(devOnlyDynamicConfig, k) {
			want[k] = v
		}
	}
	if len(want) == 0 {
		t.Fatal("no dynamic config in deploy/compose.yaml's dev server")
	}
	queue := env(service(t, loadCompose(t, ComposeProduction), "worker"), "TEMPORAL_TASK_QUEUE")
	if queue == "" {
		t.Fatalf("%s's worker sets no TEMPORAL_TASK_QUEUE", ComposeProduction)
	}
	email := fmt.Sprintf("[taskQueueName=%s]", contract.EmailTaskQueue(queue))
	want["matching.numTaskqueueReadPartitions"+email] = "1"
	want["matching.numTaskqueueWritePartitions"+email] = "1"
	if got := flattenDynamicConfig(t, dc); !maps.Equal(got, want) {
		t.Errorf("%s = %v, want the dev server's settings and the email queue's partitions, %v", TemporalDynConfig, got, want)
	}
}

// flattenDynamicConfig names each value by its key and constraints: key, or
// key[constraint=value,...] with the constraints in order.
func flattenDynamicConfig(t *testing.T, dc dynamicConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, vs := range dc {
		if len(vs) == 0 {
			t.Errorf("dynamic config %s has no value", k)
		}
		for _, v := range vs {
			name := k
			if len(v.Constraints) > 0 {
				var cs []string
				for _, c := range slices.Sorted(maps.Keys(v.Constraints)) {
					cs = append(cs, fmt.Sprintf("%s=%v", c, v.Constraints[c]))
				}
				name += "[" + strings.Join(cs, ",") + "]"
			}
			if _, dup := out[name]; dup {
				t.Errorf("dynamic config %s is set twice", name)
			}
			b, err := yaml.Marshal(v.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = strings.TrimSpace(string(b))
		}
	}
	return out
}
