package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The production shape on one machine (`make cluster`, `make test-cluster`): a Temporal server
// built from go.temporal.io/server at the version the pinned CLI embeds, each of its four
// services a process of its own, on Postgres persistence and Postgres (SQL) visibility in two
// databases, their schemas applied by Temporal's own SQL schema tool, and the Temporal UI
// server beside them. Every process is kept by a Keeper: one that dies is started again while
// the others serve, as an orchestrator would.

// The cluster's binaries, built by `make cluster-binaries` at the versions Temporal CLI
// TemporalCLIVersion embeds (`temporal --version`: Server 1.29.1, UI 2.42.1).
const (
	TemporalServerVersion = "v1.29.1"
	TemporalUIVersion     = "v2.42.1"
	ServerBinary          = "temporal-server"
	SQLToolBinary         = "temporal-sql-tool"
	UIServerBinary        = "temporal-ui-server"
)

// ClusterServices are Temporal's services, in the order they start. History and matching
// first: the frontend routes to them, and the worker service is a client of the frontend.
var ClusterServices = []string{"history", "matching", "frontend", "worker"}

// ClusterOptions configures a cluster. Zero values pick free ports.
type ClusterOptions struct {
	// BinDir holds the three binaries above.
	BinDir string
	// Dir receives the generated configuration and the logs (logs/<service>.log, appended to
	// across restarts).
	Dir string
	// PostgresURL names the Postgres server (user, password, host, port); its database part is
	// ignored. Databases <DBPrefix> and <DBPrefix>_visibility are created on it when missing.
	PostgresURL string
	DBPrefix    string
	// Host is the IP every service binds (default 127.0.0.1); FrontendPort is the frontend's
	// gRPC port, TEMPORAL_ADDRESS's.
	Host         string
	FrontendPort int
	// UIPort is the Web UI's port; 0 starts no UI. UICodecEndpoint is the codec its browser
	// decodes payloads through.
	UIPort          int
	UICodecEndpoint string
	// Namespace is registered when missing (default "default"), with Retention.
	Namespace string
	Retention time.Duration
	// DynamicConfig is the production dynamic config file (deploy/temporal/dynamicconfig.yaml);
	// the cluster runs it as is, plus what ClusterDynamicConfigExtra adds for one machine.
	DynamicConfig string
	// Shards is numHistoryShards (default 4: enough for one machine; production sets 512).
	Shards int
	// Logf is told of restarts.
	Logf func(format string, args ...any)
	// PidDir, when set, receives temporal-<service> files holding each process's current pid.
	PidDir string
}

// Cluster is a running Temporal server of four services and its UI.
type Cluster struct {
	opts       ClusterOptions
	address    string
	uiURL      string
	metricsURL map[string]string
	services   map[string]*Keeper
	ui         *Keeper

	dynamicConfig *clusterDynamicConfig
}

// StartCluster prepares the databases, starts the services and the UI, and returns once the
// frontend answers and the namespace exists. The search attributes are the caller's to
// register, with the project's own `register-search-attributes` (or its function).
func StartCluster(ctx context.Context, opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Shards == 0 {
		opts.Shards = 4
	}
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.DBPrefix == "" {
		opts.DBPrefix = "temporal"
	}
	for _, b := range []string{ServerBinary, SQLToolBinary, UIServerBinary} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("devstack: %s is missing in %s: `make cluster-binaries` builds it", b, opts.BinDir)
		}
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	pg, err := url.Parse(opts.PostgresURL)
	if err != nil || pg.Host == "" {
		return nil, fmt.Errorf("devstack: %q names no Postgres server", opts.PostgresURL)
	}
	for i, schema := range []string{"postgresql/v12/temporal", "postgresql/v12/visibility"} {
		if err := prepareTemporalDatabase(ctx, opts, pg, ClusterDatabases(opts.DBPrefix)[i], schema); err != nil {
			return nil, err
		}
	}

	ports, err := clusterPorts(opts.FrontendPort)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:       opts,
		address:    net.JoinHostPort(opts.Host, strconv.Itoa(ports.grpc["frontend"])),
		metricsURL: map[string]string{},
		services:   map[string]*Keeper{},
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if c.dynamicConfig, err = newClusterDynamicConfig(opts); err != nil {
		return nil, err
	}
	for _, svc := range ClusterServices {
		dir, err := writeClusterConfig(opts, pg, ports, svc, c.dynamicConfig.path)
		if err != nil {
			return nil, err
		}
		c.metricsURL[svc] = fmt.Sprintf("http://%s/metrics", net.JoinHostPort(opts.Host, strconv.Itoa(ports.metrics[svc])))
		args := []string{"--root", "/", "--config", dir, "--env", "cluster", "--allow-no-auth", "start", "--service", svc}
		k, err := Keep("temporal-"+svc, c.starter(filepath.Join(opts.BinDir, ServerBinary), args, svc), opts.Logf)
		if err != nil {
			return nil, err
		}
		c.services[svc] = k
		if svc == ClusterServices[0] {
			// The first service writes the cluster's metadata on a new database; services that
			// start beside it race to write the same row and the losers exit.
			if err := waitClusterMetadata(ctx, opts, k); err != nil {
				return nil, err
			}
		}
	}
	if err := c.waitFrontend(ctx); err != nil {
		return nil, err
	}
	if opts.UIPort != 0 {
		dir, err := writeUIConfig(opts, c.address)
		if err != nil {
			return nil, err
		}
		args := []string{"--root", "/", "--config", dir, "--env", "cluster", "start"}
		if c.ui, err = Keep("temporal-ui", c.starter(filepath.Join(opts.BinDir, UIServerBinary), args, "ui"), opts.Logf); err != nil {
			return nil, err
		}
		c.uiURL = "http://" + net.JoinHostPort(opts.Host, strconv.Itoa(opts.UIPort))
	}
	return c, nil
}

