package workflowclient

import (
	"context"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/emailhash"
)

// RequestPasswordReset hands a reset request for email to the address's reset workflow,
// starting it if none runs (signal-with-start: one call, durable once it returns). The API
// does not look the address up: the workflow does, so the request costs the same whether or
// not the address belongs to anyone.
func (w *Client) RequestPasswordReset(ctx context.Context, email string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	email = strings.ToLower(strings.TrimSpace(email))
	_, err := w.Temporal.SignalWithStartWorkflow(ctx, w.PasswordResetWorkflowID(email), contract.SignalPasswordResetRequested, nil,
		client.StartWorkflowOptions{
			TaskQueue: w.TaskQueue,
			// No address in the summary: the run of an unknown address must read like any other.
			StaticSummary: "Password reset",
		},
		contract.PasswordResetWorkflowName, contract.PasswordResetInput{Email: email, TTL: ttl})
	return workflowError(err)
}

// PasswordResetWorkflowID is the reset workflow of an address.
func (w *Client) PasswordResetWorkflowID(email string) string {
	return contract.PasswordResetWorkflowID(emailhash.Hash(w.EmailHashKey, email))
}
