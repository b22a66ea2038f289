package api

import (
	"errors"
	"net/http"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"

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
		var arg any
		if kind == actionRevoke {
			tok, _ := apiToken(c)
			arg = contract.RevokeRequest{By: tok.Name}
		}
		var st contract.State
		err = s.workflows.Update(ctx, inv.ID, string(kind), arg, &st)
		if errors.Is(err, workflowclient.ErrWorkflowClosed) {
			// Finished between our read and the update: its row tells how.
			if inv, err = s.store.GetInvitation(ctx, inv.ID); err != nil {
				return err
			}
			return stateProblem(inv)
		}
		if err != nil {
			return err
		}
		if inv, err = s.store.GetInvitation(ctx, inv.ID); err != nil {
			return err
		}
		overlayState(&inv, st)
		c.JSON(http.StatusOK, s.invitationView(inv))
		return nil
	}
}

// stateProblem is the answer for an action the invitation's status does not allow, decided
// from its row (when the workflow has finished, or before asking it).
func stateProblem(inv store.Invitation) *problem.Problem {
	return problem.New(contract.CodeInvalidState, "The invitation is %s.", inv.Status)
}
