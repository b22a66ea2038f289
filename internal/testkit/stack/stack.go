// Package stack starts the whole service for tests: a Temporal dev server (the pinned CLI), a
// Postgres database of its own, a real worker and the real API router, with a test server
// speaking Resend's HTTP API as the only stand-in. The end-to-end and the API's own tests use it.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
	"github.com/onboarding-service/onboarding/server/api"
	"github.com/onboarding-service/onboarding/worker"
)

// Short durations of the second API: long enough that a test acts inside them on a busy
// machine, short enough that expiry tests take seconds.
const (
	ShortTTL      = 6 * time.Second
	ShortReminder = 3 * time.Second
	ShortResend   = time.Second
)

// Options adjust the stack.
type Options struct {
	// Name tags the database and the log files (e.g. "e2e", "server").
	Name string
	// Log receives the service's JSON logs; nil writes them to test-artifacts/<Name>.log.
	Log io.Writer
}

// Stack is the running service.
type Stack struct {
	Cfg config.Config
	// ShortCfg is Cfg with second-scale INVITATION_TTL, reminder and resend interval.
	ShortCfg config.Config
	DBURL    string
	Store    *store.Store
	Temporal client.Client
	// Server is the Temporal dev server, or with TEST_TEMPORAL=cluster (make test-cluster) a
	// Temporal cluster on Postgres (devstack.StartCluster).
	Server devstack.TemporalServer
	Resend *resendtest.Server
	Logger *slog.Logger
	// API serves with Cfg, Short with ShortCfg; both share the database and the worker. With
	// TEST_TEMPORAL=cluster each is a load balancer (devstack.LoadBalancer) over two API
	// replicas, and two worker replicas (each its own Temporal connection) share the tasks.
	API   *httptest.Server
	Short *httptest.Server
	// Token is an unscoped API token (BOOTSTRAP_API_TOKEN).
	Token string

	closers []func()
}

