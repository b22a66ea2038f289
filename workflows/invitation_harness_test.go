package workflows_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/workflows"
)

// Test harness of the invitation workflow's unit tests. They run on the SDK's time-skipping test
// environment: every activity is mocked, every email and database call is recorded with the
// virtual time at which it ran, and updates are sent at chosen virtual times through delayed
// callbacks. The environment runs activities in process whatever their task queue (the email
// queue included), and caps retry policies without MaximumAttempts at 10 attempts.

var (
	invitationID      = uuid.MustParse("6f1c2a8e-3b4d-4c5e-8f90-1a2b3c4d5e6f")
	accountID         = uuid.MustParse("0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a")
	subscriptionID    = uuid.MustParse("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
	groupID           = uuid.MustParse("b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e")
	existingUserID    = uuid.MustParse("d4e5f6a7-b8c9-4d0e-8f1a-3b4c5d6e7f80")
	provisionedUserID = uuid.MustParse("c3d4e5f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f")
	existingInviteID  = "e5f6a7b8-c9d0-4e1f-9a2b-4c5d6e7f8091"
)

const (
	passwordHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
	inviteeEmail = "jane.doe@example.com"
)

var (
	settings = contract.Settings{TTL: 168 * time.Hour, ReminderBefore: 48 * time.Hour, ResendMinInterval: 60 * time.Second}
	// t0 is the virtual start time of every test; the create update arrives at t0.
	t0       = time.Date(2030, time.March, 4, 9, 30, 0, 0, time.UTC)
	expiry   = t0.Add(settings.TTL)
	reminder = expiry.Add(-settings.ReminderBefore)
)

func newInput() contract.InvitationInput {
	return contract.InvitationInput{
		InvitationID:     invitationID,
		AccountID:        accountID,
		AccountName:      "Acme",
		SubscriptionID:   subscriptionID,
		SubscriptionName: "Acme Analytics Pro",
		Application:      "analytics",
		Role:             "editor",
		GroupIDs:         []uuid.UUID{groupID},
		Email:            inviteeEmail,
		FirstName:        "Jane",
		LastName:         "Doe",
		Phone:            "+44 20 7946 0000",
		Inviter:          contract.Person{Name: "Alice Admin", Email: "alice@acme.example"},
		Settings:         settings,
		Lifecycle:        contract.Lifecycle2,
	}
}

// call records one activity execution: its input, the virtual time it finished at, its attempt.
type call[T any] struct {
	In      T
	At      time.Time
	Attempt int32
}

// harness wraps one test environment with recording activity mocks. Configure the behaviour
// fields, schedule updates with at/update, then run.
type harness struct {
	t    *testing.T
	env  *testsuite.TestWorkflowEnvironment
	acts *activities.Activities

	// Behaviour of the mocked activities.
	createErr      func(attempt int32) error
	createDelay    time.Duration
	renewErr       error
	provisionErr   error
	provisionDelay time.Duration
	closeDelay     time.Duration
	closeErr       func(in activities.CloseInput) error // nil: every close succeeds
	emailDelay     map[contract.EmailKind]time.Duration // by email kind
	emailResult    func(in activities.SendEmailInput, attempt int32) (activities.SendEmailResult, error)

	mu         sync.Mutex
	creates    []call[store.NewInvitation]
	discards   []call[uuid.UUID]
	closes     []call[activities.CloseInput]
	renews     []call[activities.RenewInput]
	provisions []call[activities.ProvisionInput]
	emails     []call[activities.SendEmailInput] // every attempt
	marks      []call[activities.MarkEmailFailedInput]
	events     []call[activities.RecordEventInput]
	edits      []call[store.Edit]
	locals     []string       // the activities run as local activities, in order
	searchAttr map[string]any // the start's typed search attributes merged with the upserts, by name
	upserts    []string       // every upserted attribute as name=value, in order
	startAttrs []temporal.SearchAttributeUpdate
	starting   bool
	timers     []timerEvent // every timer started, fired or cancelled, in order
	scheduled  int
	fired      int
}

// timerEvent is one timer event: "started" (with its duration), "fired" or "cancelled".
type timerEvent struct {
	What     string
	At       time.Time
	Duration time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	// The workflow's logs go to the test log with -v, and nowhere otherwise.
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = testWriter{t}
	}
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, nil))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetTestTimeout(10 * time.Second)
	h := &harness{t: t, env: env, acts: &activities.Activities{}, searchAttr: map[string]any{}}
	env.RegisterWorkflow(workflows.Invitation)
	env.RegisterWorkflowWithOptions(h.startedWithSearchAttributes, workflow.RegisterOptions{Name: "InvitationAsTheAPIStartsIt"})
	env.RegisterActivity(h.acts)
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func (h *harness) now() time.Time { return h.env.Now().UTC() }

