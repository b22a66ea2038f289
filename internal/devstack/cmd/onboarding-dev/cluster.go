package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// `make cluster` (onboarding-dev -cluster): the production topology on this machine. A Temporal
// server of four services on Postgres (devstack.StartCluster), two worker replicas, two API
// replicas behind one address, the Temporal UI. Every replica is kept by a devstack.Keeper: one
// that exits is started again while the other serves. The load balancer is the supervisor's own
// (devstack.LoadBalancer) rather than Debian's nginx or HAProxy: the set-up then needs no system
// package and no root, and its retry rules are nginx's proxy_next_upstream, written down and
// tested (see devstack/lb.go); deploy/lb/nginx.conf is the production-shaped compose's.

// replicas per role, as deploy/k8s runs them at its minimum (the HPA's minReplicas).
const clusterReplicas = 2

type clusterStack struct {
	set     settings
	cluster *devstack.Cluster
	// keepers in start order: workers, then APIs.
	keepers []*devstack.Keeper
	lb      *http.Server
	lbStop  context.CancelFunc
	apiURLs []string
	metrics []string
	pidDir  string
	demo    demoData
}

func startClusterStack(ctx context.Context, l layout) (_ *clusterStack, err error) {
	if err := os.MkdirAll(l.dataDir, 0o755); err != nil {
		return nil, err
	}
	set, err := loadSettings(l.dataDir, true)
	if err != nil {
		return nil, err
	}
	cfg := set.cfg
	cs := &clusterStack{set: set, pidDir: filepath.Join(l.dataDir, "pids")}
	defer func() {
		if err != nil {
			cs.stop()
		}
	}()
	if err := prepareDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	built := make(chan error, 1)
	go func() { built <- buildBinaries(ctx, l.root, l.binDir) }()

	if err := os.MkdirAll(cs.pidDir, 0o755); err != nil {
		return nil, err
	}
	temporalDir := filepath.Join(l.dataDir, "temporal")
	say("starting the Temporal cluster (history, matching, frontend, worker on Postgres) on %s (logs: %s)",
		net.JoinHostPort(set.temporalHost, strconv.Itoa(set.temporalPort)), filepath.Join(temporalDir, "logs"))
	cs.cluster, err = devstack.StartCluster(ctx, devstack.ClusterOptions{
		BinDir: l.binDir, Dir: temporalDir, PostgresURL: cfg.DatabaseURL, DBPrefix: temporalDBPrefix(cfg.DatabaseURL),
		Host: set.temporalHost, FrontendPort: set.temporalPort, UIPort: set.uiPort, UICodecEndpoint: set.codecEndpoint,
		Namespace: cfg.TemporalNamespace, DynamicConfig: filepath.Join(l.root, "deploy", "temporal", "dynamicconfig.yaml"),
		Logf: say, PidDir: cs.pidDir,
	})
	buildErr := <-built
	if err != nil {
		return nil, err
	}
	if buildErr != nil {
		return nil, buildErr
	}
	set.extraEnv["TEMPORAL_ADDRESS"] = cs.cluster.Address()

	// The project's own command, as a release runs it (deploy/k8s/search-attributes-job.yaml).
	say("registering search attributes (onboarding-worker register-search-attributes)")
	reg := exec.CommandContext(ctx, filepath.Join(l.binDir, "onboarding-worker"), "register-search-attributes")
	reg.Dir, reg.Env = l.root, set.childEnv()
	if out, err := reg.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("register-search-attributes: %w\n%s", err, out)
	}
	for i := 1; i <= clusterReplicas; i++ {
		addr := cfg.WorkerMetricsAddr
		if i > 1 {
			if addr, err = freeLocalAddr(); err != nil {
				return nil, err
			}
		}
		u, _ := localURL("WORKER_METRICS_ADDR", addr)
		cs.metrics = append(cs.metrics, u+"/metrics")
		if err := cs.keep(l, fmt.Sprintf("worker-%d", i), "onboarding-worker", map[string]string{"WORKER_METRICS_ADDR": addr}); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= clusterReplicas; i++ {
		addr, err := freeLocalAddr()
		if err != nil {
			return nil, err
		}
		cs.apiURLs = append(cs.apiURLs, "http://"+addr)
		if err := cs.keep(l, fmt.Sprintf("api-%d", i), "onboarding-api", map[string]string{"HTTP_ADDR": addr, "METRICS_ADDR": ""}); err != nil {
			return nil, err
		}
	}
	if err := cs.startLB(cfg.HTTPAddr); err != nil {
		return nil, err
	}
	waiter := newSupervisor()
	for _, u := range append(append(suffix(cs.apiURLs, "/readyz"), cs.metrics...), set.apiURL+"/readyz") {
		if err := waiter.waitHTTP(ctx, u); err != nil {
			return nil, err
		}
	}
	api := apiClient{base: set.apiURL, token: set.apiToken, http: &http.Client{Timeout: 10 * time.Second}}
	if cs.demo, err = ensureDemoData(ctx, api, filepath.Join(l.dataDir, "demo.json")); err != nil {
		return nil, fmt.Errorf("demo data: %w", err)
	}
	return cs, nil
}

