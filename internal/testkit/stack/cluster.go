package stack

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// cluster is make test-cluster's mode (TEST_TEMPORAL=cluster): a Temporal cluster on Postgres,
// two worker replicas, two API replicas behind a load balancer.
var cluster = devstack.ClusterMode()

// startTemporal starts the stack's Temporal: a dev server, or a cluster whose databases sit
// beside the stack's own (named after it, so dropAbandoned finds them too).
func startTemporal(ctx context.Context, s *Stack, root, cli, tmp, artifacts, name string) (devstack.TemporalServer, error) {
	prefix := strings.Replace(dbName(s.DBURL), "onboarding_", "onboarding_temporal", 1)
	srv, stop, err := devstack.StartTestTemporal(ctx, devstack.TestTemporalOptions{
		CLI: cli, Root: root, Dir: tmp, LogFile: filepath.Join(artifacts, name+"-temporal.log"),
		PostgresURL: s.DBURL, DBPrefix: prefix,
	})
	if err != nil {
		return nil, err
	}
	s.defer_(stop)
	return srv, nil
}