func attempt(ctx context.Context) int32 { return activity.GetInfo(ctx).Attempt }

// mockActivities installs the recording mocks; run calls it just before the workflow starts.
func (h *harness) mockActivities() {
	env, a := h.env, h.acts
	env.OnActivity(a.CreateInvitation, mock.Anything, mock.Anything).
		After(h.createDelay).
		Return(func(ctx context.Context, in store.NewInvitation) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.creates = append(h.creates, call[store.NewInvitation]{in, h.now(), attempt(ctx)})
			if h.createErr != nil {
				return h.createErr(attempt(ctx))
			}
			return nil
		})
	env.OnActivity(a.DiscardInvitation, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, id uuid.UUID) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.discards = append(h.discards, call[uuid.UUID]{id, h.now(), attempt(ctx)})
			return nil
		})
	env.OnActivity(a.AbandonCreate, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, in activities.AbandonInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			require.NotEmpty(h.t, in.RunID, "the undo names the run that gave up")
			h.discards = append(h.discards, call[uuid.UUID]{in.InvitationID, h.now(), attempt(ctx)})
			return nil
		})
	env.OnActivity(a.CloseInvitation, mock.Anything, mock.Anything).
		After(h.closeDelay).
		Return(func(ctx context.Context, in activities.CloseInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.closes = append(h.closes, call[activities.CloseInput]{in, h.now(), attempt(ctx)})
			if h.closeErr != nil {
				return h.closeErr(in)
			}
			return nil
		})
	env.OnActivity(a.RenewInvitation, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, in activities.RenewInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.renews = append(h.renews, call[activities.RenewInput]{in, h.now(), attempt(ctx)})
			return h.renewErr
		})
	env.OnActivity(a.ProvisionUser, mock.Anything, mock.Anything).
		After(h.provisionDelay).
		Return(func(ctx context.Context, in activities.ProvisionInput) (activities.ProvisionResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.provisions = append(h.provisions, call[activities.ProvisionInput]{in, h.now(), attempt(ctx)})
			if h.provisionErr != nil {
				return activities.ProvisionResult{}, h.provisionErr
			}
			return activities.ProvisionResult{UserID: provisionedUserID}, nil
		})
	send := func(ctx context.Context, in activities.SendEmailInput) (activities.SendEmailResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.emails = append(h.emails, call[activities.SendEmailInput]{in, h.now(), attempt(ctx)})
		if h.emailResult != nil {
			return h.emailResult(in, attempt(ctx))
		}
		return activities.SendEmailResult{Status: contract.DeliverySent}, nil
	}
	for kind, d := range h.emailDelay {
		env.OnActivity(a.SendEmail, mock.Anything, mock.MatchedBy(func(in activities.SendEmailInput) bool { return in.Kind == kind })).
			After(d).Return(send)
	}
	env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).Return(send)
	env.OnActivity(a.RecordEvent, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, in activities.RecordEventInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, call[activities.RecordEventInput]{in, h.now(), attempt(ctx)})
			return nil
		})
	env.OnActivity(a.EditInvitation, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, in store.Edit) (activities.EditResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.edits = append(h.edits, call[store.Edit]{in, h.now(), attempt(ctx)})
			res := activities.EditResult{ExpiresAt: expiry}
			if in.ExpiresAt != nil {
				res.ExpiresAt = *in.ExpiresAt
			}
			return res, nil
		})
	env.OnActivity(a.MarkEmailFailed, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, in activities.MarkEmailFailedInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.marks = append(h.marks, call[activities.MarkEmailFailedInput]{in, h.now(), attempt(ctx)})
			return nil
		})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		h.mu.Lock()
		defer h.mu.Unlock()
		var names []string
		for k, v := range sa.GetUntypedValues() {
			h.searchAttr[k.GetName()] = v
			names = append(names, fmt.Sprintf("%s=%v", k.GetName(), v))
		}
		slices.Sort(names)
		if !h.starting {
			h.upserts = append(h.upserts, names...)
		}
	}).Return()
	timer := func(what string, d time.Duration) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.timers = append(h.timers, timerEvent{What: what, At: h.now(), Duration: d})
	}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.locals = append(h.locals, info.ActivityType.Name)
	})
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timer("started", d) })
	env.SetOnTimerFiredListener(func(string) { timer("fired", 0) })
	env.SetOnTimerCanceledListener(func(string) { timer("cancelled", 0) })
}