// keep starts one replica of bin under a Keeper, its output prefixed with [name], its pid in
// pidDir/name (rewritten at every restart: `kill -9 $(cat .data/cluster/pids/api-1)` is a crash
// to try).
func (cs *clusterStack) keep(l layout, name, bin string, env map[string]string) error {
	start := func() (*devstack.Process, error) {
		out := &prefixWriter{dst: terminal, prefix: "[" + name + "] "}
		cmd := exec.Command(filepath.Join(l.binDir, bin))
		cmd.Dir = l.root
		cmd.Env = cs.set.childEnv()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = out, out
		p, err := devstack.StartProcess(name, cmd)
		if err != nil {
			return nil, err
		}
		go func() { <-p.Done(); out.Flush() }()
		return p, os.WriteFile(filepath.Join(cs.pidDir, name), []byte(strconv.Itoa(p.Pid())+"\n"), 0o644)
	}
	k, err := devstack.Keep(name, start, say)
	if err != nil {
		return err
	}
	cs.keepers = append(cs.keepers, k)
	return nil
}

func (cs *clusterStack) startLB(listen string) error {
	ctx, cancel := context.WithCancel(context.Background())
	cs.lbStop = cancel
	logger := slog.New(slog.NewTextHandler(&prefixWriter{dst: terminal, prefix: "[lb] "}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lb, err := devstack.NewLoadBalancer(ctx, cs.apiURLs, "/readyz", logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("load balancer on HTTP_ADDR %s: %w", listen, err)
	}
	cs.lb = &http.Server{Handler: lb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cs.lb.Serve(ln) }()
	return nil
}

// stop stops the load balancer, the APIs, the workers and Temporal, in that order.
func (cs *clusterStack) stop() {
	if cs.lb != nil {
		say("stopping the load balancer")
		ctx, cancel := context.WithTimeout(context.Background(), apiStopGrace)
		_ = cs.lb.Shutdown(ctx)
		cancel()
		cs.lbStop()
	}
	for i := len(cs.keepers) - 1; i >= 0; i-- {
		k := cs.keepers[i]
		say("stopping %s", k.Name())
		// Each grace exceeds the replica's own drain limit (see main.go).
		if err := k.Stop(max(apiStopGrace, workerStopGrace)); err != nil {
			say("%v", err)
		}
	}
	if cs.cluster != nil {
		say("stopping the Temporal cluster")
		if err := cs.cluster.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			say("%v", err)
		}
	}
}

func (cs *clusterStack) banner() bannerInfo {
	b := bannerInfo{
		apiURL: cs.set.apiURL, uiURL: cs.cluster.UIURL(), workerMetricsURL: cs.metrics[0],
		temporal: cs.cluster, temporalLog: cs.cluster.LogFile("*"),
		apiToken: cs.set.apiToken, apiTokenSource: cs.set.apiTokenSource, tokenSecretRandom: cs.set.tokenSecretRandom,
		resend: cs.set.cfg.ResendAPIKey != "", demo: cs.demo,
		codecEndpoint: cs.set.codecEndpoint, codecToken: cs.set.cfg.CodecAuthToken,
		codecTokenSource: cs.set.codecTokenSource, payloadKeySource: cs.set.payloadKeySource, localUI: cs.set.cfg.CodecAllowLocalUI,
		apiMetricsURLs: suffix(cs.apiURLs, "/metrics"), workerMetricsURLs: cs.metrics,
	}
	b.topology = []string{
		fmt.Sprintf("Temporal server %s: history, matching, frontend, worker, one process each,", devstack.TemporalServerVersion),
		fmt.Sprintf("  on Postgres: databases %[1]s and %[1]s_visibility", temporalDBPrefix(cs.set.cfg.DatabaseURL)),
		fmt.Sprintf("%d workers and %d APIs (%s) behind the load balancer at %s", clusterReplicas, clusterReplicas, strings.Join(cs.apiURLs, ", "), cs.set.apiURL),
		"A replica that exits is started again; pids in " + cs.pidDir,
	}
	return b
}

// temporalDBPrefix names the cluster's Temporal databases after the service's: onboarding_cluster
// gives onboarding_cluster_temporal and onboarding_cluster_temporal_visibility.
func temporalDBPrefix(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || strings.Trim(u.Path, "/") == "" {
		return "temporal"
	}
	return strings.Trim(u.Path, "/") + "_temporal"
}

func freeLocalAddr() (string, error) {
	p, err := devstack.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

func suffix(urls []string, s string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u + s
	}
	return out
}
