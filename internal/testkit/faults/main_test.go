package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
)

// record makes TestRecordHistories write what it recorded into workflows/testdata/histories.
var record = flag.Bool("record", false, "TestRecordHistories writes the recorded histories to workflows/testdata/histories")

// suite is what every fault test shares: the binaries, the database, the dev server, the fake
// Resend and the secrets. Each test then starts its own API and worker processes (a service, on
// a task queue of its own), so one test's crash never meets another test's requests.
type suite struct {
	root      string
	artifacts string
	apiBin    string
	workerBin string
	// slowWorkerBin is the real worker with provisioning held back (startSlowWorker).
	slowWorkerBin string
	cliBin        string
	tmp           string

	dbURL string
	// db is the tests' own pool, for SQL assertions; admin is connected to the server's
	// `postgres` database, for pg_terminate_backend.
	db    *pgxpool.Pool
	admin *pgxpool.Pool

	// temporal is the dev server, or with TEST_TEMPORAL=cluster a cluster on Postgres.
	temporal devstack.TemporalServer
	tc       client.Client

	resend *resendtest.Server
	faults faultTable

	tokenSecret string
	apiToken    string
}

var env *suite

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "faults: -short: the fault-injection suite is skipped")
		os.Exit(m.Run())
	}
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	ctx := context.Background()
	s := &suite{tokenSecret: randomHex(32), apiToken: "faults-" + randomHex(16)}
	var err error
	if s.root, err = devstack.RepoRoot(); err != nil {
		return 0, err
	}
	s.artifacts = filepath.Join(s.root, "test-artifacts", "faults")
	_ = os.RemoveAll(s.artifacts)
	if err := os.MkdirAll(s.artifacts, 0o755); err != nil {
		return 0, err
	}
	if s.tmp, err = os.MkdirTemp("", "onboarding-faults-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(s.tmp)

	s.cliBin = os.Getenv("TEMPORAL_CLI")
	if s.cliBin == "" {
		s.cliBin = filepath.Join(s.root, ".bin", "temporal")
	} else if !filepath.IsAbs(s.cliBin) {
		s.cliBin = filepath.Join(s.root, s.cliBin) // relative to the repository, as make passes it
	}
	if _, err := os.Stat(s.cliBin); err != nil {
		return 0, fmt.Errorf("temporal CLI not found at %s: run `make test`, which builds it", s.cliBin)
	}

	// The binaries build while the dev server starts.
	built := make(chan error, 1)
	go func() { built <- s.build(ctx) }()

	s.dbURL, err = databaseURL(os.Getenv("DATABASE_URL"), "onboarding_faults_"+randomHex(6))
	if err != nil {
		return 0, err
	}
	if err := migrations.EnsureDatabase(ctx, s.dbURL); err != nil {
		<-built
		return 0, fmt.Errorf("postgres (run `make test`, which starts it): %w", err)
	}
	defer func() { _ = testdb.Drop(context.Background(), s.dbURL) }()
	if err := migrations.Apply(ctx, s.dbURL); err != nil {
		<-built
		return 0, err
	}
	if s.db, err = pgxpool.New(ctx, withParam(s.dbURL, "application_name", "faults-test")); err != nil {
		<-built
		return 0, err
	}
	defer s.db.Close()
	adminURL, err := databaseURL(s.dbURL, "postgres")
	if err != nil {
		<-built
		return 0, err
	}
	if s.admin, err = pgxpool.New(ctx, withParam(adminURL, "application_name", "faults-admin")); err != nil {
		<-built
		return 0, err
	}
	defer s.admin.Close()

	var stopTemporal func()
	s.temporal, stopTemporal, err = devstack.StartTestTemporal(ctx, devstack.TestTemporalOptions{
		CLI: s.cliBin, Root: s.root, Dir: s.tmp, LogFile: filepath.Join(s.artifacts, "temporal.log"),
		PostgresURL: s.dbURL, DBPrefix: "temporal_faults_" + randomHex(6),
	})
	if err != nil {
		<-built
		return 0, err
	}
	defer stopTemporal()
	if err := <-built; err != nil {
		return 0, err
	}
	if s.tc, err = dialTemporal(ctx, s.temporal.Address()); err != nil {
		return 0, err
	}
	defer s.tc.Close()

	s.resend = resendtest.NewServer("re_faults_" + randomHex(8))
	defer s.resend.Close()
	s.faults.install(s.resend)

	env = s
	return m.Run(), nil
}

// build compiles the API, the worker and the test kit's slow-provisioning worker into the
// suite's scratch directory, with the race detector when the tests run with it, so the
// processes under fault are checked for races too.
func (s *suite) build(ctx context.Context) error {
	args := []string{"build", "-o", s.tmp + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./server/cmd/onboarding-api", "./worker/cmd/onboarding-worker", "./internal/testkit/cmd/onboarding-worker-slow")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	s.apiBin = filepath.Join(s.tmp, "onboarding-api")
	s.workerBin = filepath.Join(s.tmp, "onboarding-worker")
	s.slowWorkerBin = filepath.Join(s.tmp, "onboarding-worker-slow")
	return nil
}

// dialTemporal connects a client for the tests' own look-ups (histories, descriptions, lists).
func dialTemporal(ctx context.Context, address string) (client.Client, error) {
	return client.DialContext(ctx, client.Options{
		HostPort: address,
		Logger:   tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
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

// withParam sets a query parameter of a Postgres URL (application_name names each process's
// connections, so a test can terminate exactly its own processes' backends).
func withParam(rawURL, key, value string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
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

// need skips a test when the suite is not set up (-short).
func need(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("the fault-injection suite does not run with -short")
	}
}

// faultTable lets each test make the shared fake Resend fail for its own recipients only.
type faultTable struct {
	mu sync.Mutex
	by map[string]func(resendtest.Email) *resendtest.Fault
}

func (f *faultTable) install(rs *resendtest.Server) {
	rs.InjectFaults(func(e resendtest.Email) *resendtest.Fault {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, to := range e.To {
			if fn := f.by[strings.ToLower(to)]; fn != nil {
				return fn(e)
			}
		}
		return nil
	})
}

// set makes fn decide the answer to every email to addr; nil removes it.
func (f *faultTable) set(addr string, fn func(resendtest.Email) *resendtest.Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.by == nil {
		f.by = map[string]func(resendtest.Email) *resendtest.Fault{}
	}
	if fn == nil {
		delete(f.by, strings.ToLower(addr))
		return
	}
	f.by[strings.ToLower(addr)] = fn
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