// at runs fn at virtual time t0+d. run fails the test if the workflow ended before fn ran, so
// no assertion inside fn is silently skipped.
func (h *harness) at(d time.Duration, fn func()) {
	h.scheduled++
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		h.fired++
		h.mu.Unlock()
		fn()
	}, d)
}

// startedWithSearchAttributes is the invitation workflow with the search attributes the API
// starts it with (the test environment ignores a start's search attributes, so they are set
// here, before the workflow runs, and not recorded as its upserts).
func (h *harness) startedWithSearchAttributes(ctx workflow.Context, in contract.InvitationInput) (contract.State, error) {
	if len(h.startAttrs) > 0 {
		h.mu.Lock()
		h.starting = true
		h.mu.Unlock()
		err := workflow.UpsertTypedSearchAttributes(ctx, h.startAttrs...)
		h.mu.Lock()
		h.starting, h.startAttrs = false, nil
		h.mu.Unlock()
		if err != nil {
			return contract.State{}, err
		}
	}
	return workflows.Invitation(ctx, in)
}

// run starts the workflow with in, and the search attributes the API starts it with, and runs
// it until it completes.
func (h *harness) run(in contract.InvitationInput) {
	h.t.Helper()
	h.mockActivities()
	from := contract.Created
	if in.Carried != nil {
		from = *in.Carried
	}
	h.startAttrs = contract.StartSearchAttributeUpdates(in, from)
	h.env.ExecuteWorkflow(h.startedWithSearchAttributes, in)
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(h.t, h.scheduled, h.fired, "the workflow ended before every scheduled callback ran")
}

// cancelAt ends a workflow that would otherwise wait forever (e.g. expired, waiting for renew).
func (h *harness) cancelAt(d time.Duration) {
	h.at(d, func() {
		require.False(h.t, h.env.IsWorkflowCompleted(), "the workflow completed before it was cancelled")
		h.env.CancelWorkflow()
	})
}

// requireCancelled asserts the workflow ended only because the test cancelled it.
func (h *harness) requireCancelled() {
	h.t.Helper()
	var cancelled *temporal.CanceledError
	require.ErrorAs(h.t, h.env.GetWorkflowError(), &cancelled)
}

func (h *harness) result() contract.State {
	h.t.Helper()
	require.NoError(h.t, h.env.GetWorkflowError())
	var st contract.State
	require.NoError(h.t, h.env.GetWorkflowResult(&st))
	return st
}

func (h *harness) state() contract.State {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(contract.QueryState)
	require.NoError(h.t, err)
	var st contract.State
	require.NoError(h.t, v.Get(&st))
	return st
}

func (h *harness) sa(name string) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.searchAttr[name]
}

func (h *harness) timerEvents() []timerEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]timerEvent(nil), h.timers...)
}

func (h *harness) upserted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.upserts...)
}

// started, fired and cancelled are the timer events tests expect, by virtual time.
func started(at time.Time, d time.Duration) timerEvent {
	return timerEvent{What: "started", At: at, Duration: d}
}
func fired(at time.Time) timerEvent     { return timerEvent{What: "fired", At: at} }
func cancelled(at time.Time) timerEvent { return timerEvent{What: "cancelled", At: at} }

// resumedInput is the input of a run that the API starts from an expired invitation's row
// (renew and request_renewal after the last run ended), at virtual time now.
func resumedInput(gen int, expiredAt time.Time) contract.InvitationInput {
	in := newInput()
	in.Carried = &contract.State{
		InvitationID: invitationID, Status: contract.StatusExpired, Generation: gen, ExpiresAt: expiredAt,
		Sends: 1, InviteSent: true, ReminderSent: true, Delivery: contract.Delivery{Status: contract.DeliverySent},
	}
	return in
}

