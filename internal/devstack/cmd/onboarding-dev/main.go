// Command onboarding-dev is what `make run` runs: the whole service on one machine, on the
// settings' defaults. It prepares the Postgres database, starts a Temporal dev server (state in
// .data/temporal.db, Web UI on :8233), builds and starts the worker and the API, creates demo
// data once, and prints where everything is. Ctrl-C stops the API, the worker and Temporal, in
// that order, so no request or activity is cut off by a dependency vanishing under it.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/onboarding-service/onboarding/internal/config"
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
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	err := run(ctx, stopSignals)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "onboarding-dev: %v\n", err)
		os.Exit(1)
	}
	// Stopped by Ctrl-C or SIGTERM: that is the normal end, even if it interrupted the start.
}

func say(format string, args ...any) {
	fmt.Fprintf(terminal, "onboarding-dev: "+format+"\n", args...)
}

// child is a supervised process: Temporal, the worker or the API.
type child struct {
	name string
	done <-chan struct{}
	wait func() error
	stop func() error
}

func run(ctx context.Context, stopSignals func()) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	binDir, dataDir := filepath.Join(root, ".bin"), filepath.Join(root, ".data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}

	// What the API and the worker get on top of this process's environment. Both must share one
	// TOKEN_SECRET: the worker signs the links it emails and the API verifies them.
	extraEnv := map[string]string{}
	tokenSecretRandom := os.Getenv("TOKEN_SECRET") == ""
	if tokenSecretRandom {
		// A new secret per start, as CONTRACT.md says for development: earlier links stop verifying.
		extraEnv["TOKEN_SECRET"] = randomHex()
	}
	apiToken, apiTokenSource, err := devAPIToken(filepath.Join(dataDir, "dev-api-token"))
	if err != nil {
		return err
	}
	extraEnv["BOOTSTRAP_API_TOKEN"] = apiToken
	// Validate the settings the children will see, so a bad value stops here with its name.
	cfg, err := config.LoadFrom(func(name string) string {
		if v, ok := extraEnv[name]; ok {
			return v
		}
		return os.Getenv(name)
	})
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	temporalHost, temporalPort, err := loopbackHostPort("TEMPORAL_ADDRESS", cfg.TemporalAddress)
	if err != nil {
		return err
	}
	uiPort := defaultTemporalUIPort
	if v := os.Getenv("TEMPORAL_UI_PORT"); v != "" {
		if uiPort, err = strconv.Atoi(v); err != nil || uiPort <= 0 || uiPort > 65535 {
			return fmt.Errorf("TEMPORAL_UI_PORT: %q is not a port number", v)
		}
	}
	apiURL, err := localURL("HTTP_ADDR", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	workerMetricsURL, err := localURL("WORKER_METRICS_ADDR", cfg.WorkerMetricsAddr)
	if err != nil {
		return err
	}
	workerMetricsURL += "/metrics"

	say("preparing database %s", redactedURL(cfg.DatabaseURL))
	if err := migrations.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("%w (is Postgres running? `make postgres` starts it)", err)
	}
	if err := migrations.Apply(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	cli, err := devstack.EnsureTemporalCLI(ctx, binDir)
	if err != nil {
		return err
	}

	// Children stop in the reverse order of their start: API, worker, Temporal.
	var started []child
	exits := make(chan child, 3)
	supervise := func(c child) {
		started = append(started, c)
		go func() {
			<-c.done
			exits <- c
		}()
	}
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			c := started[i]
			select {
			case <-c.done:
				continue // already exited, and that was reported
			default:
			}
			say("stopping %s", c.name)
			if stopErr := c.stop(); stopErr != nil {
				say("%v", stopErr)
			}
		}
	}()

	// Compile the API and the worker while Temporal boots: the two overlap well on two cores.
	built := make(chan error, 1)
	go func() { built <- buildBinaries(ctx, root, binDir) }()
	temporalLog := filepath.Join(dataDir, "temporal.log")
	say("starting Temporal dev server on %s (log: %s)", net.JoinHostPort(temporalHost, strconv.Itoa(temporalPort)), temporalLog)
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary:    cli,
		DBFile:    filepath.Join(dataDir, "temporal.db"),
		Host:      temporalHost,
		Port:      temporalPort,
		UIPort:    uiPort,
		Namespace: cfg.TemporalNamespace,
		LogFile:   temporalLog,
	})
	buildErr := <-built
	if err != nil {
		return err
	}
	supervise(child{name: "temporal", done: temporal.Done(), wait: temporal.Wait, stop: temporal.Stop})
	if buildErr != nil {
		return buildErr
	}

	extraEnv["TEMPORAL_ADDRESS"] = temporal.Address()
	env := os.Environ()
	for k, v := range extraEnv {
		env = append(env, k+"="+v) // exec keeps the last value of a duplicated key
	}
	for _, c := range []struct {
		name  string
		bin   string
		grace time.Duration
	}{
		// The worker first, so invitations created as soon as the API answers find it polling.
		{"worker", "onboarding-worker", workerStopGrace},
		{"api", "onboarding-api", apiStopGrace},
	} {
		out := &prefixWriter{dst: terminal, prefix: "[" + c.name + "] "}
		cmd := exec.Command(filepath.Join(binDir, c.bin))
		cmd.Dir, cmd.Env = root, env
		cmd.Stdout, cmd.Stderr = out, out // one writer for both: exec then writes from one goroutine
		p, err := devstack.StartProcess(c.name, cmd)
		if err != nil {
			return err
		}
		grace := c.grace
		done := make(chan struct{})
		go func() {
			<-p.Done()
			out.Flush()
			close(done)
		}()
		supervise(child{name: c.name, done: done, wait: p.Wait, stop: func() error { return p.Stop(grace) }})
	}

	for _, u := range []string{apiURL + "/readyz", workerMetricsURL} {
		if err := waitHTTP(ctx, u, exits); err != nil {
			return err
		}
	}

	api := apiClient{base: apiURL, token: apiToken, http: &http.Client{Timeout: 10 * time.Second}}
	demo, err := ensureDemoData(ctx, api, filepath.Join(dataDir, "demo.json"))
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	printBanner(bannerInfo{
		apiURL:            apiURL,
		uiURL:             temporal.UIURL(),
		workerMetricsURL:  workerMetricsURL,
		temporal:          temporal,
		temporalLog:       temporalLog,
		apiToken:          apiToken,
		apiTokenSource:    apiTokenSource,
		tokenSecretRandom: tokenSecretRandom,
		resend:            cfg.ResendAPIKey != "",
		demo:              demo,
	})

	select {
	case <-ctx.Done():
		// From here a second Ctrl-C ends onboarding-dev at once; the kernel then stops the
		// children (see devstack.StartProcess), so nothing keeps holding the ports.
		stopSignals()
		fmt.Fprintln(terminal)
		return nil
	case c := <-exits:
		return fmt.Errorf("%s exited unexpectedly (%v)", c.name, c.wait())
	}
}

