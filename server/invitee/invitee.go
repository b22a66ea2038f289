// Package invitee holds what an invitee can do with an invite link (see it, accept, decline,
// ask for a new invitation), authorised by the link's token alone. The JSON API's invitee routes
// and the hosted pages both act through it, so they can never disagree about an invitation; it
// also counts each request's use of a link against the per-link rate limit, once, where the
// token is resolved.
package invitee

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Store is the part of *store.Store the invitee operations read.
type Store interface {
	GetInvitation(ctx context.Context, id uuid.UUID) (store.Invitation, error)
	UserExistsWithEmail(ctx context.Context, email string) (bool, error)
	LastEventAt(ctx context.Context, id uuid.UUID, typ string) (time.Time, error)
	UserPasswordHash(ctx context.Context, userID *uuid.UUID, email string) (uuid.UUID, string, error)
}

// Service runs the invitee operations.
type Service struct {
	Store     Store
	Signer    *invitetoken.Signer
	Hasher    *password.Hasher
	Workflows *workflowclient.Client
	// LinkLimit is the per-link limit (RATE_LIMIT_INVITEE_TOKEN): one link cannot be hammered
	// from many addresses. Only links that verify get a bucket, so forged tokens cannot fill the
	// table. Nil allows everything.
	LinkLimit *ratelimit.Set
	// SignInUser and SignInClient limit failed sign-ins (RATE_LIMIT_SIGN_IN_USER, _IP): per
	// existing user and per client address. Nil allows everything.
	SignInUser, SignInClient *ratelimit.Set
	// Now is the clock.
	Now func() time.Time
}

// Link is a verified invite token with the invitation it names.
type Link struct {
	Invitation store.Invitation
	// Generation is the token's; a renewal makes the invitation's higher, superseding the link.
	Generation int
}

func tokenInvalid() *problem.Problem {
	return problem.New(contract.CodeTokenInvalid, "This invitation link is not valid. Check that the whole link was copied.")
}

// Admit verifies token and counts one use of its link against the per-link limit: the first
// look at a link in a request. A bad token is token_invalid, a spent link rate_limited.
func (s *Service) Admit(ctx context.Context, token string) error {
	_, _, err := s.admit(ctx, token)
	return err
}

func (s *Service) admit(ctx context.Context, token string) (uuid.UUID, int, error) {
	id, gen, err := s.Signer.Verify(token)
	if err != nil {
		return uuid.Nil, 0, tokenInvalid()
	}
	if wait := s.LinkLimit.Take(ctx, id.String()+"/"+strconv.Itoa(gen), s.Now()); wait > 0 {
		return uuid.Nil, 0, ratelimit.Refusal(wait, "for this invitation link")
	}
	return id, gen, nil
}

// Resolve admits token (see Admit) and reads its invitation. Every kind of bad token
// (malformed, forged, naming no invitation or a generation that never existed) gets the same
// answer, so the answer tells an attacker nothing.
func (s *Service) Resolve(ctx context.Context, token string) (Link, error) {
	id, gen, err := s.admit(ctx, token)
	if err != nil {
		return Link{}, err
	}
	return s.read(ctx, id, gen)
}

// Lookup reads the link of a token again, for a request that admitted it already: it counts no
// further use of the link.
func (s *Service) Lookup(ctx context.Context, token string) (Link, error) {
	id, gen, err := s.Signer.Verify(token)
	if err != nil {
		return Link{}, tokenInvalid()
	}
	return s.read(ctx, id, gen)
}

func (s *Service) read(ctx context.Context, id uuid.UUID, gen int) (Link, error) {
	inv, err := s.Store.GetInvitation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && gen > inv.Generation) {
		return Link{}, tokenInvalid()
	}
	if err != nil {
		return Link{}, err
	}
	return Link{Invitation: inv, Generation: gen}, nil
}

// Expired reports whether the link can no longer be used: a renewal superseded it, or the
// invitation expired.
func (l Link) Expired(now time.Time) bool {
	return l.Superseded() || EffectiveStatus(l.Invitation, now) == contract.StatusExpired
}

// answered reports whether the link's own generation already reached status: an accept or
// decline sent again because its answer was lost.
func (l Link) answered(status contract.Status) bool {
	return l.Invitation.Status == status && l.Generation == l.Invitation.Generation
}

// Superseded reports whether a renewal gave the invitation a newer link.
func (l Link) Superseded() bool { return l.Generation < l.Invitation.Generation }

// ExpiredProblem is the 410 of an expired or superseded link.
func ExpiredProblem() *problem.Problem {
	return problem.New(contract.CodeInvitationExpired, "This invitation link has expired. Ask the person who invited you to send a new one.")
}

// Usable answers why the link cannot be acted on (410 expired or superseded, 409 already
// accepted, declined or revoked), or nil when the invitation is pending.
func (l Link) Usable(now time.Time) *problem.Problem {
	switch {
	case l.Expired(now):
		return ExpiredProblem()
	case l.Invitation.Status != contract.StatusPending:
		return problem.New(contract.CodeInvalidState, "This invitation was already %s.", l.Invitation.Status)
	}
	return nil
}

