package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/onboarding-service/onboarding/server/invitecreate"
	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
)

// The request bodies as they arrive (strings for ids, so a bad id is reported on its field,
// not as a decoding failure) and their validated forms. Decoding and validation are pure, so
// they are unit-tested and fuzzed without a database.

type nameBody struct {
	Name string `json:"name"`
}

type createSubscriptionBody struct {
	Application string   `json:"application"`
	Name        string   `json:"name"`
	Seats       *int64   `json:"seats"`
	Roles       []string `json:"roles" max:"50"`
}

type personBody struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type createInvitationBody struct {
	UserID         string      `json:"user_id"`
	Email          string      `json:"email"`
	FirstName      string      `json:"first_name"`
	LastName       string      `json:"last_name"`
	Phone          string      `json:"phone"`
	SubscriptionID string      `json:"subscription_id"`
	Role           string      `json:"role"`
	GroupIDs       []string    `json:"group_ids" max:"100"`
	Inviter        *personBody `json:"inviter"`
	// Options (options.go).
	ExpiresIn   *int64          `json:"expires_in"`
	SendEmail   *bool           `json:"send_email"`
	Message     *string         `json:"message"`
	Metadata    json.RawMessage `json:"metadata"`
	RedirectURL string          `json:"redirect_url"`
}

type acceptBody struct {
	Token       string `json:"token"`
	Password    string `json:"password"`
	AcceptTerms bool   `json:"accept_terms"`
}

type declineBody struct {
	Token string `json:"token"`
}

// readRequest reads the JSON body and decodes it with decode, which validates it too.
func readRequest[T any](c *gin.Context, decode func([]byte) (T, *problem.Problem)) (T, error) {
	var zero T
	data, err := jsonbody.Read(c)
	if err != nil {
		return zero, err
	}
	v, p := decode(data)
	if p != nil {
		return zero, p
	}
	return v, nil
}

// strict decodes a body that needs no check beyond its shape (the invitee's, whose token the
// invitee operations check).
func strict[T any](data []byte) (T, *problem.Problem) {
	var v T
	p := jsonbody.Decode(data, &v)
	return v, p
}

// decodeName decodes and checks a `{name}` body (accounts, groups).
func decodeName(data []byte) (string, *problem.Problem) {
	var b nameBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return "", p
	}
	var v fieldChecker
	name := v.text("name", b.Name, true, maxNameRunes)
	return name, v.problem()
}

// newSubscription is a validated create-subscription request.
type newSubscription struct {
	Application string
	Name        string
	Seats       int
	Roles       []string
}

func decodeSubscription(data []byte) (newSubscription, *problem.Problem) {
	var b createSubscriptionBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return newSubscription{}, p
	}
	var v fieldChecker
	s := newSubscription{
		Application: v.text("application", b.Application, true, maxNameRunes),
		Name:        v.text("name", b.Name, true, maxNameRunes),
	}
	switch {
	case b.Seats == nil:
		v.add("seats", "is required")
	case *b.Seats < 1 || *b.Seats > maxSeats:
		v.add("seats", fmt.Sprintf("must be between 1 and %d", maxSeats))
	default:
		s.Seats = int(*b.Seats)
	}
	if len(b.Roles) == 0 {
		v.add("roles", "must name at least one role")
	}
	seen := make(map[string]int, len(b.Roles))
	for i, raw := range b.Roles {
		field := fmt.Sprintf("roles[%d]", i)
		role := v.text(field, raw, true, maxRoleRunes)
		if j, dup := seen[role]; dup && role != "" {
			v.add(field, fmt.Sprintf("repeats roles[%d]", j))
			continue
		}
		seen[role] = i
		s.Roles = append(s.Roles, role)
	}
	return s, v.problem()
}

// newInvitation is a validated create-invitation request (invitecreate.Request, whose JSON
// form is canonical and hashed for the Idempotency-Key).
type newInvitation = invitecreate.Request

// decodeInvitation decodes and validates a create-invitation body with the default
// INVITATION_TTL_MAX. Every bad field is named.
func decodeInvitation(data []byte) (newInvitation, *problem.Problem) {
	return decodeInvitationUpTo(data, defaultTTLMax)
}

// defaultTTLMax is INVITATION_TTL_MAX's default.
const defaultTTLMax = 720 * time.Hour

// decodeInvitationUpTo decodes and validates a create-invitation body whose expires_in may be
// at most maxTTL.
func decodeInvitationUpTo(data []byte, maxTTL time.Duration) (newInvitation, *problem.Problem) {
	var b createInvitationBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return newInvitation{}, p
	}
	var v fieldChecker
	n := newInvitation{GroupIDs: []uuid.UUID{}}
	if b.UserID != "" {
		// An existing user brings their own name and address; two sources would disagree.
		n.UserID = v.id("user_id", b.UserID, true)
		for _, f := range [...]struct{ name, value string }{
			{"email", b.Email}, {"first_name", b.FirstName}, {"last_name", b.LastName}, {"phone", b.Phone},
		} {
			if f.value != "" {
				v.add(f.name, "must not be given with user_id")
			}
		}
	} else {
		if b.Email == "" {
			v.add("email", "is required (or give user_id to invite an existing user)")
		} else {
			n.Email = v.email("email", b.Email, true)
		}
		n.FirstName = v.text("first_name", b.FirstName, true, maxNameRunes)
		n.LastName = v.text("last_name", b.LastName, true, maxNameRunes)
		n.Phone = v.phone("phone", b.Phone)
	}
	if id := v.id("subscription_id", b.SubscriptionID, true); id != nil {
		n.SubscriptionID = *id
	}
	n.Role = v.text("role", b.Role, true, maxRoleRunes)
	for i, raw := range b.GroupIDs {
		id := v.id(fmt.Sprintf("group_ids[%d]", i), raw, true)
		if id != nil && !slices.Contains(n.GroupIDs, *id) { // a repeated group means the same thing
			n.GroupIDs = append(n.GroupIDs, *id)
			n.GroupFields = append(n.GroupFields, fmt.Sprintf("group_ids[%d]", i))
		}
	}
	if b.Inviter != nil {
		n.Inviter = &contract.Person{
			Name:  v.text("inviter.name", b.Inviter.Name, true, maxNameRunes),
			Email: v.email("inviter.email", b.Inviter.Email, true),
		}
	}
	n.ExpiresIn = v.expiresIn("expires_in", b.ExpiresIn, maxTTL)
	n.HoldEmail = b.SendEmail != nil && !*b.SendEmail
	if msg := v.message("message", b.Message); msg != nil {
		n.Message = *msg
	}
	n.Metadata = v.metadata("metadata", b.Metadata)
	n.RedirectURL = v.redirectURL("redirect_url", strings.TrimSpace(b.RedirectURL))
	return n, v.problem()
}