func (h *harness) emailsSent() []call[activities.SendEmailInput] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[activities.SendEmailInput](nil), h.emails...)
}

func (h *harness) closed() []call[activities.CloseInput] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[activities.CloseInput](nil), h.closes...)
}

func (h *harness) provisioned() []call[activities.ProvisionInput] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[activities.ProvisionInput](nil), h.provisions...)
}

// outcome is what the caller of one update saw.
type outcome struct {
	name     string
	mu       sync.Mutex
	sent     bool
	accepted bool
	refused  bool
	done     bool
	value    any
	err      error
	doneAt   time.Time
}

// update sends the update name at t0+d.
func (h *harness) update(d time.Duration, name string, args ...any) *outcome {
	o := &outcome{name: name}
	h.at(d, func() {
		o.mu.Lock()
		o.sent = true
		o.mu.Unlock()
		h.env.UpdateWorkflow(name, uuid.NewString(), &testsuite.TestUpdateCallback{
			OnAccept: func() {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.accepted = true
			},
			OnReject: func(err error) {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.refused, o.done, o.err, o.doneAt = true, true, err, h.now()
			},
			OnComplete: func(v any, err error) {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.done, o.value, o.err, o.doneAt = true, v, err, h.now()
			},
		}, args...)
	})
	return o
}

func (h *harness) create() *outcome { return h.update(0, contract.UpdateCreate) }

// succeeded asserts the update was accepted and completed without error, and returns its value.
func (o *outcome) succeeded(t *testing.T) any {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	require.True(t, o.sent, "%s was never sent", o.name)
	require.True(t, o.done, "%s never completed", o.name)
	require.NoError(t, o.err, "%s failed", o.name)
	require.True(t, o.accepted, "%s was not accepted", o.name)
	return o.value
}

func (o *outcome) state(t *testing.T) contract.State {
	t.Helper()
	v := o.succeeded(t)
	st, ok := v.(contract.State)
	require.True(t, ok, "%s answered %T, not a State", o.name, v)
	return st
}

// failed asserts the update failed (rejected by its validator or failed by its handler) with an
// ApplicationError of type typ.
func (o *outcome) failed(t *testing.T, code contract.Code) *temporal.ApplicationError {
	typ := string(code)
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	require.True(t, o.sent, "%s was never sent", o.name)
	require.True(t, o.done, "%s never completed", o.name)
	require.Error(t, o.err, "%s succeeded, expected %s", o.name, typ)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, o.err, &appErr, "%s failed with %v", o.name, o.err)
	require.Equal(t, typ, appErr.Type(), "%s: %v", o.name, o.err)
	return appErr
}

// rejected asserts the update's validator refused it, leaving no trace in history.
func (o *outcome) rejected(t *testing.T, typ contract.Code) *temporal.ApplicationError {
	t.Helper()
	appErr := o.failed(t, typ)
	o.mu.Lock()
	defer o.mu.Unlock()
	require.True(t, o.refused, "%s was accepted and then failed; expected the validator to reject it", o.name)
	require.False(t, o.accepted)
	return appErr
}

func kinds(calls []call[activities.SendEmailInput]) []contract.EmailKind {
	out := make([]contract.EmailKind, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.In.Kind)
	}
	return out
}

// accept is the accept update of the link of generation gen.
func accept(gen int) contract.AcceptRequest {
	return contract.AcceptRequest{Generation: gen, PasswordHash: passwordHash}
}

func invID() uuid.UUID { return invitationID }

func email(kind contract.EmailKind, gen, seq int) activities.SendEmailInput {
	return activities.SendEmailInput{InvitationID: invID(), Generation: gen, Kind: kind, Seq: seq}
}

// continuedAs decodes the input a run continued as new with.
func continuedAs(t *testing.T, err error) contract.InvitationInput {
	t.Helper()
	require.True(t, workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can)
	assert.Equal(t, contract.WorkflowName, can.WorkflowType.Name)
	var next contract.InvitationInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Carried, "the next run must carry the state")
	return next
}
