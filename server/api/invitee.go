package api

import (
	"context"
	"net/http"
	"time"

	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// The invitee's routes, authorised by the invite token alone. They act through the invitee
// operations (server/invitee), as the hosted page does.

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
	// RequiresSignIn: the invitee is an existing user, who accepts with their current password.
	RequiresSignIn bool `json:"requires_sign_in"`
	// Message is the inviter's note (null: none); RedirectURL is where to send the invitee after
	// accepting, given only while its origin is in the account's allowed_redirect_origins.
	Message     *string `json:"message"`
	RedirectURL *string `json:"redirect_url"`
}

type acceptView struct {
	Status contract.Status `json:"status"`
	UserID *uuid.UUID      `json:"user_id"`
}

type declineView struct {
	Status contract.Status `json:"status"`
}

// preview is what the invitee sees before accepting.
func (s *Server) preview(ctx context.Context, token string) (previewView, error) {
	link, err := s.invitee.Resolve(ctx, token)
	if err != nil {
		return previewView{}, err
	}
	if link.Expired(s.now()) {
		return previewView{}, invitee.ExpiredProblem()
	}
	inv := link.Invitation
	requires, err := s.invitee.RequiresPassword(ctx, inv)
	if err != nil {
		return previewView{}, err
	}
	v := previewView{
		AccountName: inv.AccountName, Application: inv.Application, Role: inv.Role,
		Email: inv.Email, FirstName: inv.FirstName, LastName: inv.LastName,
		Status: inv.Status, ExpiresAt: inv.ExpiresAt.UTC(), RequiresPassword: requires, RequiresSignIn: !requires,
	}
	if inv.InviterName != "" || inv.InviterEmail != "" {
		v.Inviter = &personView{Name: inv.InviterName, Email: inv.InviterEmail}
	}
	if inv.Message != "" {
		v.Message = &inv.Message
	}
	if inv.RedirectURL != "" && s.redirectAllowed(ctx, inv.AccountID, inv.RedirectURL) {
		v.RedirectURL = &inv.RedirectURL
	}
	return v, nil
}

// tokenBody is an invitee request body, which names its invite link by its token.
type tokenBody interface{ inviteToken() string }

func (b acceptBody) inviteToken() string  { return b.Token }
func (b declineBody) inviteToken() string { return b.Token }

// readLink reads an invitee body and resolves the link its token names: the body is read once,
// and the use of the link counted once, there.
func readLink[T tokenBody](s *Server, c *gin.Context) (T, invitee.Link, error) {
	b, err := readRequest(c, strict[T])
	if err != nil {
		return b, invitee.Link{}, err
	}
	link, err := s.invitee.Resolve(c.Request.Context(), b.inviteToken())
	return b, link, err
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
	b, link, err := readLink[acceptBody](s, c)
	if err != nil {
		return err
	}
	userID, err := s.invitee.Accept(c.Request.Context(), link, b.Password, b.AcceptTerms, c.ClientIP())
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, acceptView{Status: contract.StatusAccepted, UserID: userID})
	return nil
}

func (s *Server) declineInvitation(c *gin.Context) error {
	_, link, err := readLink[declineBody](s, c)
	if err != nil {
		return err
	}
	if err := s.invitee.Decline(c.Request.Context(), link); err != nil {
		return err
	}
	c.JSON(http.StatusOK, declineView{Status: contract.StatusDeclined})
	return nil
}
