package devstack

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// TemporalCLIVersion is the pinned Temporal CLI, whose dev server (Server 1.29.1) the service is
// tested against. Later tags carry replace directives, so `go install` cannot build them.
// Keep it equal to TEMPORAL_CLI_VERSION in the Makefile.
const TemporalCLIVersion = "v1.5.1"

const (
	temporalCLIModule  = "github.com/temporalio/cli"
	temporalCLIPackage = temporalCLIModule + "/cmd/temporal"

	// temporalStartTimeout bounds the wait for a started dev server to answer health checks.
	temporalStartTimeout = 60 * time.Second
	// temporalStopGrace is how long Stop lets the dev server shut down before killing it.
	temporalStopGrace = 10 * time.Second
	// healthPollInterval paces readiness polls.
	healthPollInterval = 250 * time.Millisecond
)

// temporalDynamicConfig is passed to every dev server. All keys exist in Server 1.29.1 (a value
// of the wrong type makes the server log "Failed to convert value"; the tests check for that).
var temporalDynamicConfig = []string{
	// Creation is update-with-start (a multi-operation) and most invitation actions are updates.
	// These three default to on in Server 1.29; they are explicit so that a dev server with other
	// defaults fails loudly in the tests instead of breaking the API quietly.
	"frontend.enableUpdateWorkflowExecution=true",
	"frontend.enableExecuteMultiOperation=true",
	"frontend.workerVersioningWorkflowAPIs=true",
	// One task-queue partition and eager activities: measured 2-3x faster on the dev server, with
	// a far shorter tail (see DESIGN.md, "Running it").
	"matching.numTaskqueueReadPartitions=1",
	"matching.numTaskqueueWritePartitions=1",
	"system.enableActivityEagerExecution=true",
	// Priority and fairness in matching (Server 1.29's new matcher): the email queue serves a
	// welcome email before a backlog of invites, and one account's burst of invites does not
	// queue another account's. deploy/compose.yaml sets the same; a production cluster needs it
	// in its dynamic config (docs/sre.md, "Email capacity").
	"matching.enableFairness=true",
}

