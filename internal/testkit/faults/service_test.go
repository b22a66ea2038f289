package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// stopGrace is how long a test's clean-up lets a process stop after SIGTERM: the worker's own
// deadline (20 s) and a little.
const stopGrace = 25 * time.Second

// proc is one running API or worker process.
type proc struct {
	name string
	*devstack.Process
	log string
}

// exitedIn waits up to timeout for the process to exit and reports how it exited.
func (p *proc) exitedIn(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.Done():
		return true, p.Wait()
	case <-time.After(timeout):
		return false, nil
	}
}

// signal sends sig to the process (not its group: the binaries spawn nothing).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.Pid(), sig); err != nil {
		t.Fatalf("kill -%d %s: %v", sig, p.name, err)
	}
}

// logTail returns the end of the process's log, for failure messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	const n = 3000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// service is one API and one worker of the service, on a task queue of their own, sharing the
// suite's database, dev server and fake Resend. Either process can be killed and started again.
type service struct {
	name        string
	env         map[string]string
	apiAddr     string
	metricsAddr string

	mu      sync.Mutex
	api     *proc
	worker  *proc
	started []*proc
	seq     int
}

// suitePorts are the ports handed to the suite's services: each goes to one service only.
var suitePorts = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

// suitePort picks a free port no other service of the suite was given (FreePort alone may
// hand two parallel services one port: picked, closed, and picked again before either binds).
func suitePort(t *testing.T) int {
	t.Helper()
	suitePorts.Lock()
	defer suitePorts.Unlock()
	for {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !suitePorts.used[p] {
			suitePorts.used[p] = true
			return p
		}
	}
}

// newService prepares a service named name (used in its task queue, its Postgres
// application_name and its log files) with settings on top of the suite's. It starts nothing.
func newService(t *testing.T, name string, settings map[string]string) *service {
	t.Helper()
	need(t)
	apiPort, metricsPort := suitePort(t), suitePort(t)
	s := &service{
		name:        name,
		apiAddr:     "127.0.0.1:" + strconv.Itoa(apiPort),
		metricsAddr: "127.0.0.1:" + strconv.Itoa(metricsPort),
	}
	s.env = map[string]string{
		"APP_ENV":               "development",
		"LOG_FORMAT":            "json",
		"LOG_LEVEL":             "info",
		"DATABASE_URL":          env.dbURL,
		"TEMPORAL_ADDRESS":      env.temporal.Address(),
		"TEMPORAL_NAMESPACE":    env.temporal.Namespace(),
		"TEMPORAL_TASK_QUEUE":   "faults-" + name + "-" + randomHex(3),
		"RESEND_API_KEY":        env.resend.APIKey,
		"RESEND_BASE_URL":       env.resend.URL,
		"EMAIL_FROM":            "Acme Onboarding <onboarding@acme.test>",
		"PUBLIC_BASE_URL":       "http://portal.test",
		"TOKEN_SECRET":          env.tokenSecret,
		"BOOTSTRAP_API_TOKEN":   env.apiToken,
		"EMAIL_RATE_PER_SECOND": "100",
		"HTTP_ADDR":             s.apiAddr,
		"WORKER_METRICS_ADDR":   s.metricsAddr,
		"TEMPORAL_API_KEY":      "",
		"TEMPORAL_TLS_CERT":     "",
		"TEMPORAL_TLS_KEY":      "",
		// The API's abuse limits are not what these tests are about: off.
		"RATE_LIMIT_INVITEE_IP":          "0",
		"RATE_LIMIT_INVITEE_TOKEN":       "0",
		"RATE_LIMIT_INVITATIONS_ACCOUNT": "0",
		"RATE_LIMIT_UNAUTHORIZED_IP":     "0",
		// Nor is the recipient's daily cap: some tests resend one invitation hundreds of times.
		"EMAIL_RECIPIENT_DAILY_CAP": "0",
	}
	maps.Copy(s.env, settings)
	if err := devstack.PinEmailQueue(t.Context(), env.temporal, s.taskQueue()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stopAll(t) })
	return s
}

// url is the API's base URL.
func (s *service) url() string { return "http://" + s.apiAddr }

// taskQueue is the service's main task queue.
func (s *service) taskQueue() string { return s.env["TEMPORAL_TASK_QUEUE"] }

