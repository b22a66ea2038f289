package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/server/api"
)

// obsStack is the service as production runs it, for the observability tests: the real
// onboarding-worker binary (with its /metrics, its JSON logs and its own Prometheus registry),
// two API routers on a registry of their own, and a Temporal dev server of its own with the Web
// UI on. It shares only Postgres with the package's stack, so the metrics it exports count
// exactly what these tests did, and its Resend stand-in's faults touch no other test.
type obsStack struct {
	Root string
	// Cfg is the settings the worker and API run with; ShortCfg the API with second-scale
	// durations (6 s TTL) for expiry.
	Cfg, ShortCfg config.Config
	Env           map[string]string
	Temporal      *devstack.Temporal
	Client        client.Client
	Resend        *resendtest.Server
	API, Short    *httptest.Server
	// WorkerBinary is the built onboarding-worker; WorkerMetricsAddr its /metrics host:port.
	WorkerBinary      string
	WorkerMetricsAddr string
	WorkerLog         string
	// Artifacts is test-artifacts/observability: logs, scraped metrics, Prometheus' config.
	Artifacts string
}

const obsTaskQueue = "onboarding-obs"

// startObsStack starts the observability stack; t's cleanup stops it.
func startObsStack(t *testing.T) *obsStack {
	t.Helper()
	ctx := t.Context()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	o := &obsStack{Root: root, Artifacts: filepath.Join(root, "test-artifacts", "observability")}
	if err := os.MkdirAll(o.Artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()

	// The worker binary, built now so that the test runs what ships.
	o.WorkerBinary = filepath.Join(tmp, "onboarding-worker")
	build := exec.CommandContext(ctx, "go", "build", "-o", o.WorkerBinary, "./worker/cmd/onboarding-worker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build onboarding-worker: %v\n%s", err, out)
	}

	bin := os.Getenv("TEMPORAL_CLI")
	if bin == "" {
		bin = filepath.Join(root, ".bin", "temporal")
	}
	uiPort, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	o.Temporal, err = devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary: bin, UIPort: uiPort, LogFile: filepath.Join(o.Artifacts, "temporal.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Temporal.Stop() })

	o.Resend = resendtest.NewServer("re_obs_" + randomHex(8))
	t.Cleanup(o.Resend.Close)

	metricsPort, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	o.WorkerMetricsAddr = "127.0.0.1:" + strconv.Itoa(metricsPort)
	o.Env = map[string]string{
		"APP_ENV": "production", // JSON logs, as operators see them
		// In clear, so the UI screenshots show the story (production encrypts; docs/security.md).
		"PAYLOAD_ENCRYPTION_OPT_OUT": "true",
		"DATABASE_URL":               stack.Cfg.DatabaseURL,
		"TEMPORAL_ADDRESS":           o.Temporal.Address(),
		"TEMPORAL_NAMESPACE":         o.Temporal.Namespace(),
		"TEMPORAL_TASK_QUEUE":        obsTaskQueue,
		"RESEND_API_KEY":             o.Resend.APIKey,
		"RESEND_BASE_URL":            o.Resend.URL,
		"EMAIL_FROM":                 "Acme Onboarding <onboarding@acme.test>",
		"PUBLIC_BASE_URL":            "http://portal.test",
		"TOKEN_SECRET":               randomHex(32),
		"EMAIL_RATE_PER_SECOND":      "100",
		"WORKER_METRICS_ADDR":        o.WorkerMetricsAddr,
		"LOG_LEVEL":                  "debug",
	}
	o.Cfg, err = config.LoadFrom(func(k string) string { return o.Env[k] })
	if err != nil {
		t.Fatal(err)
	}
	shortEnv := map[string]string{
		"INVITATION_TTL":             shortTTL.String(),
		"INVITATION_REMINDER_BEFORE": shortReminder.String(),
		"RESEND_MIN_INTERVAL":        shortResend.String(),
	}
	o.ShortCfg, err = config.LoadFrom(func(k string) string {
		if v, ok := shortEnv[k]; ok {
			return v
		}
		return o.Env[k]
	})
	if err != nil {
		t.Fatal(err)
	}

	o.WorkerLog = filepath.Join(o.Artifacts, "worker.log")
	logFile, err := os.Create(o.WorkerLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(o.WorkerBinary)
	cmd.Env = o.environ()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	worker, err := devstack.StartProcess("onboarding-worker", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := worker.Stop(25 * time.Second); err != nil {
			t.Errorf("stopping the worker: %v", err)
		}
	})
	obsEventually(t, 60*time.Second, "the worker's /metrics", func() bool {
		select {
		case <-worker.Done():
			t.Fatalf("onboarding-worker exited: %v (log in %s)", worker.Wait(), o.WorkerLog)
		default:
		}
		res, err := http.Get("http://" + o.WorkerMetricsAddr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	apiLog, err := os.Create(filepath.Join(o.Artifacts, "api.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { apiLog.Close() })
	logger := slog.New(slog.NewJSONHandler(apiLog, &slog.HandlerOptions{Level: slog.LevelDebug})).With("process", "api")
	o.Client, err = temporalclient.Dial(ctx, o.Cfg, logger, temporalclient.WithPayloadEncryption(o.Cfg)) // as the API dials
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Client.Close)
	reg := prometheus.NewRegistry() // one registry for both routers, as one API process has
	newAPI := func(c config.Config) *httptest.Server {
		s := httptest.NewServer(api.New(api.Deps{
			Config: c, Store: stack.Store, Temporal: o.Client, Signer: invitetoken.NewSigner(c.TokenSecret),
			Hasher: password.NewHasher(4), Logger: logger, Registry: reg,
		}))
		t.Cleanup(s.Close)
		return s
	}
	o.API, o.Short = newAPI(o.Cfg), newAPI(o.ShortCfg)
	return o
}

// environ is the worker's environment: the test process's (PATH, HOME) with the settings on top.
func (o *obsStack) environ() []string {
	env := os.Environ()
	for k, v := range o.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// portal, short and invitee are the API as the portal and the invitee call it.
func (o *obsStack) portal() apiClient  { return apiClient{base: o.API.URL, token: stack.Token} }
func (o *obsStack) short() apiClient   { return apiClient{base: o.Short.URL, token: stack.Token} }
func (o *obsStack) invitee() apiClient { return apiClient{base: o.API.URL} }

// APIMetricsURL and WorkerMetricsURL are the two /metrics endpoints.
func (o *obsStack) APIMetricsURL() string    { return o.API.URL + "/metrics" }
func (o *obsStack) WorkerMetricsURL() string { return "http://" + o.WorkerMetricsAddr + "/metrics" }

// emailHash runs `onboarding-worker email-hash ADDRESS` as support would, with the service's
// settings, and returns what it prints.
func (o *obsStack) emailHash(t *testing.T, address string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), o.WorkerBinary, "email-hash", address)
	cmd.Env = o.environ()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("onboarding-worker email-hash: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// scrape fetches a /metrics endpoint and saves it under the artifacts as name.
func (o *obsStack) scrape(t *testing.T, url, name string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
	}
	if err := os.WriteFile(filepath.Join(o.Artifacts, name), body, 0o644); err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// obsEventually polls cond every 200 ms until it holds, failing t after timeout.
func obsEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitObsEmail waits for the n-th email (1-based) to addr whose subject contains substr and
// returns its text.
func (o *obsStack) waitEmail(t *testing.T, addr, substr string, n int) string {
	t.Helper()
	var text string
	obsEventually(t, 30*time.Second, fmt.Sprintf("email %d to %s about %q", n, addr, substr), func() bool {
		count := 0
		for _, e := range o.Resend.EmailsTo(addr) {
			if strings.Contains(e.Subject, substr) {
				count++
				if count == n {
					text = e.Text
					return true
				}
			}
		}
		return false
	})
	return text
}

// obsContext bounds a Temporal call made by a test.
func obsContext(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 30*time.Second)
}
