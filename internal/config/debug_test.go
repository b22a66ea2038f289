package config

import (
	"strings"
	"testing"
)

func TestPprofAddr(t *testing.T) {
	c, err := LoadFrom(env(nil))
	if err != nil || c.PprofAddr != "" {
		t.Fatalf("default: PprofAddr = %q, err = %v; want off", c.PprofAddr, err)
	}
	c, err = LoadFrom(env(map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}))
	if err != nil || c.PprofAddr != "127.0.0.1:6060" {
		t.Fatalf("PprofAddr = %q, err = %v", c.PprofAddr, err)
	}
	for _, bad := range []string{"6060", "localhost", "127.0.0.1:"} {
		if _, err := LoadFrom(env(map[string]string{"PPROF_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
			t.Errorf("PPROF_ADDR=%q: err = %v, want one naming PPROF_ADDR", bad, err)
		}
	}
}