// devAPIToken returns BOOTSTRAP_API_TOKEN if set, else the token kept in path, created on first
// use, so the token printed in the banner keeps working across restarts.
func devAPIToken(path string) (token, source string, err error) {
	if v := os.Getenv("BOOTSTRAP_API_TOKEN"); v != "" {
		return v, "from BOOTSTRAP_API_TOKEN", nil
	}
	source = "kept in " + path
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), source, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	token = randomHex()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return token, source, nil
}

// randomHex returns 32 random bytes, hex encoded.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// loopbackHostPort splits a TEMPORAL_ADDRESS for the dev server, which must listen on this
// machine: `make run` always starts its own.
func loopbackHostPort(name, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q is not host:port", name, addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s: %q has no valid port", name, addr)
	}
	if host == "localhost" {
		host = "127.0.0.1" // the dev server binds an IP, not a name
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%s: %q is not a loopback address; make run starts its own Temporal dev server "+
			"(unset %s or use 127.0.0.1:<port>)", name, addr, name)
	}
	return host, port, nil
}

// localURL turns a listen address such as ":8080" into a URL this machine can call.
func localURL(name, listenAddr string) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not host:port", name, listenAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	return u.Redacted()
}

func buildBinaries(ctx context.Context, root, binDir string) error {
	say("building .bin/onboarding-api and .bin/onboarding-worker")
	// A trailing separator makes go build write each main package under its own name.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator),
		"./server/cmd/onboarding-api", "./worker/cmd/onboarding-worker")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// waitHTTP polls u until it answers 200. It gives up when a supervised child exits, so a crash
// at start is reported at once, with the child's own output above it.
func waitHTTP(ctx context.Context, u string, exits <-chan child) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ticker.C:
		case c := <-exits:
			return fmt.Errorf("%s exited during start (%v)", c.name, c.wait())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", u, readyTimeout, last)
		}
	}
}

