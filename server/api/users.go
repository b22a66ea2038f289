package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// accountUserView is one entry of GET /v1/accounts/{id}/users. invitation_id (an extension)
// names the invitation behind an invited or invitation_expired entry, so the portal can
// resend, renew or revoke it from the list; it is null for members.
type accountUserView struct {
	UserID       *uuid.UUID  `json:"user_id"`
	Email        string      `json:"email"`
	FirstName    string      `json:"first_name"`
	LastName     string      `json:"last_name"`
	Role         string      `json:"role"`
	GroupIDs     []uuid.UUID `json:"group_ids"`
	State        string      `json:"state"`
	InvitationID *uuid.UUID  `json:"invitation_id"`
	// Metadata is the membership's, copied from the invitation that provisioned it (an invited
	// person's: the invitation's); {} when none was given.
	Metadata json.RawMessage `json:"metadata"`
}

type accountUsersView struct {
	Items []accountUserView `json:"items"`
}

// listUsers lists the account's members and the people invited to it.
func (s *Server) listUsers(c *gin.Context) error {
	users, err := s.store.ListAccountUsers(c.Request.Context(), account(c).ID, fullReach(c))
	if err != nil {
		return err
	}
	out := accountUsersView{Items: make([]accountUserView, 0, len(users))}
	for _, u := range users {
		groups := u.GroupIDs
		if groups == nil {
			groups = []uuid.UUID{}
		}
		out.Items = append(out.Items, accountUserView{
			UserID: u.UserID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
			Role: u.Role, GroupIDs: groups, State: u.State, InvitationID: u.InvitationID,
			Metadata: metadataOrEmpty(u.Metadata),
		})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// metadataOrEmpty is a stored metadata object, or {} for none.
func metadataOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	return m
}
