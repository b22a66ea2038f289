package activities

import (
	"context"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
)

// EditResult is the invitation's expiry once the edit is applied.
type EditResult struct {
	ExpiresAt time.Time
}

// EditInvitation applies a PATCH to a pending invitation and records its updated event, once
// per edit (store.Edit.Key), and answers the expiry the row then has: a repeat of an edit that
// landed before (a run continued as new does not remember the update) keeps the expiry it set.
func (a *Activities) EditInvitation(ctx context.Context, in store.Edit) (EditResult, error) {
	at, err := a.Store.EditInvitation(ctx, in)
	return EditResult{ExpiresAt: at}, businessError(err)
}
