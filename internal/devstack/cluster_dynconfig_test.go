package devstack

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func readDynamicConfig(t *testing.T, path string) map[string][]DynamicConfigEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string][]DynamicConfigEntry
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The cluster's file is the production file (its constrained email-queue pin included), the
// cluster's extra setting, and each pinned queue beside the production pin; a second pin of one
// queue adds nothing, and PinTaskQueue returns only after the services' poll interval.
func TestClusterDynamicConfigPins(t *testing.T) {
	dir := t.TempDir()
	d, err := newClusterDynamicConfig(ClusterOptions{Dir: dir, DynamicConfig: filepath.Join("..", "..", "deploy", "temporal", "dynamicconfig.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	got := readDynamicConfig(t, d.path)
	if v := got["system.forceSearchAttributesCacheRefreshOnRead"]; len(v) != 1 || v[0].Value != true {
		t.Errorf("the cluster's extra setting: %v", v)
	}
	if v := got["matching.enableFairness"]; len(v) != 1 || v[0].Value != true {
		t.Errorf("the production file's matching.enableFairness: %v", v)
	}
	base := len(got["matching.numTaskqueueReadPartitions"])

	c := &Cluster{dynamicConfig: d}
	start := time.Now()
	for range 2 {
		if err := c.PinTaskQueue(context.Background(), "stack-a-email"); err != nil {
			t.Fatal(err)
		}
	}
	if waited := time.Since(start); waited < ClusterDynamicConfigPoll {
		t.Errorf("PinTaskQueue returned after %s, before the services re-read the file (%s)", waited, ClusterDynamicConfigPoll)
	}
	got = readDynamicConfig(t, d.path)
	for _, k := range partitionSettings {
		v := got[k]
		if len(v) != base+1 {
			t.Fatalf("%s: %v, want the production file's %d entries and one pin", k, v, base)
		}
		if last := v[len(v)-1]; last.Value != 1 || last.Constraints["taskQueueName"] != "stack-a-email" {
			t.Errorf("%s's pin: %+v", k, last)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.PinTaskQueue(ctx, "stack-b-email"); err == nil {
		t.Error("PinTaskQueue with a cancelled context returned nil")
	}
}
