package workflowclient

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// TestWorkflowErrorMapping covers the answers to Temporal failures that the real stack does
// not produce on demand (an activity failing for good, a server-side timeout), as a table of
// the errors the SDK returns for them.
func TestWorkflowErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   contract.Code
	}{
		{temporal.NewApplicationError("refused", string(contract.CodeSeatsExhausted)), 409, contract.CodeSeatsExhausted},
		{temporal.NewApplicationError("the invitation expired", string(contract.CodeInvitationExpired)), 410, contract.CodeInvitationExpired},
		{temporal.NewApplicationError("bad id", string(contract.CodeValidation)), 422, contract.CodeValidation},
		// What the workflow's create answers when its activity failed for a non-business reason.
		{temporal.NewApplicationError("the invitation could not be recorded: boom", "unavailable"), 503, contract.CodeUnavailable},
		{temporal.NewApplicationError("activity failed", "SomeGoError"), 503, contract.CodeUnavailable},
		{serviceerror.NewUnavailable("connection refused"), 503, contract.CodeUnavailable},
		{serviceerror.NewDeadlineExceeded("deadline"), 503, contract.CodeUnavailable},
		{client.NewWorkflowUpdateServiceTimeoutOrCanceledError(errors.New("timeout")), 503, contract.CodeUnavailable},
	} {
		var p *problem.Problem
		if !errors.As(workflowError(tc.err), &p) || p.Status != tc.status || p.Code != tc.code {
			t.Errorf("%v: %+v", tc.err, p)
			continue
		}
		if tc.status == 503 && p.RetryAfter <= 0 {
			t.Errorf("%v: no Retry-After", tc.err)
		}
	}
	if err := workflowError(serviceerror.NewNotFound("workflow execution already completed")); !errors.Is(err, ErrWorkflowClosed) {
		t.Errorf("NotFound: %v", err)
	}
	var p *problem.Problem
	err := workflowError(temporal.NewApplicationError("wait", string(contract.CodeRateLimited), contract.RateLimitDetails{RetryAfter: 41200 * time.Millisecond}))
	if !errors.As(err, &p) || p.Code != contract.CodeRateLimited || problem.RetryAfterSeconds(p.RetryAfter) != 42 {
		t.Errorf("rate limited: %+v", p)
	}
}
