// Command onboarding-dev is what `make run` runs: the whole service on one machine, on the
// settings' defaults. It prepares the Postgres database, starts a Temporal dev server (state in
// .data/temporal.db, Web UI on :8233), builds and starts the worker and the API, creates demo
// data once, and prints where everything is. Payloads are encrypted as in production (the key
// is kept in .data/) and the UI decodes them through the API's codec endpoint. Ctrl-C stops the API, the worker and Temporal, in
// that order, so no request or activity is cut off by a dependency vanishing under it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

const (
	defaultTemporalUIPort = 8233
	// readyTimeout bounds the wait for the API and the worker to answer after they start.
	readyTimeout = 60 * time.Second
	// Each grace exceeds the child's own drain limit (20 s for in-flight requests in the API, 20 s
	// for running activities in the worker), so a child that shuts down properly is never killed.
	apiStopGrace    = 25 * time.Second
	workerStopGrace = 25 * time.Second
)

// terminal serialises whole lines from the children and onboarding-dev itself, so output from
// different processes never interleaves mid-line.
var terminal = &lockedWriter{w: os.Stdout}

func main() {
	flag.Parse()
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	err := run(ctx, stopSignals)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "onboarding-dev: %v\n", err)
		os.Exit(1)
	}
	// Stopped by Ctrl-C or SIGTERM: that is the normal end, even if it interrupted the start.
}

// clusterMode is `make cluster`: the production topology, replicas restarted when they exit.
var clusterMode = flag.Bool("cluster", false, "run the production topology (make cluster): a Temporal server on Postgres, two workers, two APIs behind a load balancer")

// Where make cluster keeps its state and finds its binaries; the cluster tests
// (internal/testkit/cluster) point both elsewhere.
var (
	dataDir = flag.String("data", "", "with -cluster: the state directory (default .data/cluster)")
	binDir  = flag.String("bin", "", "with -cluster: the binaries' directory (default .bin)")
)

func runCluster(ctx context.Context, stopSignals func(), l layout) error {
	cs, err := startClusterStack(ctx, l)
	if err != nil {
		return err
	}
	defer cs.stop()
	printBanner(cs.banner())
	<-ctx.Done()
	stopSignals()
	fmt.Fprintln(terminal)
	return nil
}

func say(format string, args ...any) {
	fmt.Fprintf(terminal, "onboarding-dev: "+format+"\n", args...)
}

func run(ctx context.Context, stopSignals func()) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	l := layout{root: root, binDir: filepath.Join(root, ".bin"), dataDir: filepath.Join(root, ".data")}
	if *clusterMode {
		l.dataDir = filepath.Join(l.dataDir, "cluster")
		if *dataDir != "" {
			l.dataDir = *dataDir
		}
		if *binDir != "" {
			l.binDir = *binDir
		}
		return runCluster(ctx, stopSignals, l)
	}
	st, err := startStack(ctx, l)
	if err != nil {
		return err
	}
	defer st.sup.stopAll()
	printBanner(st.banner())

	select {
	case <-ctx.Done():
		// From here a second Ctrl-C ends onboarding-dev at once; the kernel then stops the
		// children (see devstack.StartProcess), so nothing keeps holding the ports.
		stopSignals()
		fmt.Fprintln(terminal)
		return nil
	case c := <-st.sup.exits:
		return fmt.Errorf("%s exited unexpectedly (%v)", c.name, c.wait())
	}
}

// layout says where a stack keeps its files.
type layout struct {
	root, binDir, dataDir string
	// temporalCLI is the Temporal CLI; empty builds it into binDir at the pinned version.
	temporalCLI string
}

// stack is a started `make run`: its children, settings and demo data.
type stack struct {
	sup         *supervisor
	set         settings
	temporal    *devstack.Temporal
	temporalLog string
	demo        demoData
}