// Start brings the stack up. Postgres must be reachable at DATABASE_URL's server (`make test`
// starts it) and the Temporal CLI must be at TEMPORAL_CLI or <repo>/.bin/temporal.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if opts.Name == "" {
		opts.Name = "stack"
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		return nil, err
	}
	artifacts := filepath.Join(root, "test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		f, err := os.Create(filepath.Join(artifacts, opts.Name+".log"))
		if err != nil {
			return nil, err
		}
		s.defer_(func() { _ = f.Close() })
		opts.Log = f
	}
	s.Logger = slog.New(slog.NewJSONHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))

	if s.DBURL, err = databaseURL(os.Getenv("DATABASE_URL"), opts.Name); err != nil {
		return nil, err
	}
	if err := migrations.EnsureDatabase(ctx, s.DBURL); err != nil {
		return nil, fmt.Errorf("postgres (run `make test`, which starts it): %w", err)
	}
	if err := dropAbandoned(ctx, s.DBURL); err != nil {
		return nil, fmt.Errorf("dropping abandoned test databases: %w", err)
	}
	s.defer_(func() { _ = testdb.Drop(context.Background(), s.DBURL) })
	if err := migrations.Apply(ctx, s.DBURL); err != nil {
		return nil, err
	}

	bin := os.Getenv("TEMPORAL_CLI")
	if bin == "" {
		bin = filepath.Join(root, ".bin", "temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("temporal CLI not found at %s: run `make test`, which builds it", bin)
	}
	tmp, err := os.MkdirTemp("", "onboarding-"+opts.Name+"-")
	if err != nil {
		return nil, err
	}
	s.defer_(func() { _ = os.RemoveAll(tmp) })
	if s.Server, err = startTemporal(ctx, s, root, bin, tmp, artifacts, opts.Name); err != nil {
		return nil, err
	}

	s.Resend = resendtest.NewServer("re_test_" + RandomHex(8))
	s.defer_(s.Resend.Close)

	env := map[string]string{
		"DATABASE_URL":          s.DBURL,
		"TEMPORAL_ADDRESS":      s.Server.Address(),
		"TEMPORAL_NAMESPACE":    s.Server.Namespace(),
		"TEMPORAL_TASK_QUEUE":   "onboarding-" + opts.Name,
		"RESEND_API_KEY":        s.Resend.APIKey,
		"RESEND_BASE_URL":       s.Resend.URL,
		"EMAIL_FROM":            "Acme Onboarding <onboarding@acme.test>",
		"PUBLIC_BASE_URL":       "http://portal.test",
		"TOKEN_SECRET":          RandomHex(32),
		"BOOTSTRAP_API_TOKEN":   "test-" + RandomHex(16),
		"EMAIL_RATE_PER_SECOND": "100",
		"WORKER_METRICS_ADDR":   "127.0.0.1:0",
		// The tests' webhook receivers listen on 127.0.0.1, as `make run`'s may.
		"WEBHOOK_ALLOW_LOCALHOST": "true",
		"WEBHOOK_RETRY_INITIAL":   "1s", // retries within seconds: 1 s, 2 s, 4 s, ...
		"RESEND_WEBHOOK_SECRET":   ResendWebhookSecret,
		// Every test calls from 127.0.0.1: rate limits are tested on servers of their own.
		"RATE_LIMIT_INVITEE_IP":          "0",
		"RATE_LIMIT_INVITEE_TOKEN":       "0",
		"RATE_LIMIT_INVITATIONS_ACCOUNT": "0",
		"RATE_LIMIT_UNAUTHORIZED_IP":     "0",
		"RATE_LIMIT_SIGN_IN_IP":          "0", // the per-user sign-in limit stays on: e2e tests it
		"RATE_LIMIT_PASSWORD_RESET_IP":   "0", // likewise the per-address reset limit
	}
	if s.Cfg, err = config.LoadFrom(func(k string) string { return env[k] }); err != nil {
		return nil, err
	}
	env["INVITATION_TTL"] = ShortTTL.String()
	env["INVITATION_REMINDER_BEFORE"] = ShortReminder.String()
	env["RESEND_MIN_INTERVAL"] = ShortResend.String()
	if s.ShortCfg, err = config.LoadFrom(func(k string) string { return env[k] }); err != nil {
		return nil, err
	}

	if err := devstack.PinEmailQueue(ctx, s.Server, s.Cfg.TemporalTaskQueue); err != nil {
		return nil, err
	}
	if s.Store, err = store.Open(ctx, s.DBURL); err != nil {
		return nil, err
	}
	s.defer_(s.Store.Close)
	s.Token = s.Cfg.BootstrapAPIToken
	if err := s.Store.EnsureAPIToken(ctx, "bootstrap", s.Token, nil); err != nil {
		return nil, err
	}
	if s.Temporal, err = temporalclient.Dial(ctx, s.Cfg, s.Logger, temporalclient.WithPayloadEncryption(s.Cfg)); err != nil {
		return nil, err
	}
	s.defer_(s.Temporal.Close)

	if err := s.startWorker(s.Temporal); err != nil {
		return nil, err
	}
	if cluster {
		// The second worker replica: its own connection, polling the same task queues.
		second, err := temporalclient.Dial(ctx, s.Cfg, s.Logger, temporalclient.WithPayloadEncryption(s.Cfg))
		if err != nil {
			return nil, err
		}
		s.defer_(second.Close)
		if err := s.startWorker(second); err != nil {
			return nil, err
		}
	}
	if err := worker.EnsureMaintenanceSchedule(ctx, s.Temporal, s.Cfg); err != nil {
		return nil, err
	}

	if s.API, err = s.serve(s.Cfg); err != nil {
		return nil, err
	}
	if s.Short, err = s.serve(s.ShortCfg); err != nil {
		return nil, err
	}
	return s, nil
}

