package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/store/migrations"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
)

// stopGrace is how long a stopping API or worker may drain (their own limit is 20 s).
const stopGrace = 25 * time.Second

// stackOptions says how to start the bench's own stack.
type stackOptions struct {
	root        string
	temporalCLI string
	artifacts   string
	// baseDatabaseURL names the Postgres server (DATABASE_URL); the bench uses a database of its
	// own on it, created and dropped by the run.
	baseDatabaseURL string
	encrypt         bool
	keep            bool
	// cluster runs Temporal as `make cluster` does (devstack.StartTestTemporal with
	// TEST_TEMPORAL=cluster: four server processes on Postgres persistence and SQL visibility,
	// in databases named after the bench's own) instead of the CLI's dev server.
	cluster bool
	say     func(format string, args ...any)
}

// stack is the service as `make run` runs it, started for one bench run: a Temporal dev server
// (or with -temporal cluster a cluster) on free ports, a database of its own, a fake Resend, and
// the worker and the API as built binaries in processes of their own, so their memory can be
// read from /proc.
type stack struct {
	opts  stackOptions
	tmp   string
	dbURL string
	// temporal is the server everything runs against: dev (the CLI's dev server) or cluster
	// (a *devstack.Cluster), the other one nil. stopTemporal stops it and, for a cluster, drops
	// its databases.
	temporal     devstack.TemporalServer
	dev          *devstack.Temporal
	cluster      *devstack.Cluster
	stopTemporal func()
	// temporalDBs are a cluster's two databases.
	temporalDBs []string
	tc          client.Client
	resend      *resendtest.Server
	api         *devstack.Process
	worker      *devstack.Process
	apiURL      string
	apiToken    string
	// apiPprof and workerPprof are the processes' PPROF_ADDR (always on, on loopback: -profile
	// takes profiles there, and a failure saves goroutine dumps from there).
	apiPprof, workerPprof string
	workerMetrics         string
	settings              map[string]string
	temporalPID           int
}

// startStack starts everything; on an error it stops what it had started.
func startStack(ctx context.Context, o stackOptions) (_ *stack, err error) {
	s := &stack{opts: o, apiToken: "bench-" + randomHex(16)}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.tmp, err = os.MkdirTemp("", "onboarding-bench-"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.artifacts, 0o755); err != nil {
		return nil, err
	}
	built := make(chan error, 1)
	go func() { built <- s.build(ctx) }()

	if s.dbURL, err = databaseURL(o.baseDatabaseURL, "onboarding_bench_"+randomHex(6)); err != nil {
		<-built
		return nil, err
	}
	o.say("database %s", redacted(s.dbURL))
	if err := migrations.EnsureDatabase(ctx, s.dbURL); err != nil {
		<-built
		return nil, fmt.Errorf("postgres (`make postgres` starts it): %w", err)
	}
	if err := migrations.Apply(ctx, s.dbURL); err != nil {
		<-built
		return nil, fmt.Errorf("migrate: %w", err)
	}
	err = s.startTemporal(ctx)
	buildErr := <-built
	if err != nil {
		return nil, err
	}
	if buildErr != nil {
		return nil, buildErr
	}
	if s.tc, err = client.DialContext(ctx, client.Options{
		HostPort:  s.temporal.Address(),
		Namespace: s.temporal.Namespace(),
		Logger:    tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	}); err != nil {
		return nil, err
	}
	s.resend = resendtest.NewServer("re_bench_" + randomHex(8))

	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = devstack.FreePort(); err != nil {
			return nil, err
		}
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	s.apiURL, s.workerMetrics = "http://"+addr(ports[0]), "http://"+addr(ports[1])
	s.apiPprof, s.workerPprof = addr(ports[2]), addr(ports[3])
	s.settings = s.env(addr(ports[0]), addr(ports[1]))

	// The worker first, so the first invitations find it polling.
	if s.worker, err = s.startProcess("worker", filepath.Join(s.tmp, "onboarding-worker"), s.workerPprof); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.worker, s.workerMetrics+"/healthz"); err != nil {
		return nil, err
	}
	if s.api, err = s.startProcess("api", filepath.Join(s.tmp, "onboarding-api"), s.apiPprof); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.api, s.apiURL+"/readyz"); err != nil {
		return nil, err
	}
	o.say("worker pid %d, API pid %d at %s (logs in %s)", s.worker.Pid(), s.api.Pid(), s.apiURL, o.artifacts)
	return s, nil
}