// startStack does all of `make run` but wait: database, Temporal, worker, API, demo data. On an
// error it stops what it had started.
func startStack(ctx context.Context, l layout) (_ *stack, err error) {
	if err := os.MkdirAll(l.dataDir, 0o755); err != nil {
		return nil, err
	}
	set, err := loadSettings(l.dataDir, false)
	if err != nil {
		return nil, err
	}
	cfg := set.cfg

	if err := prepareDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	cli := l.temporalCLI
	if cli == "" {
		if cli, err = devstack.EnsureTemporalCLI(ctx, l.binDir); err != nil {
			return nil, err
		}
	}

	sup := newSupervisor()
	defer func() {
		if err != nil {
			sup.stopAll()
		}
	}()

	// Compile the API and the worker while Temporal boots: the two overlap well on two cores.
	built := make(chan error, 1)
	go func() { built <- buildBinaries(ctx, l.root, l.binDir) }()
	temporalLog := filepath.Join(l.dataDir, "temporal.log")
	say("starting Temporal dev server on %s (log: %s)", net.JoinHostPort(set.temporalHost, strconv.Itoa(set.temporalPort)), temporalLog)
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary:          cli,
		DBFile:          filepath.Join(l.dataDir, "temporal.db"),
		Host:            set.temporalHost,
		Port:            set.temporalPort,
		UIPort:          set.uiPort,
		UICodecEndpoint: set.codecEndpoint,
		Namespace:       cfg.TemporalNamespace,
		LogFile:         temporalLog,
	})
	buildErr := <-built
	if err != nil {
		return nil, err
	}
	sup.add(child{name: "temporal", done: temporal.Done(), wait: temporal.Wait, stop: temporal.Stop})
	if buildErr != nil {
		return nil, buildErr
	}

	set.extraEnv["TEMPORAL_ADDRESS"] = temporal.Address()
	env := set.childEnv()
	// The worker first, so invitations created as soon as the API answers find it polling.
	if err := sup.startBinary(l.root, l.binDir, "worker", "onboarding-worker", env, workerStopGrace); err != nil {
		return nil, err
	}
	if err := sup.startBinary(l.root, l.binDir, "api", "onboarding-api", env, apiStopGrace); err != nil {
		return nil, err
	}
	for _, u := range []string{set.apiURL + "/readyz", set.workerMetricsURL} {
		if err := sup.waitHTTP(ctx, u); err != nil {
			return nil, err
		}
	}

	api := apiClient{base: set.apiURL, token: set.apiToken, http: &http.Client{Timeout: 10 * time.Second}}
	demo, err := ensureDemoData(ctx, api, filepath.Join(l.dataDir, "demo.json"))
	if err != nil {
		return nil, fmt.Errorf("demo data: %w", err)
	}
	return &stack{sup: sup, set: set, temporal: temporal, temporalLog: temporalLog, demo: demo}, nil
}

// prepareDatabase creates the service's database when missing and applies the migrations.
func prepareDatabase(ctx context.Context, databaseURL string) error {
	say("preparing database %s", redactedURL(databaseURL))
	if err := migrations.EnsureDatabase(ctx, databaseURL); err != nil {
		return fmt.Errorf("%w (is Postgres running? `make postgres` starts it)", err)
	}
	if err := migrations.Apply(ctx, databaseURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func (st *stack) banner() bannerInfo {
	return bannerInfo{
		apiURL:            st.set.apiURL,
		uiURL:             st.temporal.UIURL(),
		workerMetricsURL:  st.set.workerMetricsURL,
		temporal:          st.temporal,
		temporalLog:       st.temporalLog,
		apiToken:          st.set.apiToken,
		apiTokenSource:    st.set.apiTokenSource,
		tokenSecretRandom: st.set.tokenSecretRandom,
		resend:            st.set.cfg.ResendAPIKey != "",
		demo:              st.demo,
		codecEndpoint:     st.set.codecEndpoint,
		codecToken:        st.set.cfg.CodecAuthToken,
		codecTokenSource:  st.set.codecTokenSource,
		payloadKeySource:  st.set.payloadKeySource,
		localUI:           st.set.cfg.CodecAllowLocalUI,
	}
}
