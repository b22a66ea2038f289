package devstack

import (
	"context"
	"errors"
)

// errExitedDuringStart is the error of a dev server that exited before it was ready.
var errExitedDuringStart = errors.New("devstack: temporal dev server exited during start")

// pickPort picks the dev server's free ports (a test makes it hand out a taken one).
var pickPort = FreePort

// temporalStartAttempts bounds the starts of a dev server whose picked ports were taken.
const temporalStartAttempts = 3

// StartTemporal starts a dev server and returns once its frontend answers health checks and the
// service's search attributes are registered on the namespace, or after 60 seconds with an
// error that quotes the end of the server's log. A port left 0 is picked free (FreePort) and
// bound by the server a moment later; in between another process on the machine (a parallel
// test package's server, or one of this server's own ephemeral ports) can take it, and the
// server exits with "address already in use". A server that exits during its start on ports
// picked here is therefore started again on fresh ones, up to three times in all.
func StartTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	picked := opts.Port == 0 || opts.HTTPPort == 0 || opts.MetricsPort == 0
	var err error
	for range temporalStartAttempts {
		var t *Temporal
		t, err = startTemporalOnce(ctx, opts) // opts is a copy: its zero ports are picked afresh
		if err == nil || !picked || !errors.Is(err, errExitedDuringStart) || ctx.Err() != nil {
			return t, err
		}
	}
	return nil, err
}
