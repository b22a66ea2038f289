// Package cluster tests `make cluster` itself: it starts `onboarding-dev -cluster` (a Temporal
// server of four processes on Postgres, two worker replicas, two API replicas behind the
// supervisor's load balancer) exactly as `make cluster` does, on free ports, a database of its
// own and a test server speaking Resend's API, and then crashes its parts: a worker replica
// mid-accept, an API replica mid-traffic, Temporal's history service. It runs in `make
// test-cluster` (not `make test`: it needs the cluster's binaries, `make cluster-binaries`).
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
	"github.com/onboarding-service/onboarding/internal/testkit/openapicheck"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
	"github.com/onboarding-service/onboarding/server/api"
)

// env is the running `make cluster` and what its banner printed.
var env struct {
	dataDir string
	dbURL   string
	apiURL  string
	uiURL   string
	token   string
	account string
	sub     string
	group   string
	curl    string // the banner's "Invite Jane" command
	resend  *resendtest.Server
	out     *lines
}

// lines keeps the supervisor's output, for the tests that look for what it logged.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, s)
}

// count returns how many lines logged so far contain sub.
func (l *lines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.all {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func TestMain(m *testing.M) {
	// Every answer of the service is held to the OpenAPI document, as in the e2e and fault
	// suites; the load balancer's own 502s are not the service's, and the tests judge them.
	v, err := openapicheck.New(api.OpenAPIDocument())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	apitest.HTTPClient.Transport = v.TransportExcept(apitest.HTTPClient.Transport, fromTheBalancer)
	stop, err := startCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		if stop != nil {
			stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// fromTheBalancer picks devstack.LoadBalancer's answers: 502 problems coded bad_gateway.
func fromTheBalancer(status int, _ http.Header, body []byte) bool {
	var p struct{ Code string }
	return status == http.StatusBadGateway && json.Unmarshal(body, &p) == nil && p.Code == "bad_gateway"
}

// startCluster runs onboarding-dev -cluster and waits for its banner.
func startCluster() (stop func(), err error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return nil, err
	}
	artifacts := filepath.Join(root, "test-artifacts", "cluster")
	_ = os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "onboarding-cluster-")
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(tmp, "bin")
	env.dataDir = filepath.Join(tmp, "data")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	for _, b := range []string{devstack.ServerBinary, devstack.SQLToolBinary, devstack.UIServerBinary} {
		if err := os.Symlink(filepath.Join(root, ".bin", b), filepath.Join(binDir, b)); err != nil {
			return nil, err
		}
	}
	sup := filepath.Join(binDir, "onboarding-dev")
	build := exec.Command("go", "build", "-o", sup, "./internal/devstack/cmd/onboarding-dev")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build onboarding-dev: %w\n%s", err, out)
	}

	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Path = fmt.Sprintf("/onboarding_clustert_p%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	env.dbURL = u.String()
	env.resend = resendtest.NewServer("re_cluster_test")
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = devstack.FreePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(sup, "-cluster", "-data", env.dataDir, "-bin", binDir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+env.dbURL,
		"HTTP_ADDR=127.0.0.1:"+strconv.Itoa(ports[0]),
		"TEMPORAL_ADDRESS=127.0.0.1:"+strconv.Itoa(ports[1]),
		"TEMPORAL_UI_PORT="+strconv.Itoa(ports[2]),
		"WORKER_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(ports[3]),
		"RESEND_API_KEY="+env.resend.APIKey,
		"RESEND_BASE_URL="+env.resend.URL,
		"EMAIL_FROM=Acme Onboarding <onboarding@acme.test>",
		"EMAIL_RATE_PER_SECOND=100",
		// Every test calls from 127.0.0.1, and creates in bursts.
		"RATE_LIMIT_INVITEE_IP=0", "RATE_LIMIT_INVITEE_TOKEN=0", "RATE_LIMIT_INVITATIONS_ACCOUNT=0",
		"RATE_LIMIT_UNAUTHORIZED_IP=0",
	)
	cmd.Env = slicesDeleteEnv(cmd.Env, "BOOTSTRAP_API_TOKEN", "TOKEN_SECRET", "PAYLOAD_ENCRYPTION_KEY")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(artifacts, "onboarding-dev.log"))
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
		env.resend.Close()
		dropDatabases()
		_ = os.RemoveAll(tmp)
	}

	env.out = &lines{}
	banner := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var block []string
		rules, sent := 0, false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			env.out.add(line)
			if strings.HasPrefix(line, "=====") {
				rules++
			}
			if rules == 1 {
				block = append(block, line)
			}
			if rules == 2 && !sent {
				banner <- block
				sent = true
			}
		}
	}()
	select {
	case b := <-banner:
		return stop, parseBanner(b)
	case err := <-exited:
		return nil, fmt.Errorf("onboarding-dev -cluster exited before its banner (%v); see %s", err, logFile.Name())
	case <-time.After(5 * time.Minute):
		return stop, fmt.Errorf("no banner from onboarding-dev -cluster within 5 minutes; see %s", logFile.Name())
	}
}

var bannerField = regexp.MustCompile(`^\s+(API|API token|Temporal UI|account|subscription|group)\s{2,}(\S+)`)

func parseBanner(b []string) error {
	var curl []string
	for _, line := range b {
		if m := bannerField.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "API":
				env.apiURL = m[2]
			case "Temporal UI":
				env.uiURL = m[2]
			case "API token":
				env.token = m[2]
			case "account":
				env.account = m[2]
			case "subscription":
				env.sub = m[2]
			case "group":
				env.group = m[2]
			}
		}
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "curl ") || (len(curl) > 0 && len(curl) < 4) {
			curl = append(curl, t)
		}
	}
	env.curl = strings.Join(curl, "\n")
	if env.apiURL == "" || env.uiURL == "" || env.token == "" || env.account == "" || env.sub == "" || env.group == "" || len(curl) != 4 {
		return fmt.Errorf("banner not understood:\n%s", strings.Join(b, "\n"))
	}
	return nil
}

// pid reads a replica's current pid from the supervisor's pid directory.
func pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.dataDir, "pids", name))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// kill crashes a replica (SIGKILL to its process group) and returns its pid.
func kill(t *testing.T, name string) int {
	t.Helper()
	p := pid(t, name)
	if err := syscall.Kill(-p, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (%d): %v", name, p, err)
	}
	return p
}

// waitRestarted waits until name runs under a pid other than old.
func waitRestarted(t *testing.T, name string, old int) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if p := pid(t, name); p != old && syscall.Kill(p, 0) == nil {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s was not started again within a minute", name)
	return 0
}

// dropDatabases drops the service's database and the cluster's two (named after it by
// onboarding-dev: <database>_temporal and its _visibility).
func dropDatabases() {
	ctx := context.Background()
	if u, err := url.Parse(env.dbURL); err == nil { // connected to the service's, so first
		_ = devstack.DropClusterDatabases(ctx, env.dbURL, strings.TrimPrefix(u.Path, "/")+"_temporal")
	}
	_ = testdb.Drop(ctx, env.dbURL)
}

// slicesDeleteEnv drops the named variables: the supervisor then makes its own, as make
// cluster does on a fresh machine.
func slicesDeleteEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
