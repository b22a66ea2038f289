package api

import (
	"errors"
	"net/http"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// The catalog the portal sets up: accounts, their subscriptions and groups.

type accountView struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

type subscriptionView struct {
	ID             uuid.UUID `json:"id"`
	Application    string    `json:"application"`
	Name           string    `json:"name"`
	Seats          int       `json:"seats"`
	SeatsUsed      *int      `json:"seats_used,omitempty"`
	SeatsReserved  *int      `json:"seats_reserved,omitempty"`
	SeatsAvailable *int      `json:"seats_available,omitempty"`
	Roles          []string  `json:"roles"`
}

type groupView struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// portalOnly refuses a token scoped to one account: what it asks for (an account, a
// subscription: what the SaaS sells) is the portal's own business.
func portalOnly(c *gin.Context, what string) error {
	if tok, ok := apiToken(c); !ok || tok.AccountID != nil {
		return problem.New(contract.CodeForbidden, "Only an API token that is not scoped to one account can create %s.", what)
	}
	return nil
}

// createAccount needs a token of the portal itself: a token scoped to one account has no
// business making others.
func (s *Server) createAccount(c *gin.Context) error {
	if err := portalOnly(c, "accounts"); err != nil {
		return err
	}
	name, err := readRequest(c, decodeName)
	if err != nil {
		return err
	}
	acc, err := s.store.CreateAccount(c.Request.Context(), name)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/accounts/"+acc.ID.String())
	c.JSON(http.StatusCreated, accountView{ID: acc.ID, Name: acc.Name})
	return nil
}

// createSubscription needs the portal's token too: an account's administrator manages its
// groups, settings and invitations, not the seats it bought.
func (s *Server) createSubscription(c *gin.Context) error {
	if err := portalOnly(c, "subscriptions"); err != nil {
		return err
	}
	req, err := readRequest(c, decodeSubscription)
	if err != nil {
		return err
	}
	acc := account(c)
	sub, err := s.store.CreateSubscription(c.Request.Context(), acc.ID, req.Application, req.Name, req.Seats, req.Roles)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/accounts/"+acc.ID.String()+"/subscriptions/"+sub.ID.String())
	c.JSON(http.StatusCreated, subscriptionView{
		ID: sub.ID, Application: sub.Application, Name: sub.Name, Seats: sub.Seats, Roles: sub.Roles,
	})
	return nil
}

func (s *Server) getSubscription(c *gin.Context) error {
	id, ok := parseID(c.Param("subscription_id"))
	if !ok {
		return problem.NotFound("subscription")
	}
	sub, err := s.store.GetSubscription(c.Request.Context(), account(c).ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("subscription")
	}
	if err != nil {
		return err
	}
	used, reserved, available := sub.SeatsUsed, sub.SeatsReserved, sub.SeatsAvailable()
	c.JSON(http.StatusOK, subscriptionView{
		ID: sub.ID, Application: sub.Application, Name: sub.Name, Seats: sub.Seats, Roles: sub.Roles,
		SeatsUsed: &used, SeatsReserved: &reserved, SeatsAvailable: &available,
	})
	return nil
}

func (s *Server) createGroup(c *gin.Context) error {
	name, err := readRequest(c, decodeName)
	if err != nil {
		return err
	}
	acc := account(c)
	g, err := s.store.CreateGroup(c.Request.Context(), acc.ID, name)
	if errors.Is(err, store.ErrDuplicateGroup) {
		return problem.New(contract.CodeDuplicateGroup, "The account already has a group named %q.", name)
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, groupView{ID: g.ID, Name: g.Name})
	return nil
}
