package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/webhook"
)

// Webhooks is the worker's side of events out: the worker that makes delivery attempts on the
// webhook task queue, and the dispatcher that numbers committed events into the feed and
// starts a delivery workflow for each event an endpoint is owed.
type Webhooks struct {
	Worker     sdkworker.Worker
	Dispatcher *Dispatcher
}

// webhookConcurrency bounds the attempts in flight per worker process; an attempt takes at
// most 10 s, and the queue's fairness keys (the endpoint) share the slots between endpoints.
const webhookConcurrency = 200

// NewWebhooks builds the webhook worker and the dispatcher; reg may be nil (no metrics).
func NewWebhooks(c client.Client, cfg config.Config, st *store.Store, reg prometheus.Registerer, logger *slog.Logger, opts ...Option) Webhooks {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var m *metrics.Webhooks
	if reg != nil {
		m = metrics.NewWebhooks(reg)
		metrics.RegisterFailingEndpoints(reg, st.FailingEndpoints)
	}
	h := &activities.Webhooks{
		Store:   st,
		Secrets: webhook.NewSecrets(cfg.TokenSecret),
		Client:  webhook.Policy{AllowLocalhost: cfg.WebhookAllowLocalhost}.Client(webhook.DeliveryTimeout),
		Metrics: m,
		Logger:  logger,
		Now:     time.Now,
	}
	w := sdkworker.New(c, contract.WebhookTaskQueue(cfg.TemporalTaskQueue), sdkworker.Options{
		MaxConcurrentActivityExecutionSize: webhookConcurrency,
		WorkerStopTimeout:                  stopTimeout,
		DisableWorkflowWorker:              true,
		Interceptors:                       o.interceptors,
		OnFatalError:                       o.onFatal,
	})
	w.RegisterActivity(h)
	return Webhooks{Worker: w, Dispatcher: &Dispatcher{
		store: st, temporal: c, databaseURL: cfg.DatabaseURL, taskQueue: cfg.TemporalTaskQueue,
		retryFor: cfg.WebhookRetryFor, firstRetry: cfg.WebhookRetryInitial, logger: logger,
	}}
}

// Dispatcher numbers committed public events (store.SequenceEvents) and starts the delivery
// workflows they owe to its deployment's endpoints (those registered through its task queue).
// It wakes on Postgres' notification of new events and every dispatchEvery; every replica
// runs one, and the sequencer's lock makes them take turns. A delivery owed but not started
// (a crash between the two, or numbered by another deployment sharing the database) is
// started by the next pass of its deployment that finds it older than restartAfter, or by any
// deployment's once older than orphanedAfter; a second start of one is refused by Temporal.
type Dispatcher struct {
	store       *store.Store
	temporal    client.Client
	databaseURL string
	taskQueue   string
	retryFor    time.Duration
	firstRetry  time.Duration
	logger      *slog.Logger
}

const (
	dispatchEvery  = 2 * time.Second
	restartAfter   = 3 * time.Second
	orphanedAfter  = 5 * time.Minute
	sequenceBatch  = 500
	startParallel  = 8
	listenChannel  = "invitation_events"
	relistenBackof = 2 * time.Second
)

// Run dispatches until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	wake := make(chan struct{}, 1)
	go d.listen(ctx, wake)
	tick := time.NewTicker(dispatchEvery)
	defer tick.Stop()
	for {
		d.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// pass numbers every waiting event and starts what they owe, then catches up on owed
// deliveries never started.
func (d *Dispatcher) pass(ctx context.Context) {
	for ctx.Err() == nil {
		seq, err := d.store.SequenceEvents(ctx, sequenceBatch)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Warn("events not numbered; trying again", "error", err)
			}
			return
		}
		d.start(ctx, d.own(seq.Owed))
		if seq.Events < sequenceBatch {
			break
		}
	}
	late, err := d.store.UnstartedDeliveries(ctx, d.taskQueue, restartAfter, orphanedAfter, 200)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.Warn("owed webhook deliveries not read; trying again", "error", err)
		}
		return
	}
	d.start(ctx, late)
}

// own keeps the deliveries to this deployment's endpoints.
func (d *Dispatcher) own(owed []store.Delivery) []store.Delivery {
	var mine []store.Delivery
	for _, o := range owed {
		if o.TaskQueue == d.taskQueue || o.TaskQueue == "" {
			mine = append(mine, o)
		}
	}
	return mine
}

// start starts the delivery workflows of owed, a few at a time, and marks each started.
func (d *Dispatcher) start(ctx context.Context, owed []store.Delivery) {
	sem := make(chan struct{}, startParallel)
	var wg sync.WaitGroup
	for _, o := range owed {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := d.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID:                    contract.WebhookDeliveryWorkflowID(o.EndpointID.String(), o.EventID),
				TaskQueue:             d.taskQueue,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				StaticSummary:         "Webhook " + o.EventID + " to endpoint " + o.EndpointID.String(),
			}, contract.WebhookDeliveryWorkflowName, activities.DeliverWebhookInput{
				EndpointID: o.EndpointID, EventRowID: o.EventRowID, EventID: o.EventID,
				Deadline: o.CreatedAt.Add(d.retryFor), FirstRetry: d.firstRetry,
			})
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if err != nil && !errors.As(err, &started) {
				if ctx.Err() == nil {
					d.logger.Warn("webhook delivery not started; the next pass tries again", "event_id", o.EventID, "endpoint_id", o.EndpointID, "error", err)
				}
				return
			}
			if err := d.store.MarkDeliveryStarted(ctx, o); err != nil && ctx.Err() == nil {
				d.logger.Warn("webhook delivery start not recorded", "event_id", o.EventID, "error", err)
			}
		})
	}
	wg.Wait()
}

// listen turns Postgres notifications of new events into wake-ups, reconnecting on failure.
func (d *Dispatcher) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := d.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		d.logger.Debug("event notifications lost; listening again", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(relistenBackof):
		}
	}
}

func (d *Dispatcher) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	conn, err := pgx.Connect(ctx, d.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "listen "+listenChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}
