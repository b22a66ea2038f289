package workflowclient

import (
	"context"
	"errors"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
)

// NoteDelivery signals the invitation's running workflow with the provider's delivery report;
// a closed or missing run is not an error (Postgres already holds the report).
func (w *Client) NoteDelivery(ctx context.Context, id uuid.UUID, d contract.ProviderDelivery) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := w.Temporal.SignalWorkflow(ctx, contract.InvitationWorkflowID(id), "", contract.SignalProviderDelivery, d)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}