type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// call sends body as JSON and decodes a response with status want into out. Any other status
// is returned as an *httpStatusError carrying the problem document.
func (a apiClient) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &httpStatusError{method: method, path: path, status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

type httpStatusError struct {
	method, path string
	status       int
	body         string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

type demoData struct {
	AccountID      string `json:"account_id"`
	SubscriptionID string `json:"subscription_id"`
	GroupID        string `json:"group_id"`
}

// ensureDemoData reuses the demo account saved in path while the API still knows it (the
// database survives restarts), and creates it through the API otherwise.
func ensureDemoData(ctx context.Context, api apiClient, path string) (demoData, error) {
	var d demoData
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &d) == nil && d.AccountID != "" && d.SubscriptionID != "" {
		err := api.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(d.AccountID)+"/subscriptions/"+url.PathEscape(d.SubscriptionID), nil, http.StatusOK, nil)
		var statusErr *httpStatusError
		switch {
		case err == nil:
			return d, nil
		case !errors.As(err, &statusErr):
			return d, err // the API is unreachable: creating would fail too
		}
		say("saved demo data is gone (%v); creating it again", err)
	}

	var created struct {
		ID string `json:"id"`
	}
	if err := api.call(ctx, http.MethodPost, "/v1/accounts", map[string]any{"name": "Acme Corp"}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d = demoData{AccountID: created.ID}
	account := "/v1/accounts/" + url.PathEscape(d.AccountID)
	if err := api.call(ctx, http.MethodPost, account+"/subscriptions", map[string]any{
		"application": "Adobe Creative Cloud",
		"name":        "Acme Design Team",
		"seats":       5,
		"roles":       []string{"viewer", "editor", "admin"},
	}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d.SubscriptionID = created.ID
	if err := api.call(ctx, http.MethodPost, account+"/groups", map[string]any{"name": "Designers"}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d.GroupID = created.ID
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return d, err
	}
	return d, os.WriteFile(path, append(b, '\n'), 0o644)
}

type bannerInfo struct {
	apiURL, uiURL, workerMetricsURL string
	temporal                        *devstack.Temporal
	temporalLog                     string
	apiToken, apiTokenSource        string
	tokenSecretRandom               bool
	resend                          bool
	demo                            demoData
}

func printBanner(b bannerInfo) {
	invitation, _ := json.Marshal(map[string]any{
		"email":           "jane.doe@example.com",
		"first_name":      "Jane",
		"last_name":       "Doe",
		"subscription_id": b.demo.SubscriptionID,
		"role":            "editor",
		"group_ids":       []string{b.demo.GroupID},
	})
	var s strings.Builder
	line := strings.Repeat("=", 78)
	p := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	p("")
	p(line)
	p("  Onboarding service is running. Ctrl-C stops it.")
	p("")
	p("  API              %s   (OpenAPI: %s/openapi.yaml)", b.apiURL, b.apiURL)
	p("  Temporal UI      %s", b.uiURL)
	p("  API metrics      %s/metrics", b.apiURL)
	p("  Worker metrics   %s", b.workerMetricsURL)
	p("  Temporal         %s, namespace %s (log: %s)", b.temporal.Address(), b.temporal.Namespace(), b.temporalLog)
	p("  API token        %s", b.apiToken)
	p("                   (%s)", b.apiTokenSource)
	if b.tokenSecretRandom {
		p("  TOKEN_SECRET     random for this run: invite links from earlier runs no longer verify")
	}
	p("")
	p("  Demo data (Acme Corp, Adobe Creative Cloud / Acme Design Team, 5 seats)")
	p("    account        %s", b.demo.AccountID)
	p("    subscription   %s   (roles viewer, editor, admin)", b.demo.SubscriptionID)
	p("    group          %s   (Designers)", b.demo.GroupID)
	p("")
	p("  Invite Jane:")
	p("    curl -sS -X POST %s/v1/accounts/%s/invitations \\", b.apiURL, b.demo.AccountID)
	p("      -H 'Authorization: Bearer %s' \\", b.apiToken)
	p("      -H 'Content-Type: application/json' \\")
	p("      -d '%s'", invitation)
	p("")
	if b.resend {
		p("  Emails are sent through Resend (RESEND_API_KEY is set).")
	} else {
		p("  Emails go to the dev mailbox (RESEND_API_KEY is unset): nothing is sent, and the")
		p("  worker logs every email with its accept link. Look for the [worker] lines.")
	}
	p(line)
	_, _ = io.WriteString(terminal, s.String())
}

// lockedWriter makes each Write atomic with respect to the others.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter writes each complete line with a prefix, in one Write to dst.
type prefixWriter struct {
	dst    io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

// maxLine bounds the buffer for a child that writes a very long line without a newline.
const maxLine = 64 << 10

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			return len(p), nil
		}
		if i < 0 {
			i = len(w.buf) - 1
		}
		if err := w.emit(w.buf[:i+1]); err != nil {
			return len(p), err
		}
		w.buf = w.buf[i+1:]
	}
}

// Flush writes a last line that had no newline.
func (w *prefixWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_ = w.emit(w.buf)
		w.buf = nil
	}
}

func (w *prefixWriter) emit(line []byte) error {
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(append(out, w.prefix...), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err := w.dst.Write(out)
	return err
}