// client returns an API client of this service, with the suite's API token.
func (s *service) client() apiClient { return apiClient{base: s.url(), token: env.apiToken} }

// invitee returns an API client of this service without a token.
func (s *service) invitee() apiClient { return apiClient{base: s.url()} }

func (s *service) start(t *testing.T, role, bin string, extra map[string]string) *proc {
	t.Helper()
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("%s-%s-%d", s.name, role, s.seq)
	s.mu.Unlock()
	vars := maps.Clone(s.env)
	vars["DATABASE_URL"] = withParam(s.env["DATABASE_URL"], "application_name", "faults-"+s.name+"-"+role)
	maps.Copy(vars, extra)
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v) // later entries win over the inherited ones
	}
	logPath := filepath.Join(env.artifacts, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	p, err := devstack.StartProcess(name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	pr := &proc{name: name, Process: p, log: logPath}
	s.mu.Lock()
	s.started = append(s.started, pr)
	s.mu.Unlock()
	return pr
}

// startAPI starts an API process and waits until /readyz answers 200.
func (s *service) startAPI(t *testing.T) *proc {
	t.Helper()
	p := s.start(t, "api", env.apiBin, nil)
	waitHTTP(t, p, s.url()+"/readyz")
	s.mu.Lock()
	s.api = p
	s.mu.Unlock()
	return p
}

// startWorker starts a worker process with extra settings and waits until its metrics
// endpoint answers (its pollers start right after).
func (s *service) startWorker(t *testing.T, extra map[string]string) *proc {
	t.Helper()
	return s.startWorkerBin(t, env.workerBin, extra)
}

// startSlowWorker starts the test kit's worker (internal/testkit/cmd/onboarding-worker-slow):
// the real worker with every provisioning attempt held for delay before it runs, so a test can
// act on the worker while an accept's provisioning is on it.
func (s *service) startSlowWorker(t *testing.T, delay time.Duration, extra map[string]string) *proc {
	t.Helper()
	vars := map[string]string{"TESTKIT_PROVISION_DELAY": delay.String()}
	maps.Copy(vars, extra)
	return s.startWorkerBin(t, env.slowWorkerBin, vars)
}

func (s *service) startWorkerBin(t *testing.T, bin string, extra map[string]string) *proc {
	t.Helper()
	p := s.start(t, "worker", bin, extra)
	waitHTTP(t, p, "http://"+s.metricsAddr+"/healthz")
	s.mu.Lock()
	s.worker = p
	s.mu.Unlock()
	return p
}

// startAll starts a worker and an API.
func (s *service) startAll(t *testing.T) *service {
	t.Helper()
	s.startWorker(t, nil)
	s.startAPI(t)
	return s
}

// stopAll stops every process the service started that is still running.
func (s *service) stopAll(t *testing.T) {
	s.mu.Lock()
	procs := append([]*proc(nil), s.started...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		select {
		case <-p.Done():
			continue // killed or stopped by the test, which judged how
		default:
		}
		wg.Go(func() {
			began := time.Now()
			if err := p.Stop(stopGrace); err != nil {
				t.Logf("stopping %s: %v", p.name, err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Logf("stopping %s took %s", p.name, took.Round(100*time.Millisecond))
			}
		})
	}
	wg.Wait()
	// The binaries are built with the race detector when the tests run with it: a race it found
	// in a process under fault fails the test.
	for _, p := range procs {
		if b, err := os.ReadFile(p.log); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race; see %s", p.name, p.log)
		}
	}
}

// waitHTTP waits up to 60 s for url to answer 200, failing early if the process exits.
func waitHTTP(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-p.Done():
			t.Fatalf("%s exited during start (%v):\n%s", p.name, p.Wait(), p.logTail())
		default:
		}
		res, err := hc.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				// A process that failed to bind its port exits at once; a 200 then came from
				// whoever holds the port, not from it.
				if exited, _ := p.exitedIn(200 * time.Millisecond); exited {
					t.Fatalf("%s exited during start (%v), and %s answered for another process:\n%s", p.name, p.Wait(), url, p.logTail())
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready after 60 s (last: %v):\n%s", p.name, url, errors.Join(err), p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctx returns a context bounded by d that ends with the test.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return c
}