// startWorker runs one worker replica on tc: the invitation and email workers, the webhook
// worker and its dispatcher.
func (s *Stack) startWorker(tc client.Client) error {
	acts, err := worker.NewActivities(s.Cfg, s.Store, s.Logger)
	if err != nil {
		return err
	}
	mainWorker, emailWorker := worker.New(tc, s.Cfg, acts)
	if err := emailWorker.Start(); err != nil {
		return err
	}
	s.defer_(emailWorker.Stop)
	if err := mainWorker.Start(); err != nil {
		return err
	}
	s.defer_(mainWorker.Stop)
	hooks := worker.NewWebhooks(tc, s.Cfg, s.Store, nil, s.Logger)
	if err := hooks.Worker.Start(); err != nil {
		return err
	}
	s.defer_(hooks.Worker.Stop)
	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		hooks.Dispatcher.Run(dispatchCtx)
	}()
	s.defer_(func() {
		stopDispatch()
		<-dispatched
	})
	return nil
}

// serve starts the API with cfg: one server, or on a cluster a load balancer over two.
func (s *Stack) serve(cfg config.Config) (*httptest.Server, error) {
	if !cluster {
		srv := httptest.NewServer(s.Handler(cfg, prometheus.NewRegistry()))
		s.defer_(srv.Close)
		return srv, nil
	}
	var urls []string
	for range 2 {
		replica := httptest.NewServer(s.Handler(cfg, prometheus.NewRegistry()))
		s.defer_(replica.Close)
		urls = append(urls, replica.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.defer_(cancel)
	lb, err := devstack.NewLoadBalancer(ctx, urls, "/readyz", s.Logger)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(lb)
	s.defer_(srv.Close)
	return srv, nil
}

// Handler returns the real API router over the stack's database and Temporal, with cfg.
func (s *Stack) Handler(cfg config.Config, reg *prometheus.Registry) http.Handler {
	return api.New(api.Deps{
		Config: cfg, Store: s.Store, Temporal: s.Temporal, Signer: invitetoken.NewSigner(cfg.TokenSecret, cfg.TokenSecretPrevious...),
		Hasher: password.NewHasher(4), Logger: s.Logger, Registry: reg,
	})
}

// ResendWebhookSecret is the stack's RESEND_WEBHOOK_SECRET: tests sign provider events with it.
const ResendWebhookSecret = "whsec_c3RhY2stcmVzZW5kLXdlYmhvb2stc2VjcmV0LTMyYg=="

// Close stops everything Start started, in reverse order.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func (s *Stack) defer_(f func()) { s.closers = append(s.closers, f) }

// databaseURL names a fresh database on the server of base (DATABASE_URL's default).
func databaseURL(base, name string) (string, error) {
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", errors.New("DATABASE_URL names no server")
	}
	// The owner's pid is part of the name, so a later run can tell an abandoned database from
	// a live one (see dropAbandoned).
	u.Path = fmt.Sprintf("/onboarding_%s_p%d_%s", name, os.Getpid(), RandomHex(6))
	return u.String(), nil
}

// testDatabaseName matches the databases databaseURL names, capturing the owner's pid.
// A cluster's Temporal databases (see startTemporal) match too.
var testDatabaseName = regexp.MustCompile(`^onboarding_[a-z0-9]+_p([0-9]+)_[0-9a-f]+(_visibility)?$`)

// dbName is the database part of a DATABASE_URL.
func dbName(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// dropAbandoned drops the test databases whose owning process is gone: one killed before its
// cleanup ran (a fuzzing worker the fuzzer stops, a test binary hit by its timeout) would
// otherwise stay on the machine's Postgres for good.
func dropAbandoned(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `select datname from pg_database where datname like 'onboarding\_%'`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range names {
		m := testDatabaseName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive (or not ours to judge)
		}
		_, _ = conn.Exec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
	}
	return nil
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
