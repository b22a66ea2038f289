package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/onboarding-service/onboarding/activities"
	"github.com/onboarding-service/onboarding/workflows"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// resetHarness runs the password-reset workflow on the test environment with its activities
// mocked over an in-memory reset row.
type resetHarness struct {
	env    *testsuite.TestWorkflowEnvironment
	known  bool
	user   uuid.UUID
	mu     sync.Mutex
	gen    int
	emails []int // generations emailed
	set    []string
}

func newResetHarness(t *testing.T, known bool) *resetHarness {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetTestTimeout(10 * time.Second)
	h := &resetHarness{env: env, known: known, user: uuid.New()}
	acts := &activities.Activities{}
	env.RegisterWorkflow(workflows.PasswordReset)
	env.RegisterActivity(acts)
	env.OnActivity(acts.IssuePasswordReset, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.PasswordResetInput) (contract.PasswordResetIssued, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if !h.known {
				return contract.PasswordResetIssued{}, nil
			}
			h.gen++
			return contract.PasswordResetIssued{Found: true, UserID: h.user, Generation: h.gen, ExpiresAt: env.Now().Add(in.TTL)}, nil
		})
	env.OnActivity(acts.SendPasswordResetEmail, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.PasswordResetEmail) (activities.SendEmailResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.emails = append(h.emails, in.Generation)
			return activities.SendEmailResult{Status: contract.DeliverySent}, nil
		})
	env.OnActivity(acts.ConfirmPasswordReset, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConfirmPasswordResetInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.set = append(h.set, in.PasswordHash)
			return nil
		})
	return h
}

func (h *resetHarness) requestAt(d time.Duration) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(contract.SignalPasswordResetRequested, nil) }, d)
}

// confirmAt sends the confirm update at d and records whether it was accepted.
func (h *resetHarness) confirmAt(d time.Duration, gen int, result *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(contract.UpdatePasswordResetConfirm, uuid.NewString(), &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { *result = err },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { *result = err },
		}, contract.PasswordResetConfirm{Generation: gen, PasswordHash: "$argon2id$test"})
	}, d)
}

func (h *resetHarness) run(t *testing.T) {
	t.Helper()
	h.env.ExecuteWorkflow(workflows.PasswordReset, contract.PasswordResetInput{Email: "p@example.test", TTL: time.Hour})
	require.True(t, h.env.IsWorkflowCompleted(), "the run ends")
	require.NoError(t, h.env.GetWorkflowError())
}

func TestPasswordResetOfUnknownAddressEndsAtOnce(t *testing.T) {
	h := newResetHarness(t, false)
	h.requestAt(0)
	h.run(t)
	require.Empty(t, h.emails, "no email to an address nobody has")
	require.Equal(t, t0, h.env.Now().UTC(), "the run ends without waiting")
}

// A newer request supersedes the link (a new generation, emailed); the run ends with the
// newest link's expiry, which it counts from the newer request.
func TestPasswordResetSupersedesAndExpires(t *testing.T) {
	h := newResetHarness(t, true)
	h.requestAt(0)
	h.requestAt(10 * time.Minute)
	var old error
	h.confirmAt(20*time.Minute, 1, &old)
	h.run(t)
	require.Equal(t, []int{1, 2}, h.emails)
	require.Empty(t, h.set, "no password set")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, old, &appErr)
	require.Equal(t, string(contract.CodeLinkExpired), appErr.Type(), "the superseded link is refused")
	require.Equal(t, t0.Add(70*time.Minute), h.env.Now().UTC(), "the run ends when the newest link expires")
}

// The confirm of the live link sets the password once and ends the run; a confirm naming
// another generation is link_expired and sets nothing.
func TestPasswordResetConfirmEndsTheRun(t *testing.T) {
	h := newResetHarness(t, true)
	h.requestAt(0)
	var first, unissued error
	h.confirmAt(4*time.Minute, 2, &unissued)
	h.confirmAt(5*time.Minute, 1, &first)
	h.run(t)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, unissued, &appErr, "a generation never issued is refused")
	require.Equal(t, string(contract.CodeLinkExpired), appErr.Type())
	require.NoError(t, first)
	require.Equal(t, []string{"$argon2id$test"}, h.set, "the password is set once")
	require.Equal(t, t0.Add(5*time.Minute), h.env.Now().UTC(), "the run ends with the confirm")
}

// However many requests reach one run, it sends at most five emails.
func TestPasswordResetEmailsPerRunAreCapped(t *testing.T) {
	h := newResetHarness(t, true)
	for i := range 8 {
		h.requestAt(time.Duration(i) * time.Minute)
	}
	h.run(t)
	require.Len(t, h.emails, 5)
}
