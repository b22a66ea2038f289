package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// The bench's Temporal: the CLI's dev server, or with -temporal cluster make cluster's shape.

// startTemporal starts the dev server or, with opts.cluster, the cluster.
func (s *stack) startTemporal(ctx context.Context) error {
	o := s.opts
	if !o.cluster {
		uiPort, err := devstack.FreePort()
		if err != nil {
			return err
		}
		// The same dev server as `make run`'s (devstack's flags and dynamic config, a SQLite file
		// in WAL mode, the UI on), on free ports and a file of its own.
		if s.dev, err = devstack.StartTemporal(ctx, devstack.TemporalOptions{
			Binary:  o.temporalCLI,
			DBFile:  filepath.Join(s.tmp, "temporal.db"),
			UIPort:  uiPort,
			LogFile: filepath.Join(o.artifacts, "temporal.log"),
		}); err != nil {
			return err
		}
		s.temporal, s.stopTemporal = s.dev, func() {
			if err := s.dev.Stop(); err != nil {
				o.say("stopping Temporal: %v", err)
			}
		}
		o.say("Temporal dev server %s (UI %s)", s.dev.Address(), s.dev.UIURL())
		return nil
	}
	// The cluster of `make cluster` and `make test-cluster`, through the suites' own starter:
	// it reads TEST_TEMPORAL, so the flag sets it for this process (the API and the worker
	// inherit it and ignore it). Its configuration and logs go to the artifacts
	// (<artifacts>/cluster/logs/<service>.log), started afresh.
	if err := os.Setenv("TEST_TEMPORAL", "cluster"); err != nil {
		return err
	}
	u, err := url.Parse(s.dbURL)
	if err != nil {
		return err
	}
	prefix := strings.TrimPrefix(u.Path, "/") + "_temporal"
	if err := os.RemoveAll(filepath.Join(o.artifacts, "cluster")); err != nil {
		return err
	}
	o.say("starting a Temporal cluster (4 services on Postgres, databases %s and %s_visibility)", prefix, prefix)
	began := time.Now()
	ts, stop, err := devstack.StartTestTemporal(ctx, devstack.TestTemporalOptions{
		CLI: o.temporalCLI, Root: o.root, Dir: o.artifacts, LogFile: filepath.Join(o.artifacts, "temporal.log"),
		PostgresURL: s.dbURL, DBPrefix: prefix,
	})
	if err != nil {
		return fmt.Errorf("temporal cluster (`make cluster-binaries` builds its binaries; logs in %s): %w", filepath.Join(o.artifacts, "cluster", "logs"), err)
	}
	c, ok := ts.(*devstack.Cluster)
	if !ok {
		stop()
		return fmt.Errorf("devstack.StartTestTemporal started a %T, not a cluster", ts)
	}
	s.temporal, s.cluster = c, c
	s.temporalDBs = []string{prefix, prefix + "_visibility"}
	s.stopTemporal = func() {
		if !o.keep {
			stop() // stops the services and drops the two databases
			return
		}
		if err := c.Stop(); err != nil {
			o.say("stopping Temporal: %v", err)
		}
		o.say("kept the Temporal cluster's databases %s and %s_visibility", prefix, prefix)
	}
	o.say("Temporal cluster %s, up in %s (logs in %s)", c.Address(), time.Since(began).Round(100*time.Millisecond), filepath.Join(o.artifacts, "cluster", "logs"))
	return nil
}

// temporalDatabases returns a cluster's databases (none for the dev server), whose Postgres
// backends are the stack's.
func (s *stack) temporalDatabases() []string {
	if s.temporalDBs == nil {
		return []string{}
	}
	return s.temporalDBs
}

// temporalKind names the server the run measured, for the report.
func (s *stack) temporalKind() string {
	if s.opts.cluster {
		return "cluster"
	}
	return "dev"
}

// temporalPids returns the Temporal server's pids: the dev server's, found by its database
// file, or the cluster's four services' current ones (a restarted service has a new pid).
func (s *stack) temporalPids() []int {
	if s.cluster != nil {
		var pids []int
		for _, svc := range devstack.ClusterServices {
			if k := s.cluster.Service(svc); k != nil {
				if p := k.Process(); p != nil {
					pids = append(pids, p.Pid())
				}
			}
		}
		return pids
	}
	if s.temporalPID == 0 {
		s.temporalPID = findPid(filepath.Join(s.tmp, "temporal.db"))
	}
	if s.temporalPID == 0 {
		return nil
	}
	return []int{s.temporalPID}
}

// temporalRestarts describes the cluster's service restarts so far ("" when none, or on the
// dev server, which is never restarted).
func (s *stack) temporalRestarts() string {
	if s.cluster == nil {
		return ""
	}
	var out []string
	for _, svc := range devstack.ClusterServices {
		if k := s.cluster.Service(svc); k != nil && k.Restarts() > 0 {
			out = append(out, fmt.Sprintf("%s %s", svc, plural(k.Restarts(), "time")))
		}
	}
	return strings.Join(out, ", ")
}