// EnsureTemporalCLI returns the path of binDir/temporal, building it first with `go install` at
// TemporalCLIVersion unless it is already that version. A cold build takes about four minutes;
// progress goes to stderr.
func EnsureTemporalCLI(ctx context.Context, binDir string) (string, error) {
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(binDir, "temporal")
	if isPinnedTemporalCLI(ctx, path) {
		return path, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	// Build into a scratch directory and rename: a concurrent `make test` or `make run` never
	// executes a half-written binary, and a running dev server keeps its old inode.
	tmp, err := os.MkdirTemp(binDir, ".temporal-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(os.Stderr, "devstack: building Temporal CLI %s into %s (about 4 minutes on a cold Go build cache)\n",
		TemporalCLIVersion, path)
	cmd := exec.CommandContext(ctx, "go", "install", temporalCLIPackage+"@"+TemporalCLIVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	building := make(chan struct{})
	go func() {
		// go install is silent while it compiles; say every so often that it is still working.
		ticker := time.NewTicker(30 * time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-building:
				return
			case <-ticker.C:
				fmt.Fprintf(os.Stderr, "devstack: still building Temporal CLI (%s elapsed)\n", time.Since(start).Round(time.Second))
			}
		}
	}()
	err = cmd.Run()
	close(building)
	if err != nil {
		return "", fmt.Errorf("devstack: go install %s@%s: %w", temporalCLIPackage, TemporalCLIVersion, err)
	}
	if err := os.Rename(filepath.Join(tmp, "temporal"), path); err != nil {
		return "", err
	}
	if !isPinnedTemporalCLI(ctx, path) {
		return "", fmt.Errorf("devstack: %s is not Temporal CLI %s after go install", path, TemporalCLIVersion)
	}
	fmt.Fprintf(os.Stderr, "devstack: built Temporal CLI %s in %s\n", TemporalCLIVersion, time.Since(start).Round(time.Second))
	return path, nil
}

// isPinnedTemporalCLI reports whether path is the Temporal CLI at TemporalCLIVersion. A binary
// from `go install` says "temporal version 0.0.0-DEV" (the release version is set by the release
// build's linker flags), so its embedded module version is checked first; a release binary
// names its version in `temporal --version`.
func isPinnedTemporalCLI(ctx context.Context, path string) bool {
	if info, err := buildinfo.ReadFile(path); err == nil &&
		info.Main.Path == temporalCLIModule && info.Main.Version == TemporalCLIVersion {
		return true
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return false
	}
	// "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"
	f := strings.Fields(string(out))
	return len(f) >= 3 && f[2] == strings.TrimPrefix(TemporalCLIVersion, "v")
}

// TemporalOptions configures a dev server. Zero values pick safe defaults, so that two dev
// servers (`make run` and `make test`) can run side by side.
type TemporalOptions struct {
	// Binary is the Temporal CLI (see EnsureTemporalCLI). Required.
	Binary string
	// DBFile is the SQLite file that keeps state across restarts; empty keeps it in memory.
	DBFile string
	// Host is the IP the server binds (default 127.0.0.1).
	Host string
	// Port is the frontend gRPC port; 0 picks a free one.
	Port int
	// UIPort is the Web UI's port; 0 runs the server headless.
	UIPort int
	// UICodecEndpoint is the remote codec the UI's browser calls to decode payloads.
	UICodecEndpoint string
	// HTTPPort is the frontend's HTTP API port; 0 picks a free one.
	HTTPPort int
	// MetricsPort is the server's Prometheus port; 0 picks a free one.
	MetricsPort int
	// Namespace is created at start with the search attributes (default "default", which the
	// dev server always creates).
	Namespace string
	// LogFile receives the server's output, truncated at start; empty sends it to stderr.
	LogFile string
}

// Temporal is a running dev server.
type Temporal struct {
	proc       *Process
	address    string
	namespace  string
	uiURL      string
	metricsURL string
	logFile    string
}

// startTemporalOnce is one attempt of StartTemporal.
func startTemporalOnce(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	if opts.Binary == "" {
		return nil, errors.New("devstack: TemporalOptions.Binary is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	// The CLI would pick free HTTP and metrics ports by itself, but choosing them here lets the
	// handle report the metrics URL. The UI is the one port the CLI derives from another
	// (frontend + 1000), so it is always explicit or off.
	for _, p := range []*int{&opts.Port, &opts.HTTPPort, &opts.MetricsPort} {
		if *p == 0 {
			port, err := pickPort()
			if err != nil {
				return nil, err
			}
			*p = port
		}
	}

	args := []string{"server", "start-dev",
		"--ip", opts.Host,
		"--port", strconv.Itoa(opts.Port),
		"--http-port", strconv.Itoa(opts.HTTPPort),
		"--metrics-port", strconv.Itoa(opts.MetricsPort),
		// WAL with relaxed syncing is what makes a file database fast; an in-memory database
		// accepts and ignores both.
		"--sqlite-pragma", "journal_mode=wal",
		"--sqlite-pragma", "synchronous=normal",
		// The dev server's default, made explicit: the log then holds warnings (such as a rejected
		// dynamic config value) and little else.
		"--log-level", "warn",
	}
	if opts.UIPort == 0 {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(opts.UIPort))
		if opts.UICodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", opts.UICodecEndpoint)
		}
	}
	if opts.DBFile != "" {
		dbFile, err := filepath.Abs(opts.DBFile)
		if err != nil {
			return nil, err
		}
		// The CLI refuses a database file whose directory does not exist.
		if err := os.MkdirAll(filepath.Dir(dbFile), 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--db-filename", dbFile)
	}
	if opts.Namespace != "default" {
		args = append(args, "--namespace", opts.Namespace)
	}
	types := contract.SearchAttributeTypes()
	for _, name := range slices.Sorted(maps.Keys(types)) {
		args = append(args, "--search-attribute", name+"="+types[name].String())
	}
	for _, kv := range temporalDynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}

	cmd := exec.Command(opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if opts.LogFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.LogFile), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		// The child inherits the descriptor; the parent's copy is not needed past Start.
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	proc, err := StartProcess("temporal", cmd)
	if err != nil {
		return nil, err
	}

	t := &Temporal{
		proc:       proc,
		address:    net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)),
		namespace:  opts.Namespace,
		metricsURL: fmt.Sprintf("http://%s/metrics", net.JoinHostPort(opts.Host, strconv.Itoa(opts.MetricsPort))),
		logFile:    opts.LogFile,
	}
	if opts.UIPort != 0 {
		t.uiURL = fmt.Sprintf("http://%s", net.JoinHostPort(opts.Host, strconv.Itoa(opts.UIPort)))
	}
	if err := t.waitReady(ctx); err != nil {
		_ = t.Stop()
		return nil, err
	}
	return t, nil
}