// env is what the API and the worker run with: development settings as under `make run`, but
// every abuse limit off, no recipient cap, a fake Resend that accepts everything, and an email
// rate that never throttles, so the figures are the service's and not its brakes'.
func (s *stack) env(httpAddr, metricsAddr string) map[string]string {
	e := map[string]string{
		"APP_ENV":               "development",
		"LOG_FORMAT":            "json",
		"LOG_LEVEL":             "info",
		"DATABASE_URL":          s.dbURL,
		"HTTP_ADDR":             httpAddr,
		"WORKER_METRICS_ADDR":   metricsAddr,
		"METRICS_ADDR":          "",
		"TEMPORAL_ADDRESS":      s.temporal.Address(),
		"TEMPORAL_NAMESPACE":    s.temporal.Namespace(),
		"TEMPORAL_TASK_QUEUE":   "onboarding",
		"TEMPORAL_API_KEY":      "",
		"TEMPORAL_TLS_CERT":     "",
		"TEMPORAL_TLS_KEY":      "",
		"RESEND_API_KEY":        s.resend.APIKey,
		"RESEND_BASE_URL":       s.resend.URL,
		"EMAIL_FROM":            "Bench Onboarding <onboarding@bench.test>",
		"PUBLIC_BASE_URL":       "http://portal.bench.test",
		"TOKEN_SECRET":          randomHex(32),
		"BOOTSTRAP_API_TOKEN":   s.apiToken,
		"EMAIL_RATE_PER_SECOND": "1000",
		// No cap: the bench sends thousands of invites.
		"EMAIL_RECIPIENT_DAILY_CAP":       "0",
		"RATE_LIMIT_INVITEE_IP":           "0",
		"RATE_LIMIT_INVITEE_TOKEN":        "0",
		"RATE_LIMIT_INVITATIONS_ACCOUNT":  "0",
		"RATE_LIMIT_SIGN_IN_USER":         "0",
		"RATE_LIMIT_SIGN_IN_IP":           "0",
		"RATE_LIMIT_PASSWORD_RESET_EMAIL": "0",
		"RATE_LIMIT_PASSWORD_RESET_IP":    "0",
		"RATE_LIMIT_UNAUTHORIZED_IP":      "0",
		"PAYLOAD_ENCRYPTION_KEY":          "",
		"PPROF_ADDR":                      "",
	}
	if s.opts.encrypt {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		e["PAYLOAD_ENCRYPTION_KEY"] = base64.StdEncoding.EncodeToString(key)
	}
	return e
}

// settingsSummary lists the settings that shape the figures, for the report.
func (s *stack) settingsSummary() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.settings)) {
		v := s.settings[k]
		switch {
		case strings.HasPrefix(k, "RATE_LIMIT_"), k == "EMAIL_RATE_PER_SECOND", k == "EMAIL_RECIPIENT_DAILY_CAP", k == "LOG_LEVEL", k == "LOG_FORMAT", k == "APP_ENV":
			out = append(out, k+"="+v)
		case k == "PAYLOAD_ENCRYPTION_KEY":
			out = append(out, "PAYLOAD_ENCRYPTION_KEY="+map[bool]string{true: "(random per run: payloads encrypted)", false: "(empty: payloads in clear)"}[v != ""])
		}
	}
	return append(out, "PPROF_ADDR=(loopback; idle unless profiled)")
}

func (s *stack) build(ctx context.Context) error {
	s.opts.say("building onboarding-api and onboarding-worker")
	args := []string{"build", "-o", s.tmp + string(filepath.Separator), "./server/cmd/onboarding-api", "./worker/cmd/onboarding-worker"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.opts.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (s *stack) startProcess(name, bin, pprofAddr string) (*devstack.Process, error) {
	cmd := exec.Command(bin)
	cmd.Dir = s.opts.root
	cmd.Env = os.Environ()
	for k, v := range s.settings {
		if k == "DATABASE_URL" {
			v = withParam(v, "application_name", "bench-"+name)
		}
		cmd.Env = append(cmd.Env, k+"="+v) // later entries win over inherited ones
	}
	if pprofAddr != "" {
		cmd.Env = append(cmd.Env, "PPROF_ADDR="+pprofAddr)
	}
	f, err := os.Create(filepath.Join(s.opts.artifacts, name+".log"))
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	return devstack.StartProcess(name, cmd)
}

// alive returns an error naming any process of the stack that has exited.
func (s *stack) alive() error {
	for _, p := range []*devstack.Process{s.api, s.worker} {
		if p == nil {
			continue
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited (%v); see %s", p.Name(), p.Wait(), filepath.Join(s.opts.artifacts, p.Name()+".log"))
		default:
		}
	}
	if s.dev != nil {
		select {
		case <-s.dev.Done():
			return fmt.Errorf("the Temporal dev server exited (%v); see %s", s.dev.Wait(), s.dev.LogFile())
		default:
		}
	}
	if s.cluster != nil {
		// A service that exits is restarted by its Keeper (the run notes it); one whose Keeper
		// has ended is gone for good.
		for _, svc := range devstack.ClusterServices {
			if k := s.cluster.Service(svc); k != nil {
				select {
				case <-k.Done():
					return fmt.Errorf("the Temporal cluster's %s service is down; see %s", svc, s.cluster.LogFile(svc))
				default:
				}
			}
		}
	}
	return nil
}

// stop stops the API, the worker and Temporal, in that order, then drops the database (and a
// cluster's databases).
func (s *stack) stop() {
	for _, p := range []*devstack.Process{s.api, s.worker} {
		if p != nil {
			if err := p.Stop(stopGrace); err != nil {
				s.opts.say("stopping %s: %v", p.Name(), err)
			}
		}
	}
	if s.tc != nil {
		s.tc.Close()
	}
	if s.stopTemporal != nil {
		s.stopTemporal()
	}
	if s.resend != nil {
		s.resend.Close()
	}
	if s.dbURL != "" && !s.opts.keep {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := testdb.Drop(ctx, s.dbURL); err != nil {
			s.opts.say("dropping the bench database: %v", err)
		}
		cancel()
	}
	if s.tmp != "" && !s.opts.keep {
		_ = os.RemoveAll(s.tmp)
	} else if s.tmp != "" {
		s.opts.say("kept %s and database %s", s.tmp, redacted(s.dbURL))
	}
}

// waitHTTP polls u until it answers 200, for up to 60 s; it gives up at once if p exits.
func waitHTTP(ctx context.Context, p *devstack.Process, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited during start (%v)", p.Name(), p.Wait())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		res, err := hc.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(res.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready (last: %v)", p.Name(), u, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// databaseURL names database name on the server of base (DATABASE_URL's default when empty).
func databaseURL(base, name string) (string, error) {
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func withParam(rawURL, key, value string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
