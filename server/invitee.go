package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
)

// The invitee's routes, authorised by the invite token alone. The hosted page (page.go)
// shares their logic.

type previewView struct {
	AccountName      string          `json:"account_name"`
	Application      string          `json:"application"`
	Role             string          `json:"role"`
	Email            string          `json:"email"`
	FirstName        string          `json:"first_name"`
	LastName         string          `json:"last_name"`
	Inviter          *personView     `json:"inviter"`
	Status           contract.Status `json:"status"`
	ExpiresAt        time.Time       `json:"expires_at"`
	RequiresPassword bool            `json:"requires_password"`
}

type acceptView struct {
	Status contract.Status `json:"status"`
	UserID *uuid.UUID      `json:"user_id"`
}

type declineView struct {
	Status contract.Status `json:"status"`
}

// inviteLink is a verified invite token with the invitation it names.
type inviteLink struct {
	inv        store.Invitation
	generation int
}

func tokenInvalid() *problem {
	return newProblem(contract.CodeTokenInvalid, "This invitation link is not valid. Check that the whole link was copied.")
}

// resolveLink verifies an invite token and reads its invitation. Every kind of bad token
// (malformed, forged, naming no invitation or a generation that never existed) gets the
// same answer, so the answer tells an attacker nothing.
func (s *Server) resolveLink(ctx context.Context, token string) (inviteLink, error) {
	id, gen, err := s.signer.Verify(token)
	if err != nil {
		return inviteLink{}, tokenInvalid()
	}
	inv, err := s.store.GetInvitation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && gen > inv.Generation) {
		return inviteLink{}, tokenInvalid()
	}
	if err != nil {
		return inviteLink{}, err
	}
	return inviteLink{inv: inv, generation: gen}, nil
}

// expired reports whether the link can no longer be used: a renewal superseded it, or the
// invitation expired.
func (l inviteLink) expired(now time.Time) bool {
	return l.generation < l.inv.Generation || effectiveStatus(l.inv, now) == contract.StatusExpired
}

func expiredProblem() *problem {
	return newProblem(contract.CodeInvitationExpired, "This invitation link has expired. Ask the person who invited you to send a new one.")
}

// usable answers why the link cannot be acted on (410 expired or superseded, 409 already
// accepted, declined or revoked), or nil when the invitation is pending.
func (l inviteLink) usable(now time.Time) *problem {
	switch {
	case l.expired(now):
		return expiredProblem()
	case l.inv.Status != contract.StatusPending:
		return newProblem(contract.CodeInvalidState, "This invitation was already %s.", l.inv.Status)
	}
	return nil
}

// requiresPassword reports whether accepting creates a new user, who needs a password.
func (s *Server) requiresPassword(ctx context.Context, inv store.Invitation) (bool, error) {
	if inv.UserID != nil {
		return false, nil
	}
	exists, err := s.store.UserExistsWithEmail(ctx, inv.Email)
	return !exists, err
}

// preview is what the invitee sees before accepting.
func (s *Server) preview(ctx context.Context, token string) (previewView, error) {
	link, err := s.resolveLink(ctx, token)
	if err != nil {
		return previewView{}, err
	}
	if link.expired(s.now()) {
		return previewView{}, expiredProblem()
	}
	inv := link.inv
	requires, err := s.requiresPassword(ctx, inv)
	if err != nil {
		return previewView{}, err
	}
	v := previewView{
		AccountName: inv.AccountName, Application: inv.Application, Role: inv.Role,
		Email: inv.Email, FirstName: inv.FirstName, LastName: inv.LastName,
		Status: inv.Status, ExpiresAt: inv.ExpiresAt.UTC(), RequiresPassword: requires,
	}
	if inv.InviterName != "" || inv.InviterEmail != "" {
		v.Inviter = &personView{Name: inv.InviterName, Email: inv.InviterEmail}
	}
	return v, nil
}