// Address is the frontend's host:port, for TEMPORAL_ADDRESS.
func (t *Temporal) Address() string { return t.address }

// Namespace is the namespace the search attributes were registered on.
func (t *Temporal) Namespace() string { return t.namespace }

// UIURL is the Web UI's base URL, or "" when the server runs headless.
func (t *Temporal) UIURL() string { return t.uiURL }

// MetricsURL is the server's own Prometheus endpoint.
func (t *Temporal) MetricsURL() string { return t.metricsURL }

// LogFile is where the server writes its output, or "" for stderr.
func (t *Temporal) LogFile() string { return t.logFile }

// Done is closed when the server process has exited.
func (t *Temporal) Done() <-chan struct{} { return t.proc.Done() }

// Wait blocks until the server exits and returns its exit error.
func (t *Temporal) Wait() error { return t.proc.Wait() }

// Stop sends SIGTERM to the server's process group, waits up to 10 seconds, then kills it.
func (t *Temporal) Stop() error { return t.proc.Stop(temporalStopGrace) }

// waitReady polls until the frontend is healthy and the search attributes are registered. It
// gives up as soon as the process exits (a taken port, a bad flag), not after the timeout.
func (t *Temporal) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, temporalStartTimeout)
	defer cancel()
	go func() {
		select {
		case <-t.proc.Done():
			cancel() // abort a probe that waits on a port the dead server never served
		case <-ctx.Done():
		}
	}()
	ticker := time.NewTicker(healthPollInterval)
	defer ticker.Stop()
	for {
		lastErr := t.probe(ctx)
		if lastErr == nil {
			return nil
		}
		select {
		case <-ticker.C:
			continue
		case <-ctx.Done():
		}
		select {
		case <-t.proc.Done():
			return fmt.Errorf("%w (%v)%s", errExitedDuringStart, t.proc.Wait(), t.logTail())
		default:
			return fmt.Errorf("devstack: temporal dev server at %s not ready: %w (last error: %v)%s",
				t.address, ctx.Err(), lastErr, t.logTail())
		}
	}
}

// probe dials the frontend afresh each time: a dial against a port nobody listens on yet would
// otherwise sit in gRPC's reconnect backoff, which grows far past the poll interval.
func (t *Temporal) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  t.address,
		Namespace: t.namespace,
		// Connection errors while the server boots are expected; the SDK would log each at warn.
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	return ensureSearchAttributes(ctx, c, t.namespace)
}

// ensureSearchAttributes returns nil once every search attribute is registered. It adds missing
// ones and returns an error, so that the caller's next poll confirms them: the dev server
// registers its --search-attribute flags only when it creates the namespace, so a database file
// older than an attribute lacks it.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	added, err := temporalclient.RegisterSearchAttributes(ctx, c, namespace)
	if err != nil {
		return fmt.Errorf("%w; remove the dev server's database file to start afresh", err)
	}
	if len(added) > 0 {
		return fmt.Errorf("search attributes %v were missing and have just been added", added)
	}
	return nil
}

// logTail returns the end of the server's log, formatted for an error message.
func (t *Temporal) logTail() string {
	if t.logFile == "" {
		return ""
	}
	b, err := os.ReadFile(t.logFile)
	if err != nil {
		return ""
	}
	const tailBytes = 4 << 10
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return fmt.Sprintf("\n--- end of %s ---\n%s", t.logFile, bytes.TrimSpace(b))
}