// EffectiveStatus is the status an invitee or admin should be told: a pending invitation
// whose expiry has passed is expired, even in the moment before its workflow's timer records it.
func EffectiveStatus(inv store.Invitation, now time.Time) contract.Status {
	if inv.Status == contract.StatusPending && !now.Before(inv.ExpiresAt) {
		return contract.StatusExpired
	}
	return inv.Status
}

// RequiresSignIn reports whether the invitee is an existing user, who accepts by proving it:
// their current password. (Users are global: without it, one account could take over the
// access a person has at another.)
func (s *Service) RequiresSignIn(ctx context.Context, inv store.Invitation) (bool, error) {
	requires, err := s.RequiresPassword(ctx, inv)
	return !requires && err == nil, err
}

// RequiresPassword reports whether accepting creates a new user, who needs a password.
func (s *Service) RequiresPassword(ctx context.Context, inv store.Invitation) (bool, error) {
	if inv.UserID != nil {
		return false, nil
	}
	exists, err := s.Store.UserExistsWithEmail(ctx, inv.Email)
	return !exists, err
}

// Accept checks the link, the terms and the password, hashes the password (the plaintext
// goes no further than this function) and has the workflow provision the user. It answers the
// user's id when it is known.
func (s *Service) Accept(ctx context.Context, link Link, pw string, acceptTerms bool, client string) (*uuid.UUID, error) {
	unusable := link.Usable(s.Now())
	if unusable != nil && !link.answered(contract.StatusAccepted) {
		return nil, unusable
	}
	if !acceptTerms {
		p := problem.New(contract.CodeTermsNotAccepted, "Accept the Terms of Service to join.")
		p.Errors = []problem.FieldError{{Field: "accept_terms", Message: "must be true"}}
		return nil, p
	}
	requires, err := s.RequiresPassword(ctx, link.Invitation)
	if err != nil {
		return nil, err
	}
	if !requires {
		if err := s.signIn(ctx, link.Invitation, pw, client); err != nil {
			return nil, err
		}
	}
	if unusable != nil {
		// Accepted through this link already: a retry whose first answer was lost. The update
		// ID gets that accept's answer from Temporal, even from the completed run.
		var res contract.AcceptResult
		err := s.Workflows.Update(ctx, link.Invitation.ID, contract.UpdateAccept, contract.UpdateID(contract.UpdateAccept, link.Generation, ""),
			contract.AcceptRequest{Generation: link.Generation}, &res)
		switch {
		case errors.Is(err, workflowclient.ErrWorkflowClosed):
			return nil, unusable // accepted otherwise (before update IDs were named): already accepted
		case err != nil:
			inv, err := s.refused(ctx, link, contract.StatusAccepted, err)
			return inv.UserID, err
		}
		return &res.UserID, nil
	}
	var hash string
	if requires {
		if msg := password.Check(pw); msg != "" {
			p := problem.New(contract.CodePasswordPolicy, "%s Passwords need %s.", problem.Sentence(msg), password.PolicyText)
			p.Errors = []problem.FieldError{{Field: "password", Message: msg}}
			return nil, p
		}
		if hash, err = s.Hasher.Hash(ctx, pw); err != nil {
			return nil, err
		}
	}
	var res contract.AcceptResult
	// Named after the link's generation: a retry after a lost answer gets the first answer
	// (the user's id), even once the run has completed.
	err = s.Workflows.Update(ctx, link.Invitation.ID, contract.UpdateAccept, contract.UpdateID(contract.UpdateAccept, link.Generation, ""),
		contract.AcceptRequest{Generation: link.Generation, PasswordHash: hash}, &res)
	if err != nil {
		inv, err := s.refused(ctx, link, contract.StatusAccepted, err)
		return inv.UserID, err
	}
	if res.UserID != uuid.Nil {
		return &res.UserID, nil
	}
	if inv, err := s.Store.GetInvitation(ctx, link.Invitation.ID); err == nil {
		return inv.UserID, nil
	}
	return nil, nil
}

