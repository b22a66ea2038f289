package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/temporalclient"
)

// TemporalServer is what the test suites need of a Temporal server: the dev server
// (*Temporal) or a cluster (*Cluster).
type TemporalServer interface {
	Address() string
	Namespace() string
	MetricsURL() string
	Stop() error
}

// ClusterMode reports whether the suites run on a Temporal cluster on Postgres
// (TEST_TEMPORAL=cluster, set by `make test-cluster`) rather than on the CLI's dev server.
func ClusterMode() bool { return os.Getenv("TEST_TEMPORAL") == "cluster" }

// TestTemporalOptions says where a suite's Temporal keeps its state.
type TestTemporalOptions struct {
	// CLI is the Temporal CLI, for the dev server.
	CLI string
	// Root is the repository (its .bin holds the cluster's binaries, its deploy/ the dynamic
	// config); Dir a scratch directory; LogFile the dev server's log (a cluster logs into Dir).
	Root, Dir, LogFile string
	// PostgresURL names the Postgres server of a cluster's databases, named DBPrefix and
	// DBPrefix_visibility; they are dropped by the returned stop.
	PostgresURL, DBPrefix string
}

// StartTestTemporal starts the suites' Temporal: a dev server, or in ClusterMode a cluster with
// the search attributes registered. stop stops it and drops what it created.
func StartTestTemporal(ctx context.Context, o TestTemporalOptions) (TemporalServer, func(), error) {
	if !ClusterMode() {
		t, err := StartTemporal(ctx, TemporalOptions{Binary: o.CLI, DBFile: filepath.Join(o.Dir, "temporal.db"), LogFile: o.LogFile})
		if err != nil {
			return nil, nil, err
		}
		return t, func() { _ = t.Stop() }, nil
	}
	c, err := StartCluster(ctx, ClusterOptions{
		BinDir: filepath.Join(o.Root, ".bin"), Dir: filepath.Join(o.Dir, "cluster"),
		PostgresURL: o.PostgresURL, DBPrefix: o.DBPrefix,
		DynamicConfig: filepath.Join(o.Root, "deploy", "temporal", "dynamicconfig.yaml"),
		Logf:          func(f string, a ...any) { fmt.Fprintf(os.Stderr, "devstack: "+f+"\n", a...) },
	})
	stop := func() {
		if c != nil {
			_ = c.Stop()
		}
		_ = DropClusterDatabases(context.Background(), o.PostgresURL, o.DBPrefix)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	if err := registerSearchAttributes(ctx, c); err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// registerSearchAttributes registers the workflows' attributes with the function behind
// `onboarding-worker register-search-attributes`, and waits until they are listed.
func registerSearchAttributes(ctx context.Context, c *Cluster) error {
	tc, err := client.DialContext(ctx, client.Options{
		HostPort: c.Address(), Namespace: c.Namespace(),
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer tc.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		added, err := temporalclient.RegisterSearchAttributes(ctx, tc, c.Namespace())
		if err == nil && len(added) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("devstack: search attributes not registered within a minute"), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