// accept checks the link, the terms and the password, hashes the password (the plaintext
// goes no further than this function) and has the workflow provision the user.
func (s *Server) accept(ctx context.Context, token, pw string, acceptTerms bool) (acceptView, error) {
	link, err := s.resolveLink(ctx, token)
	if err != nil {
		return acceptView{}, err
	}
	if p := link.usable(s.now()); p != nil {
		return acceptView{}, p
	}
	if !acceptTerms {
		p := newProblem(contract.CodeTermsNotAccepted, "Accept the Terms of Service to join.")
		p.Errors = []fieldError{{Field: "accept_terms", Message: "must be true"}}
		return acceptView{}, p
	}
	requires, err := s.requiresPassword(ctx, link.inv)
	if err != nil {
		return acceptView{}, err
	}
	var hash string
	if requires {
		if msg := password.Check(pw); msg != "" {
			p := newProblem(contract.CodePasswordPolicy, "%s Passwords need %s.", sentence(msg), password.PolicyText)
			p.Errors = []fieldError{{Field: "password", Message: msg}}
			return acceptView{}, p
		}
		if hash, err = s.hasher.Hash(ctx, pw); err != nil {
			return acceptView{}, err
		}
	}
	var res contract.AcceptResult
	err = s.updateInvitation(ctx, link.inv.ID, contract.UpdateAccept,
		contract.AcceptRequest{Generation: link.generation, PasswordHash: hash}, &res)
	if errors.Is(err, errWorkflowClosed) {
		return acceptView{}, s.closedLinkProblem(ctx, link)
	}
	if err != nil {
		return acceptView{}, err
	}
	out := acceptView{Status: contract.StatusAccepted}
	if res.UserID != uuid.Nil {
		out.UserID = &res.UserID
	} else if inv, err := s.store.GetInvitation(ctx, link.inv.ID); err == nil {
		out.UserID = inv.UserID
	}
	return out, nil
}

// decline has the workflow close the invitation and release its seat.
func (s *Server) decline(ctx context.Context, token string) error {
	link, err := s.resolveLink(ctx, token)
	if err != nil {
		return err
	}
	if p := link.usable(s.now()); p != nil {
		return p
	}
	var st contract.State
	err = s.updateInvitation(ctx, link.inv.ID, contract.UpdateDecline, contract.DeclineRequest{Generation: link.generation}, &st)
	if errors.Is(err, errWorkflowClosed) {
		return s.closedLinkProblem(ctx, link)
	}
	return err
}

// closedLinkProblem answers an accept or decline whose workflow finished meanwhile, from
// the invitation's row as it is now.
func (s *Server) closedLinkProblem(ctx context.Context, link inviteLink) error {
	inv, err := s.store.GetInvitation(ctx, link.inv.ID)
	if err != nil {
		return err
	}
	link.inv = inv
	if p := link.usable(s.now()); p != nil {
		return p
	}
	return newProblem(contract.CodeInvalidState, "This invitation can no longer be answered.")
}

func (s *Server) previewInvitation(c *gin.Context) error {
	v, err := s.preview(c.Request.Context(), c.Query("token"))
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, v)
	return nil
}

func (s *Server) acceptInvitation(c *gin.Context) error {
	data, err := readJSON(c)
	if err != nil {
		return err
	}
	var b acceptBody
	if p := parseJSON(data, &b); p != nil {
		return p
	}
	v, err := s.accept(c.Request.Context(), b.Token, b.Password, b.AcceptTerms)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

func (s *Server) declineInvitation(c *gin.Context) error {
	data, err := readJSON(c)
	if err != nil {
		return err
	}
	var b declineBody
	if p := parseJSON(data, &b); p != nil {
		return p
	}
	if err := s.decline(c.Request.Context(), b.Token); err != nil {
		return err
	}
	c.JSON(http.StatusOK, declineView{Status: contract.StatusDeclined})
	return nil
}
