// Package worker runs the Temporal worker process: the invitation workflow and its activities
// on the main task queue, the email activity on a throttled queue beside it, and /metrics.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/workflows"
)

// Option adjusts the workers Run and New build.
type Option func(*options)

type options struct {
	interceptors []interceptor.WorkerInterceptor
	// onFatal hears the first fatal error of either worker (Run's own wiring).
	onFatal func(error)
}

// WithInterceptors adds worker interceptors (tracing, auditing, ...) to both workers, around
// every workflow and activity they run.
func WithInterceptors(ics ...interceptor.WorkerInterceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, ics...) }
}

// Run runs the worker until ctx is cancelled, then stops polling and lets in-flight activities
// finish within the SDK's stop timeout.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) error {
	// Process-wide, before any worker starts: the SDK's default keeps up to 10,000 runs in
	// memory, every waiting invitation of a busy day (make bench: 634 MiB with 10,000 pending);
	// the default here, 0, keeps none (config.Config.WorkerWorkflowCacheSize says why).
	sdkworker.SetStickyWorkflowCacheSize(cfg.WorkerWorkflowCacheSize)
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sdkHandler, closeMetrics, err := sdkMetrics(reg, logger)
	if err != nil {
		return err
	}
	defer closeMetrics()

	host, _ := os.Hostname()
	c, err := temporalclient.Dial(ctx, cfg, logger,
		temporalclient.WithMetricsHandler(sdkHandler),
		temporalclient.WithIdentity(fmt.Sprintf("onboarding-worker@%s:%d", host, os.Getpid())),
		temporalclient.WithPayloadEncryption(cfg))
	if err != nil {
		return err
	}
	defer c.Close()

	acts, err := NewActivities(cfg, st, logger)
	if err != nil {
		return err
	}
	acts.Metrics = metrics.NewBusiness(reg)
	metrics.RegisterPending(reg, st.CountPending)
	// A fatal error (the namespace gone, a server the SDK cannot work with) stops a worker for
	// good: the process then stops too, with an error, so an orchestrator restarts it and its
	// readiness says so meanwhile, instead of it idling while looking alive.
	var hs health
	fatal := make(chan error, 3)
	opts = append(opts, func(o *options) {
		o.onFatal = func(err error) {
			hs.fail(err)
			fatal <- err
		}
	})
	main, email := New(c, cfg, acts, opts...)
	hooks := NewWebhooks(c, cfg, st, reg, logger, opts...)

	srv := &http.Server{Addr: cfg.WorkerMetricsAddr, Handler: metricsMux(reg, &hs), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.WorkerMetricsAddr)
	if err != nil {
		return fmt.Errorf("WORKER_METRICS_ADDR: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	defer srv.Close()

	if err := email.Start(); err != nil {
		return fmt.Errorf("email worker: %w", err)
	}
	if err := hooks.Worker.Start(); err != nil {
		email.Stop()
		return fmt.Errorf("webhook worker: %w", err)
	}
	if err := main.Start(); err != nil {
		stopAll(email, hooks.Worker)
		return fmt.Errorf("worker: %w", err)
	}
	dispatchCtx, stopDispatch := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		hooks.Dispatcher.Run(dispatchCtx)
	}()
	defer func() {
		stopDispatch()
		<-dispatched
	}()
	if err := EnsureMaintenanceSchedule(ctx, c, cfg); err != nil {
		// The invitations do not depend on it; retention and the reconciler do. Said loudly,
		// and tried again at the next start.
		logger.Error("maintenance schedule not set up", "schedule_id", contract.MaintenanceScheduleID, "error", err)
	}
	logger.Info("worker started", "task_queue", cfg.TemporalTaskQueue, "email_task_queue", contract.EmailTaskQueue(cfg.TemporalTaskQueue),
		"metrics", "http://"+ln.Addr().String()+"/metrics", "mailer", mailerName(cfg), "payload_key_id", payloadKeyID(cfg))
	select {
	case <-ctx.Done():
	case err := <-fatal:
		logger.Error("worker failed; stopping", "error", err)
		stopAll(main, email, hooks.Worker)
		return fmt.Errorf("worker: %w", err)
	}
	logger.Info("worker stopping")
	began := time.Now()
	stopAll(main, email, hooks.Worker)
	if time.Since(began) >= stopTimeout {
		// Activities still running at the deadline were cancelled just now, and their failures,
		// which hand them back to Temporal for an immediate retry on another worker, are on
		// their way: closing the client under them would leave each to its start-to-close
		// timeout instead.
		time.Sleep(handBackGrace)
	}
	logger.Info("worker stopped")
	return nil
}