// signIn checks an existing user's password before their accept: constant-time argon2id
// verification, refused with credentials_invalid, and failures limited per user and per client
// (rate_limited with Retry-After; a correct password spends nothing).
func (s *Service) signIn(ctx context.Context, inv store.Invitation, pw, client string) error {
	userID, hash, err := s.Store.UserPasswordHash(ctx, inv.UserID, inv.Email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := s.Now()
	userKey := "user:" + userID.String()
	for _, l := range []struct {
		set       *ratelimit.Set
		key, what string
	}{{s.SignInUser, userKey, "for this account's sign-in"}, {s.SignInClient, "client:" + client, "from this address"}} {
		if wait := l.set.Blocked(ctx, l.key, now); wait > 0 {
			return ratelimit.Refusal(wait, l.what)
		}
	}
	if hash == "" {
		hash = noPassword // a user without a password (or none found) costs the same time
	}
	ok, err := s.Hasher.Verify(ctx, hash, pw)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err != nil || !ok || hash == noPassword {
		s.SignInUser.Take(ctx, userKey, now)
		s.SignInClient.Take(ctx, "client:"+client, now)
		p := problem.New(contract.CodeCredentialsInvalid,
			"You already have an account: sign in with its password to accept. If you forgot it, reset it first.")
		p.Errors = []problem.FieldError{{Field: "password", Message: "is not the password of your existing account"}}
		return p
	}
	return nil
}

// noPassword is a valid argon2id hash of no password anyone can type, verified in place of a
// missing one so that the answer's timing tells nothing.
const noPassword = "$argon2id$v=19$m=19456,t=2,p=1$bm8tcGFzc3dvcmQtc2FsdA$yJ2mC7oWbx3Yv2ehYbZQ0cI3xwPQZlX3kqg6m1F6Zx8"

// Decline has the workflow close the invitation and release its seat.
func (s *Service) Decline(ctx context.Context, link Link) error {
	// Declined through this link already: a retry gets the first decline's answer, as an accept does.
	if p := link.Usable(s.Now()); p != nil && !link.answered(contract.StatusDeclined) {
		return p
	}
	var st contract.State
	err := s.Workflows.Update(ctx, link.Invitation.ID, contract.UpdateDecline, contract.UpdateID(contract.UpdateDecline, link.Generation, ""),
		contract.DeclineRequest{Generation: link.Generation}, &st)
	if err != nil {
		_, err = s.refused(ctx, link, contract.StatusDeclined, err)
	}
	return err
}

// refused settles an accept or decline (want: the status it leads to) whose update did not
// succeed. Anything but a closed run or a refusal as moved on (409, 410) stands. Otherwise
// Postgres decides: if the link's own generation reached want, the action happened, and the
// answer says so, since a non-2xx would say it did not. A closed run answered for another
// request (closedLink); a refusal comes from a workflow task that ran the step again after the
// one that committed it was lost (a worker killed between the two, or a task the server
// dropped), by which time the clock had passed the expiry, or the run had already learned of
// the close from Postgres. Any other refusal stands: the workflow's reason is the precise one.
func (s *Service) refused(ctx context.Context, link Link, want contract.Status, err error) (store.Invitation, error) {
	if !MovedOn(err) {
		return store.Invitation{}, err
	}
	inv, rerr := s.closedLink(ctx, link, want)
	var p *problem.Problem
	if rerr != nil && !errors.Is(err, workflowclient.ErrWorkflowClosed) && errors.As(rerr, &p) {
		return inv, err
	}
	return inv, rerr
}

// RequestRenewal has the workflow record that the invitee of an expired link asks for a new
// invitation and email the inviter; the workflow refuses (rate_limited) more than one a day.
// An expired invitation's run has ended, so the request starts the next run, which knows from
// the story when the invitee last asked.
func (s *Service) RequestRenewal(ctx context.Context, link Link) error {
	var st contract.State
	req := contract.RenewalRequest{Generation: link.Generation}
	if inv := link.Invitation; inv.Status == contract.StatusExpired {
		last, err := s.Store.LastEventAt(ctx, inv.ID, contract.EventRenewalRequested)
		if err != nil {
			return err
		}
		return s.Workflows.Resume(ctx, inv, last, contract.UpdateRequestRenewal, "", req, &st)
	}
	return s.Workflows.Update(ctx, link.Invitation.ID, contract.UpdateRequestRenewal, "", req, &st)
}

// MovedOn reports whether err means the invitation changed under the request (renewed,
// revoked, finished), so the answer is the link's state as it is now.
func MovedOn(err error) bool {
	var p *problem.Problem
	return errors.Is(err, workflowclient.ErrWorkflowClosed) ||
		errors.As(err, &p) && (p.Code == contract.CodeInvalidState || p.Code == contract.CodeInvitationExpired)
}

// Invitation reads an invitation as it is now (after an accept, to show its outcome).
func (s *Service) Invitation(ctx context.Context, id uuid.UUID) (store.Invitation, error) {
	return s.Store.GetInvitation(ctx, id)
}

// closedLink answers an accept or decline (want: the status it leads to) whose workflow
// finished meanwhile, from the invitation's row as it is now. If the link's own generation
// reached want, the answer is that it did: the run closed with this answer (ours, or a
// concurrent or earlier request's through the same link, whose outcome this one shares, as a
// repeated update ID would), and a non-2xx would say that nothing happened.
func (s *Service) closedLink(ctx context.Context, link Link, want contract.Status) (store.Invitation, error) {
	inv, err := s.Store.GetInvitation(ctx, link.Invitation.ID)
	if err != nil {
		return inv, err
	}
	link.Invitation = inv
	if link.answered(want) {
		return inv, nil
	}
	if p := link.Usable(s.Now()); p != nil {
		return inv, p
	}
	return inv, problem.New(contract.CodeInvalidState, "This invitation can no longer be answered.")
}