func (c *Cluster) starter(bin string, args []string, logName string) func() (*Process, error) {
	return func() (*Process, error) {
		f, err := os.OpenFile(filepath.Join(c.opts.Dir, "logs", logName+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = f, f
		p, err := StartProcess("temporal-"+logName, cmd)
		if err != nil || c.opts.PidDir == "" {
			return p, err
		}
		return p, os.WriteFile(filepath.Join(c.opts.PidDir, "temporal-"+logName), []byte(strconv.Itoa(p.Pid())+"\n"), 0o644)
	}
}

// Address is the frontend's host:port, for TEMPORAL_ADDRESS.
func (c *Cluster) Address() string { return c.address }

// Namespace is the namespace the cluster registered.
func (c *Cluster) Namespace() string { return c.opts.Namespace }

// UIURL is the Web UI's base URL, or "" without a UI.
func (c *Cluster) UIURL() string { return c.uiURL }

// MetricsURL is the frontend's Prometheus endpoint; ServiceMetricsURL any service's.
func (c *Cluster) MetricsURL() string { return c.metricsURL["frontend"] }

// ServiceMetricsURL is a service's Prometheus endpoint.
func (c *Cluster) ServiceMetricsURL(svc string) string { return c.metricsURL[svc] }

// Service is the Keeper of one of ClusterServices.
func (c *Cluster) Service(svc string) *Keeper { return c.services[svc] }

// LogFile is a service's log ("ui" for the UI server's).
func (c *Cluster) LogFile(svc string) string { return filepath.Join(c.opts.Dir, "logs", svc+".log") }

// Stop stops the UI and the services, the frontend first so no new call arrives at a history
// service on its way out.
func (c *Cluster) Stop() error {
	var errs []error
	if c.ui != nil {
		errs = append(errs, c.ui.Stop(temporalStopGrace))
	}
	for _, svc := range []string{"frontend", "worker", "matching", "history"} {
		if k := c.services[svc]; k != nil {
			errs = append(errs, k.Stop(temporalStopGrace))
		}
	}
	return errors.Join(errs...)
}

// ClusterDatabases names the two databases of a cluster whose DBPrefix is prefix.
func ClusterDatabases(prefix string) []string { return []string{prefix, prefix + "_visibility"} }

// DropClusterDatabases removes the two databases of a stopped cluster (tests) from the Postgres
// server of postgresURL.
func DropClusterDatabases(ctx context.Context, postgresURL, prefix string) error {
	conn, err := pgx.Connect(ctx, postgresURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, db := range ClusterDatabases(prefix) {
		if _, err := conn.Exec(ctx, "drop database if exists "+pgx.Identifier{db}.Sanitize()+" with (force)"); err != nil {
			return err
		}
	}
	return nil
}

// waitClusterMetadata waits until the cluster's metadata row exists.
func waitClusterMetadata(ctx context.Context, opts ClusterOptions, k *Keeper) error {
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := countRows(ctx, opts.PostgresURL, opts.DBPrefix, "cluster_metadata_info")
		if err == nil && n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devstack: Temporal's %s service wrote no cluster metadata within a minute (%v; log: %s)",
				k.Name(), err, filepath.Join(opts.Dir, "logs"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFrontend polls until the frontend answers and the namespace is registered and visible.
func (c *Cluster) waitFrontend(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		if last = c.probe(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devstack: Temporal cluster at %s not ready: %v (logs: %s)", c.address, last, filepath.Join(c.opts.Dir, "logs"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tc, err := client.DialContext(ctx, client.Options{
		HostPort: c.address, Namespace: c.opts.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer tc.Close()
	if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	_, err = tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: c.opts.Namespace})
	var notFound *serviceerror.NamespaceNotFound
	if errors.As(err, &notFound) {
		_, err = tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        c.opts.Namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(c.opts.Retention),
		})
		if err == nil {
			err = errors.New("namespace registered; waiting for it to be served")
		}
	}
	if err != nil {
		return err
	}
	// Describe reads the database; a count goes through the services' namespace cache, which
	// learns of a new namespace within its refresh interval.
	_, err = tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: c.opts.Namespace})
	return err
}
