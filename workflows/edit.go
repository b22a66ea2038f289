package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

// The edit update: a PATCH of a pending invitation. Its link and seat stay; a new expiry counts
// from the edit, and the waiting timer follows it (waitPending sees the expiry move).

func (w *invitation) validateEdit(ctx workflow.Context, req contract.EditRequest) error {
	if w.statusNow(ctx) != contract.StatusPending {
		return businessErr(contract.CodeInvalidState, "only a pending invitation can be edited; this one is %s", w.statusNow(ctx))
	}
	if req.ExpiresIn < 0 {
		return businessErr(contract.CodeValidation, "expires_in must be positive")
	}
	return nil
}

func (w *invitation) edit(ctx workflow.Context, req contract.EditRequest) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	defer w.mu.Unlock()
	if err := w.validateEdit(ctx, req); err != nil {
		return w.st, err
	}
	e := store.Edit{
		InvitationID: w.id(), Generation: w.st.Generation, Key: workflow.GetCurrentUpdateInfo(ctx).ID,
		Role: req.Role, GroupIDs: req.GroupIDs, Message: req.Message, Metadata: req.Metadata,
		ExpiresIn: req.ExpiresIn, Detail: editDetail(req),
	}
	var expires time.Time
	if req.ExpiresIn > 0 {
		expires = workflow.Now(ctx).Add(req.ExpiresIn)
		e.ExpiresAt = &expires
		e.Detail += "; link valid until " + expires.UTC().Format(time.RFC3339)
	}
	var res activities.EditResult
	if err := w.step(ctx, dbOptions("Edit the invitation"), a.EditInvitation, e, &res); err != nil {
		return w.st, passOn(err)
	}
	if req.Role != nil {
		w.in.Role = *req.Role
	}
	if req.GroupIDs != nil {
		w.in.GroupIDs = *req.GroupIDs
	}
	if req.Message != nil {
		w.in.Message = *req.Message
	}
	if req.Metadata != nil {
		w.in.Metadata = req.Metadata
	}
	if req.ExpiresIn > 0 {
		w.in.Settings.TTL = req.ExpiresIn // renewals keep the new validity
		// The row's expiry: this edit's, or, for an edit that had landed before, the one it set.
		w.st.ExpiresAt = res.ExpiresAt
	}
	return w.st, nil
}

// editDetail says in words what an edit changed, for the story.
func editDetail(req contract.EditRequest) string {
	var changed []string
	if req.Role != nil {
		changed = append(changed, "role "+*req.Role)
	}
	if req.GroupIDs != nil {
		changed = append(changed, fmt.Sprintf("%d groups", len(*req.GroupIDs)))
	}
	if req.Message != nil {
		changed = append(changed, "message")
	}
	if req.Metadata != nil {
		changed = append(changed, "metadata")
	}
	if req.ExpiresIn > 0 {
		changed = append(changed, "expiry")
	}
	d := "edited: " + strings.Join(changed, ", ")
	if req.By != "" {
		d = "edited by " + req.By + ": " + strings.Join(changed, ", ")
	}
	return d
}
