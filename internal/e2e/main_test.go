package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/resendtest"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/server"
	"github.com/onboarding-service/onboarding/worker"

	"github.com/prometheus/client_golang/prometheus"
)

// Stack is the running service under test.
type Stack struct {
	Cfg      config.Config
	Store    *store.Store
	Temporal client.Client
	Resend   *resendtest.Server
	// API serves with the contract's default durations (7-day TTL, 48 h reminder, 60 s resend
	// interval); Short serves the same database and worker with second-scale ones, for expiry.
	API   *httptest.Server
	Short *httptest.Server
	Token string
	// ShortCfg is the configuration behind Short.
	ShortCfg config.Config
}

// Short durations: long enough that a test acts inside them on a busy machine, short enough
// that expiry tests take seconds.
const (
	shortTTL      = 6 * time.Second
	shortReminder = 3 * time.Second
	shortResend   = time.Second
)

var stack *Stack

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := devstack.RepoRoot()
	if err != nil {
		return 0, err
	}
	artifacts := filepath.Join(root, "test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return 0, err
	}
	logFile, err := os.Create(filepath.Join(artifacts, "e2e.log"))
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// A database of its own inside the machine's Postgres server.
	dbURL, err := testDatabaseURL(os.Getenv("DATABASE_URL"))
	if err != nil {
		return 0, err
	}
	if err := store.EnsureDatabase(ctx, dbURL); err != nil {
		return 0, fmt.Errorf("postgres (run `make test`, which starts it): %w", err)
	}
	defer func() { _ = store.DropDatabase(context.Background(), dbURL) }()
	if err := store.Migrate(ctx, dbURL); err != nil {
		return 0, err
	}

	bin := os.Getenv("TEMPORAL_CLI")
	if bin == "" {
		bin = filepath.Join(root, ".bin", "temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		return 0, fmt.Errorf("temporal CLI not found at %s: run `make test`, which builds it", bin)
	}
	tmp, err := os.MkdirTemp("", "onboarding-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary: bin, DBFile: filepath.Join(tmp, "temporal.db"), LogFile: filepath.Join(artifacts, "e2e-temporal.log"),
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = temporal.Stop() }()

	rs := resendtest.NewServer("re_e2e_" + randomHex(8))
	defer rs.Close()

	env := map[string]string{
		"DATABASE_URL":          dbURL,
		"TEMPORAL_ADDRESS":      temporal.Address(),
		"TEMPORAL_NAMESPACE":    temporal.Namespace(),
		"TEMPORAL_TASK_QUEUE":   "onboarding-e2e",
		"RESEND_API_KEY":        rs.APIKey,
		"RESEND_BASE_URL":       rs.URL,
		"EMAIL_FROM":            "Acme Onboarding <onboarding@acme.test>",
		"PUBLIC_BASE_URL":       "http://portal.test",
		"TOKEN_SECRET":          randomHex(32),
		"BOOTSTRAP_API_TOKEN":   "e2e-" + randomHex(16),
		"EMAIL_RATE_PER_SECOND": "100",
		"WORKER_METRICS_ADDR":   "127.0.0.1:0",
		// Every test calls from 127.0.0.1: the rate limits have tests of their own (security_test.go).
		"RATE_LIMIT_INVITEE_IP":          "0",
		"RATE_LIMIT_INVITEE_TOKEN":       "0",
		"RATE_LIMIT_INVITATIONS_ACCOUNT": "0",
	}
	cfg, err := config.LoadFrom(func(k string) string { return env[k] })
	if err != nil {
		return 0, err
	}
	env["INVITATION_TTL"] = shortTTL.String()
	env["INVITATION_REMINDER_BEFORE"] = shortReminder.String()
	env["RESEND_MIN_INTERVAL"] = shortResend.String()
	shortCfg, err := config.LoadFrom(func(k string) string { return env[k] })
	if err != nil {
		return 0, err
	}
	shortCfg.TokenSecret = cfg.TokenSecret

	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if err := st.EnsureAPIToken(ctx, "bootstrap", cfg.BootstrapAPIToken, nil); err != nil {
		return 0, err
	}
	tc, err := temporalclient.Dial(ctx, cfg, logger, temporalclient.WithPayloadEncryption(cfg))
	if err != nil {
		return 0, err
	}
	defer tc.Close()

	acts, err := worker.NewActivities(cfg, st, logger)
	if err != nil {
		return 0, err
	}
	mainWorker, emailWorker := worker.New(tc, cfg, acts)
	if err := emailWorker.Start(); err != nil {
		return 0, err
	}
	defer emailWorker.Stop()
	if err := mainWorker.Start(); err != nil {
		return 0, err
	}
	defer mainWorker.Stop()

	newAPI := func(c config.Config) *httptest.Server {
		return httptest.NewServer(server.New(server.Deps{
			Config: c, Store: st, Temporal: tc, Signer: invitetoken.NewSigner(c.TokenSecret, c.TokenSecretPrevious...),
			Hasher: password.NewHasher(4), Logger: logger, Registry: prometheus.NewRegistry(),
		}))
	}
	api, short := newAPI(cfg), newAPI(shortCfg)
	defer api.Close()
	defer short.Close()

	stack = &Stack{Cfg: cfg, Store: st, Temporal: tc, Resend: rs, API: api, Short: short,
		Token: cfg.BootstrapAPIToken, ShortCfg: shortCfg}
	return m.Run(), nil
}

// testDatabaseURL names a fresh database on the server of base (DATABASE_URL's default).
func testDatabaseURL(base string) (string, error) {
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/onboarding_e2e_" + randomHex(6)
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// unique returns an email address no other test uses.
func unique(local string) string {
	return strings.ToLower(local) + "+" + randomHex(4) + "@example.test"
}
