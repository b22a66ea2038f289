// Package invitecreate is the create of one invitation after its body was decoded: the checks
// that need the database (subscription, role, groups, the invited user, the account's policy,
// the common refusals) and the workflow's update-with-start that records it and holds its seat.
// The API's single create and the worker's bulk rows go through it, so a row of a batch is
// judged with exactly the rules and codes of a single create.
package invitecreate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Request is a validated create-invitation request. Its JSON form is canonical (ids in lower
// case, group ids unique, text trimmed), so hashing it tells whether two requests under one
// Idempotency-Key ask for the same thing; a bulk batch stores its rows in this form.
type Request struct {
	UserID         *uuid.UUID       `json:"user_id,omitempty"`
	Email          string           `json:"email,omitempty"`
	FirstName      string           `json:"first_name,omitempty"`
	LastName       string           `json:"last_name,omitempty"`
	Phone          string           `json:"phone,omitempty"`
	SubscriptionID uuid.UUID        `json:"subscription_id"`
	Role           string           `json:"role"`
	GroupIDs       []uuid.UUID      `json:"group_ids"`
	Inviter        *contract.Person `json:"inviter,omitempty"`
	// The options: zero values are the defaults (INVITATION_TTL, send the email, no note, no
	// metadata, no redirect).
	ExpiresIn   time.Duration   `json:"expires_in,omitempty"`
	HoldEmail   bool            `json:"hold_email,omitempty"`
	Message     string          `json:"message,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	RedirectURL string          `json:"redirect_url,omitempty"`
	// Bulk marks a row of a batch: its emails queue behind single invitations'.
	Bulk bool `json:"bulk,omitempty"`

	// GroupFields names the body field of each GroupIDs entry ("group_ids[3]"), whose index
	// can differ once repeats are dropped. Not part of the canonical form.
	GroupFields []string `json:"group_fields,omitempty"`
}

// Hash is the SHA-256 of the canonical JSON form.
func (r Request) Hash() []byte {
	canon := r
	canon.GroupFields = nil
	canon.GroupIDs = slices.Clone(r.GroupIDs)
	slices.SortFunc(canon.GroupIDs, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	data, _ := json.Marshal(canon) // strings, ids and a checked object: cannot fail
	sum := sha256.Sum256(data)
	return sum[:]
}

// Service creates invitations.
type Service struct {
	Store     *store.Store
	Workflows *workflowclient.Client
	Config    config.Config
}

// Input checks what needs the database and returns the workflow's input for invitation id with
// the subscription: an unknown subscription or user is 404 not_found, a role or group that does
// not fit is 422 naming the field, an address the account's settings refuse 422
// domain_not_allowed, a redirect they refuse 422 redirect_not_allowed. fullReach is the
// portal's unscoped token, which may name any user; a scoped one names only people its
// account knows, and learns nothing of others.
func (s *Service) Input(ctx context.Context, acc store.Account, fullReach bool, req Request, id uuid.UUID) (contract.InvitationInput, store.Subscription, error) {
	sub, err := s.Store.GetSubscription(ctx, acc.ID, req.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) {
		return contract.InvitationInput{}, sub, problem.New(contract.CodeNotFound, "The account has no subscription %s.", req.SubscriptionID)
	}
	if err != nil {
		return contract.InvitationInput{}, sub, err
	}
	if err := s.checkRoleAndGroups(ctx, acc.ID, sub, req); err != nil {
		return contract.InvitationInput{}, sub, err
	}
	in := s.input(id, acc, sub, req)
	if req.UserID != nil {
		// An existing user is invited under the name and address the service knows them by.
		u, err := s.Store.GetUser(ctx, *req.UserID)
		if err == nil && !fullReach {
			var known bool
			if known, err = s.Store.AccountKnowsUser(ctx, acc.ID, u); err == nil && !known {
				err = store.ErrNotFound
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			return in, sub, problem.New(contract.CodeNotFound, "No user %s.", *req.UserID)
		}
		if err != nil {
			return in, sub, err
		}
		in.UserID, in.Email, in.FirstName, in.LastName, in.Phone = &u.ID, u.Email, u.FirstName, u.LastName, u.Phone
	}
	if err := s.CheckPolicy(ctx, acc.ID, in.Email, req.RedirectURL); err != nil {
		return in, sub, err
	}
	in.EmailHash = emailhash.Hash(s.Config.EmailHashKey, in.Email)
	return in, sub, nil
}

// input is what the workflow starts with: everything it needs to record the invitation and
// write its emails, and the lifecycle settings fixed for its whole life.
func (s *Service) input(id uuid.UUID, acc store.Account, sub store.Subscription, req Request) contract.InvitationInput {
	in := contract.InvitationInput{
		InvitationID: id, AccountID: acc.ID, AccountName: acc.Name,
		SubscriptionID: sub.ID, SubscriptionName: sub.Name, Application: sub.Application,
		Role: req.Role, GroupIDs: req.GroupIDs,
		Email: req.Email, FirstName: req.FirstName, LastName: req.LastName, Phone: req.Phone,
		Settings:  LifecycleSettings(s.Config),
		HoldEmail: req.HoldEmail, Message: req.Message, Metadata: req.Metadata, RedirectURL: req.RedirectURL,
		Bulk: req.Bulk,
	}
	if req.ExpiresIn > 0 {
		in.Settings.TTL = req.ExpiresIn
	}
	if req.Inviter != nil {
		in.Inviter = *req.Inviter
	}
	return in
}

// LifecycleSettings are the lifecycle durations a run starts with.
func LifecycleSettings(cfg config.Config) contract.Settings {
	return contract.Settings{TTL: cfg.InvitationTTL, ReminderBefore: cfg.ReminderBefore, ResendMinInterval: cfg.ResendMinInterval}
}

// checkRoleAndGroups refuses a role the subscription does not have and groups of other
// accounts, naming each bad field.
func (s *Service) checkRoleAndGroups(ctx context.Context, accountID uuid.UUID, sub store.Subscription, req Request) error {
	var errs []problem.FieldError
	if !sub.HasRole(req.Role) {
		errs = append(errs, problem.FieldError{Field: "role", Message: "must be one of the subscription's roles: " + strings.Join(sub.Roles, ", ")})
	}
	if len(req.GroupIDs) > 0 {
		missing, err := s.Store.GroupsNotInAccount(ctx, accountID, req.GroupIDs)
		if err != nil {
			return err
		}
		for i, g := range req.GroupIDs {
			if slices.Contains(missing, g) {
				field := "group_ids"
				if i < len(req.GroupFields) {
					field = req.GroupFields[i]
				}
				errs = append(errs, problem.FieldError{Field: field, Message: "is not a group of this account"})
			}
		}
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// CheckPolicy applies the account's settings to an invitation: the invitee's email domain must
// be allowed (domain_not_allowed) and a redirect_url's origin too (redirect_not_allowed).
func (s *Service) CheckPolicy(ctx context.Context, accountID uuid.UUID, email, redirectURL string) error {
	st, err := s.Store.AccountSettings(ctx, accountID)
	if err != nil {
		return err
	}
	if !st.EmailAllowed(email) {
		p := problem.New(contract.CodeDomainNotAllowed, "The account accepts invitations only for addresses at %s.", strings.Join(st.AllowedEmailDomains, ", "))
		p.Errors = []problem.FieldError{{Field: "email", Message: "is outside the account's allowed_email_domains"}}
		return p
	}
	if redirectURL != "" && !st.RedirectAllowed(redirectURL) {
		p := problem.New(contract.CodeRedirectNotAllowed, "redirect_url must be an http(s) URL whose origin is one of the account's allowed_redirect_origins.")
		p.Errors = []problem.FieldError{{Field: "redirect_url", Message: "is outside the account's allowed_redirect_origins"}}
		return p
	}
	return nil
}

// Precheck answers the common refusals clearly before anything starts. The workflow's create
// checks the same things again inside one transaction; this only makes the usual case fast and
// its answer precise.
func (s *Service) Precheck(ctx context.Context, sub store.Subscription, in contract.InvitationInput) error {
	member, err := s.Store.IsActiveMember(ctx, in.AccountID, in.UserID, in.Email)
	if err != nil {
		return err
	}
	if member {
		return problem.New(contract.CodeAlreadyMember, "%s is already an active user of this account.", in.Email)
	}
	if err := s.DuplicateProblem(ctx, in.AccountID, in.Email); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if sub.SeatsAvailable() == 0 {
		return problem.New(contract.CodeSeatsExhausted, "Subscription %q has no free seat: its %d seats are assigned or held by pending invitations.",
			sub.Name, sub.Seats)
	}
	return nil
}

// DuplicateProblem is the duplicate_invitation problem naming the pending invitation for
// email, or store.ErrNotFound when there is none.
func (s *Service) DuplicateProblem(ctx context.Context, accountID uuid.UUID, email string) error {
	id, err := s.Store.PendingInvitationID(ctx, accountID, email)
	if err != nil {
		return err
	}
	p := problem.New(contract.CodeDuplicateInvitation, "A pending invitation for this email exists in the account: %s.", id)
	p.InvitationID = id.String()
	return p
}

// Start has the workflow record the invitation and hold its seat (update-with-start), and
// answers its state. A duplicate names the invitation that won the race.
func (s *Service) Start(ctx context.Context, in contract.InvitationInput) (contract.State, error) {
	st, err := s.Workflows.Start(ctx, in)
	if err == nil {
		return st, nil
	}
	var p *problem.Problem
	if errors.As(err, &p) && p.Code == contract.CodeDuplicateInvitation {
		// Name the invitation that won the race; it may be gone again already.
		if dup := s.DuplicateProblem(ctx, in.AccountID, in.Email); !errors.Is(dup, store.ErrNotFound) {
			return st, dup
		}
		return st, p
	}
	if errors.Is(err, workflowclient.ErrWorkflowClosed) { // update-with-start starts a run; NotFound is not expected
		return st, problem.Unavailable(err)
	}
	return st, err
}
