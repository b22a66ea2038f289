package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// The password reset's routes (CONTRACT.md "Password reset"), authorised by nobody: a request
// names an address, a confirm carries the reset link's token.

type resetRequestBody struct {
	Email string `json:"email"`
}

type resetConfirmBody struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type resetView struct {
	Status string `json:"status"`
}

// requestPasswordReset answers 202 whether or not the address belongs to a user.
func (s *Server) requestPasswordReset(c *gin.Context) error {
	b, err := readRequest(c, strict[resetRequestBody])
	if err != nil {
		return err
	}
	if err := s.resets.Request(c.Request.Context(), b.Email, c.ClientIP()); err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, resetView{Status: "requested"})
	return nil
}

func (s *Server) confirmPasswordReset(c *gin.Context) error {
	b, err := readRequest(c, strict[resetConfirmBody])
	if err != nil {
		return err
	}
	if err := s.resets.Confirm(c.Request.Context(), b.Token, b.Password); err != nil {
		return err
	}
	c.JSON(http.StatusOK, resetView{Status: "reset"})
	return nil
}