// EnsureMaintenanceSchedule creates the onboarding-maintenance schedule, or brings an existing
// one to this worker's settings: every replica calls it at start, and the schedule is one.
func EnsureMaintenanceSchedule(ctx context.Context, c client.Client, cfg config.Config) error {
	m := cfg.Maintenance
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: m.Interval}}}
	action := &client.ScheduleWorkflowAction{
		ID:        contract.MaintenanceScheduleID,
		Workflow:  contract.MaintenanceWorkflowName,
		TaskQueue: cfg.TemporalTaskQueue,
		Args: []any{contract.MaintenanceInput{
			IdempotencyKeyTTL: m.IdempotencyKeyTTL, EmailBodyRetention: m.EmailBodyRetention, ReconcileGrace: m.ReconcileGrace,
		}},
	}
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID: contract.MaintenanceScheduleID, Spec: spec, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    "Prunes idempotency keys, sent email bodies and abandoned creates; releases pending invitations whose workflow has ended.",
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	return sc.GetHandle(ctx, contract.MaintenanceScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}

// A stopping worker takes no new task and gives in-flight ones stopTimeout to finish; then it
// cancels them and lets their cancellation reach Temporal within handBackGrace. The sum is the
// worker's shutdown deadline (20 s), well inside Kubernetes' grace period (deploy/k8s/worker.yaml).
const (
	stopTimeout   = 19 * time.Second
	handBackGrace = time.Second
)

// stopAll stops the workers at once, so they stop polling together and share one deadline
// (WorkerStopTimeout): stopped one after the other, the email worker would go on taking emails
// while the main one drains, then wait for them, and the process would need up to twice the
// deadline to exit.
func stopAll(workers ...sdkworker.Worker) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(w.Stop)
	}
	wg.Wait()
}

