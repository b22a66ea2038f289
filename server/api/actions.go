package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// invitationActionKind is one of the portal's actions on an invitation.
type invitationActionKind string

const (
	actionResend invitationActionKind = contract.UpdateResend
	actionRenew  invitationActionKind = contract.UpdateRenew
	actionRevoke invitationActionKind = contract.UpdateRevoke
)

// invitationAction handles resend, renew and revoke: the workflow decides whether the action
// fits (resend: pending; renew: expired; revoke: pending or expired) and answers with its
// state; the API answers the invitation as it then is.
func (s *Server) invitationAction(kind invitationActionKind) func(*gin.Context) error {
	return func(c *gin.Context) error {
		ctx := c.Request.Context()
		inv, err := s.loadInvitation(c)
		if err != nil {
			return err
		}
		// A finished invitation never changes again, so its row answers without asking
		// Temporal; any other row may lag the workflow, which then decides.
		if contract.Status(inv.Status).Terminal() {
			return stateProblem(inv)
		}
		key, err := idempotencyKey(c.Request.Header.Values("Idempotency-Key"))
		if err != nil {
			return err
		}
		if kind == actionResend {
			if err := s.checkRecipientCap(c, inv); err != nil {
				return err
			}
		}
		if kind == actionRenew {
			// A new link goes only to an address the account's settings allow today.
			if err := s.creator.CheckPolicy(ctx, inv.AccountID, inv.Email, ""); err != nil {
				return err
			}
		}
		updateID := actionUpdateID(kind, inv, key)
		var arg any
		if kind == actionRevoke {
			tok, _ := apiToken(c)
			arg = contract.RevokeRequest{By: tok.Name}
		}
		var st contract.State
		if kind == actionRenew && inv.Status == contract.StatusExpired {
			// An expired invitation's run has ended: the renew starts the next one.
			err = s.workflows.Resume(ctx, inv, time.Time{}, string(kind), updateID, arg, &st)
		} else {
			err = s.workflows.Update(ctx, inv.ID, string(kind), updateID, arg, &st)
		}
		if kind == actionRevoke && errors.Is(err, workflowclient.ErrWorkflowClosed) {
			// No run is left to do it (an expired invitation's run has ended): revoking is then
			// the row's change and its event, in one transaction.
			return s.revokeClosed(c, inv, arg.(contract.RevokeRequest))
		}
		if errors.Is(err, workflowclient.ErrWorkflowClosed) {
			return s.rowProblem(c, inv.ID) // finished between our read and the update: its row tells how
		}
		if err != nil {
			return err
		}
		return s.answerRow(c, inv.ID, st)
	}
}

// checkRecipientCap refuses a resend to an address that already got EMAIL_RECIPIENT_DAILY_CAP
// invite and reminder emails in 24 hours, from every account together (429 until the oldest of
// them is a day old). The worker enforces the same cap on every email; this answers at once.
func (s *Server) checkRecipientCap(c *gin.Context, inv store.Invitation) error {
	limit := s.cfg.EmailRecipientDailyCap
	if limit <= 0 {
		return nil
	}
	now := s.now()
	n, oldest, err := s.store.RecentInviteEmails(c.Request.Context(), inv.Email, now.Add(-24*time.Hour))
	if err != nil || n < limit {
		return err
	}
	p := problem.New(contract.CodeRateLimited, "This address got %d invitation emails in the last 24 hours, the most it may get; try again later.", n)
	p.RetryAfter = max(oldest.Add(24*time.Hour).Sub(now), time.Second)
	return p
}

// rowProblem answers an action that the invitation's status, read again, does not allow.
func (s *Server) rowProblem(c *gin.Context, id uuid.UUID) error {
	inv, err := s.store.GetInvitation(c.Request.Context(), id)
	if err != nil {
		return err
	}
	return stateProblem(inv)
}

// answerRow answers the invitation as its row now is, with the workflow's newer state st on top.
func (s *Server) answerRow(c *gin.Context, id uuid.UUID, st contract.State) error {
	inv, err := s.store.GetInvitation(c.Request.Context(), id)
	if err != nil {
		return err
	}
	overlayState(&inv, st)
	c.JSON(http.StatusOK, s.invitationView(inv))
	return nil
}

// revokeClosed revokes an invitation whose workflow has no open run, in Postgres: an expired
// one (its seat was released with the expiry), or a pending one whose run was ended by hand
// (the revoke releases its seat). Anything else answers from the row.
func (s *Server) revokeClosed(c *gin.Context, inv store.Invitation, req contract.RevokeRequest) error {
	_, err := s.store.CloseInvitation(c.Request.Context(), inv.ID, inv.Generation, contract.StatusRevoked, req.Detail())
	if errors.Is(err, store.ErrInvalidState) || errors.Is(err, store.ErrSuperseded) {
		return s.rowProblem(c, inv.ID)
	}
	if err != nil {
		return err
	}
	return s.answerRow(c, inv.ID, contract.State{})
}

// actionUpdateID names the action's update after the generation it acts on (renew: the one it
// creates), so a retry after a lost answer gets the first answer instead of acting twice. A
// resend may be repeated on purpose within a generation, so it is named only when the request
// carries an Idempotency-Key (the same key, the same resend); otherwise each is a new action.
func actionUpdateID(kind invitationActionKind, inv store.Invitation, key string) string {
	switch kind {
	case actionRenew:
		return contract.UpdateID(string(kind), inv.Generation+1, "")
	case actionResend:
		if key == "" {
			return ""
		}
		sum := sha256.Sum256([]byte(key))
		return contract.UpdateID(string(kind), inv.Generation, "key-"+hex.EncodeToString(sum[:12]))
	default:
		return contract.UpdateID(string(kind), inv.Generation, "")
	}
}

// stateProblem is the answer for an action the invitation's status does not allow, decided
// from its row (when the workflow has finished, or before asking it).
func stateProblem(inv store.Invitation) *problem.Problem {
	return problem.New(contract.CodeInvalidState, "The invitation is %s.", inv.Status)
}
