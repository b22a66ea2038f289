package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// PATCH /v1/accounts/{account_id}/invitations/{id}: CONTRACT.md "Editing a pending
// invitation". The workflow applies the edit (pending only); its link and seat stay.

type editInvitationBody struct {
	Role      *string         `json:"role"`
	GroupIDs  []string        `json:"group_ids" max:"100"`
	Message   *string         `json:"message"`
	Metadata  json.RawMessage `json:"metadata"`
	ExpiresIn *int64          `json:"expires_in"`
}

// invitationEdit is a validated PATCH body; hash tells two PATCHes apart for the update ID.
type invitationEdit struct {
	contract.EditRequest
	groupFields []string
	hash        string
}

// decodeEdit decodes and validates a PATCH body: at least one field, each as on create.
func decodeEdit(data []byte, maxTTL time.Duration) (invitationEdit, *problem.Problem) {
	var b editInvitationBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return invitationEdit{}, p
	}
	var v fieldChecker
	var e invitationEdit
	if b.Role != nil {
		role := v.text("role", *b.Role, true, maxRoleRunes)
		e.Role = &role
	}
	if b.GroupIDs != nil { // [] clears the groups; absent (or null) leaves them

		ids := []uuid.UUID{}
		for i, s := range b.GroupIDs {
			id := v.id(fmt.Sprintf("group_ids[%d]", i), s, true)
			if id != nil && !slices.Contains(ids, *id) {
				ids = append(ids, *id)
				e.groupFields = append(e.groupFields, fmt.Sprintf("group_ids[%d]", i))
			}
		}
		e.GroupIDs = &ids
	}
	e.Message = v.message("message", b.Message)
	e.Metadata = v.metadata("metadata", b.Metadata)
	e.ExpiresIn = v.expiresIn("expires_in", b.ExpiresIn, maxTTL)
	if e.Role == nil && e.GroupIDs == nil && e.Message == nil && e.Metadata == nil && b.ExpiresIn == nil && len(v.errs) == 0 {
		v.add(problem.BodyField, "must change at least one of role, group_ids, message, metadata, expires_in")
	}
	if p := v.problem(); p != nil {
		return invitationEdit{}, p
	}
	canon := e.EditRequest
	if canon.GroupIDs != nil {
		sorted := slices.Clone(*canon.GroupIDs)
		slices.SortFunc(sorted, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		canon.GroupIDs = &sorted
	}
	data, _ = json.Marshal(canon) // strings, ids and an object already decoded: cannot fail
	sum := sha256.Sum256(data)
	e.hash = hex.EncodeToString(sum[:12])
	return e, nil
}

func (s *Server) editInvitation(c *gin.Context) error {
	ctx := c.Request.Context()
	inv, err := s.loadInvitation(c)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c.Request.Header.Values("Idempotency-Key"))
	if err != nil {
		return err
	}
	e, err := readRequest(c, func(data []byte) (invitationEdit, *problem.Problem) { return decodeEdit(data, s.cfg.InvitationTTLMax) })
	if err != nil {
		return err
	}
	if inv.Status != contract.StatusPending {
		return stateProblem(inv)
	}
	if err := s.checkEditFields(ctx, inv, e); err != nil {
		return err
	}
	if key != "" {
		// The key is bound to this invitation and body the first time: the same key with another
		// body is a conflict, not a silent replay of the first edit. (The claim's key has a space,
		// which a client's Idempotency-Key never has, so it is no create's key.)
		_, same, err := s.store.ClaimIdempotencyKey(ctx, inv.AccountID, editKeyClaim(inv, key), []byte(e.hash), inv.ID)
		if err != nil {
			return err
		}
		if !same {
			return problem.New(contract.CodeIdempotencyConflict, "This Idempotency-Key was used with a different request body.")
		}
	}
	// A retry of an edit that landed (after a lost answer) is that edit, applied once: the one
	// under the same key, or, without a key, the same body just after its own edit landed (the
	// count of edits has moved on by it). The row already has it, so the workflow is not asked
	// again (a run continued as new since would not know the update's ID).
	updateID := editUpdateID(inv, e, key)
	landed := updateID
	if key == "" {
		landed = bodyUpdateID(inv, e, inv.Edits-1)
	}
	if key != "" || inv.Edits > 0 {
		done, err := s.store.EditApplied(ctx, inv.ID, inv.Generation, landed)
		if err != nil {
			return err
		}
		if done {
			return s.answerRow(c, inv.ID, contract.State{})
		}
	}
	tok, _ := apiToken(c)
	e.By = tok.Name
	var st contract.State
	err = s.workflows.Update(ctx, inv.ID, contract.UpdateEdit, updateID, e.EditRequest, &st)
	if errors.Is(err, workflowclient.ErrWorkflowClosed) {
		return s.rowProblem(c, inv.ID) // it expired or closed meanwhile: the row tells how
	}
	if err != nil {
		return err
	}
	return s.answerRow(c, inv.ID, st)
}

// checkEditFields checks a new role against the invitation's subscription and new groups
// against the account, naming each bad field.
func (s *Server) checkEditFields(ctx context.Context, inv store.Invitation, e invitationEdit) error {
	var v fieldChecker
	if e.Role != nil {
		sub, err := s.store.GetSubscription(ctx, inv.AccountID, inv.SubscriptionID)
		if err != nil {
			return err
		}
		if !sub.HasRole(*e.Role) {
			v.add("role", "must be one of the subscription's roles: "+strings.Join(sub.Roles, ", "))
		}
	}
	if e.GroupIDs != nil && len(*e.GroupIDs) > 0 {
		missing, err := s.store.GroupsNotInAccount(ctx, inv.AccountID, *e.GroupIDs)
		if err != nil {
			return err
		}
		for i, g := range *e.GroupIDs {
			if slices.Contains(missing, g) {
				v.add(e.groupFields[i], "is not a group of this account")
			}
		}
	}
	if p := v.problem(); p != nil {
		return p
	}
	return nil
}

// editUpdateID names the edit's update, so a retry after a lost answer joins or gets the first
// one instead of editing twice: by the request's Idempotency-Key, or else by the invitation's
// generation, its count of edits so far and the body (the same PATCH, sent again before
// another edit landed, is the same edit; editInvitation recognises one sent again just after
// its own edit landed, when the count has moved on by that edit).
func editUpdateID(inv store.Invitation, e invitationEdit, key string) string {
	if key != "" {
		return contract.UpdateID(contract.UpdateEdit, inv.Generation, "key-"+keyHash(key)+"-"+e.hash)
	}
	return bodyUpdateID(inv, e, inv.Edits)
}

// editKeyClaim is the idempotency_keys entry binding a PATCH's Idempotency-Key to its body, per
// invitation.
func editKeyClaim(inv store.Invitation, key string) string {
	return "edit " + inv.ID.String() + " " + keyHash(key)
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:12])
}

// bodyUpdateID names an edit without a key: the body's, applied when the invitation had had
// edits edits.
func bodyUpdateID(inv store.Invitation, e invitationEdit, edits int) string {
	return contract.UpdateID(contract.UpdateEdit, inv.Generation, fmt.Sprintf("r%d-%s", edits, e.hash))
}