// New builds the two workers: workflows and Postgres activities on the main queue, and emails
// on a queue whose activities-per-second limit is shared by every worker process (Resend allows
// 2 requests per second per team by default).
func New(c client.Client, cfg config.Config, acts *activities.Activities, opts ...Option) (main, email sdkworker.Worker) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	main = sdkworker.New(c, cfg.TemporalTaskQueue, sdkworker.Options{
		// A local activity's attempt in flight at the stop timeout is waited out, not cancelled
		// (a cancelled one would be recorded as the step's failure, and its update's answer):
		// the main worker stops taking work early enough for one attempt to end by the deadline.
		WorkerStopTimeout: stopTimeout - workflows.LocalStepTimeout,
		// Autoscaled workflow-task pollers, not the SDK's fixed 2. With the fixed pair, while
		// the sticky queue reports a backlog every poll goes to it, so the normal queue, where
		// a new invitation's first workflow task waits, can be left with no poller: under a
		// burst of creates (make bench's fill) every create then waited its 20 s and answered
		// 503. Autoscaling keeps a poller on each queue and opens more on the server's backlog
		// feedback (docs/benchmarks.md).
		WorkflowTaskPollerBehavior: sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{}),
		Interceptors:               o.interceptors,
		OnFatalError:               o.onFatal,
	})
	main.RegisterWorkflowWithOptions(workflows.Invitation, workflow.RegisterOptions{Name: contract.WorkflowName})
	main.RegisterWorkflowWithOptions(workflows.Email, workflow.RegisterOptions{Name: contract.EmailWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.Maintenance, workflow.RegisterOptions{Name: contract.MaintenanceWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.PasswordReset, workflow.RegisterOptions{Name: contract.PasswordResetWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.WebhookDelivery, workflow.RegisterOptions{Name: contract.WebhookDeliveryWorkflowName})
	// The accept hands the welcome email to its own workflow, started through this client.
	acts.Temporal, acts.TaskQueue = c, cfg.TemporalTaskQueue
	main.RegisterActivity(acts)
	// Bulk batches create their rows through the API's create path, on the real store (a
	// worker built over a stand-in store, in tests, runs no batches).
	if st, ok := acts.Store.(*store.Store); ok {
		registerBulk(main, c, cfg, st, acts.Logger)
	}

	email = sdkworker.New(c, contract.EmailTaskQueue(cfg.TemporalTaskQueue), sdkworker.Options{
		TaskQueueActivitiesPerSecond: cfg.EmailRatePerSecond,
		WorkerStopTimeout:            stopTimeout,
		DisableWorkflowWorker:        true,
		Interceptors:                 o.interceptors,
		OnFatalError:                 o.onFatal,
	})
	email.RegisterActivity(acts)
	return main, email
}

// NewActivities wires the activities to Postgres and to Resend, or to the dev mailbox when
// RESEND_API_KEY is empty.
func NewActivities(cfg config.Config, st *store.Store, logger *slog.Logger) (*activities.Activities, error) {
	var mailer activities.Mailer = activities.DevMailbox{Logger: logger, LogLinks: !cfg.Production()}
	if cfg.ResendAPIKey == "" && cfg.Production() {
		logger.Warn("RESEND_API_KEY is not set: emails are stored in the dev mailbox and never sent")
	}
	if cfg.ResendAPIKey != "" {
		m, err := activities.NewResendMailer(cfg.ResendAPIKey, cfg.ResendBaseURL)
		if err != nil {
			return nil, err
		}
		mailer = m
	}
	signer := invitetoken.NewSigner(cfg.TokenSecret, cfg.TokenSecretPrevious...)
	return &activities.Activities{
		Store:      st,
		Mailer:     mailer,
		Links:      invitetoken.Links{Signer: signer, Template: cfg.AcceptURLTemplate},
		Resets:     st,
		ResetLinks: invitetoken.ResetLinks{Signer: signer.PasswordReset(), Template: cfg.PasswordResetURLTemplate},
		From:       cfg.EmailFrom,
		PortalURL:  cfg.PublicBaseURL,
		// The cap is counted in Postgres, so every worker enforces the one cap.
		RecipientDailyCap: cfg.EmailRecipientDailyCap,
		Logger:            logger,
	}, nil
}

// payloadKeyID names the key payloads are encrypted with ("none": in clear); the API and the
// worker must agree, so both log it at start.
func payloadKeyID(cfg config.Config) string {
	if cfg.PayloadKey == nil {
		return "none"
	}
	return cfg.PayloadKey.ID
}

func mailerName(cfg config.Config) string {
	if cfg.ResendAPIKey == "" {
		return "dev mailbox (emails stored in Postgres, links logged)"
	}
	return "resend at " + cfg.ResendBaseURL
}

// sdkMetrics bridges the Temporal SDK's metrics into reg through tally, with Prometheus naming.
func sdkMetrics(reg *prometheus.Registry, logger *slog.Logger) (client.MetricsHandler, func(), error) {
	reporter, err := tallyprom.Configuration{TimerType: "histogram"}.NewReporter(tallyprom.ConfigurationOptions{
		Registry: reg,
		OnError:  func(err error) { logger.Warn("metric registration", "error", err) },
	})
	if err != nil {
		return nil, nil, err
	}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	scope = sdktally.NewPrometheusNamingScope(scope)
	return sdktally.NewMetricsHandler(scope), func() { _ = closer.Close() }, nil
}

func metricsMux(reg *prometheus.Registry, hs *health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := hs.failure(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "failed: a worker stopped for good: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// health is what the worker's /healthz answers: ok until a worker stops on a fatal error.
type health struct {
	mu  sync.Mutex
	err error
}

func (h *health) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
}

func (h *health) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
