package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// List limits.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// createInvitation validates, authorises and pre-checks the request, then has the workflow
// reserve the seat and record the invitation in one update-with-start, answering 201 only
// once both are done.
func (s *Server) createInvitation(c *gin.Context) error {
	ctx := c.Request.Context()
	acc := account(c)
	key, err := idempotencyKey(c.Request.Header.Values("Idempotency-Key"))
	if err != nil {
		return err
	}
	req, err := readRequest(c, func(data []byte) (newInvitation, *problem.Problem) {
		return decodeInvitationUpTo(data, s.cfg.InvitationTTLMax)
	})
	if err != nil {
		return err
	}
	id := uuid.Must(uuid.NewV7())
	in, sub, err := s.creator.Input(ctx, acc, fullReach(c), req, id)
	if err != nil {
		return err
	}

	first := true
	if key != "" {
		claimed, same, err := s.store.ClaimIdempotencyKey(ctx, acc.ID, key, req.Hash(), id)
		if err != nil {
			return err
		}
		if !same {
			return problem.New(contract.CodeIdempotencyConflict, "This Idempotency-Key was used with a different request body.")
		}
		first, id = claimed == id, claimed
		in.InvitationID = id
		if !first {
			inv, err := s.store.GetInvitation(ctx, id)
			if err == nil {
				c.Header("Idempotent-Replayed", "true")
				return s.answerCreated(c, inv)
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			// The first request is still running or was refused. Skipping the pre-checks
			// lets this one join the first's workflow and get its outcome, instead of
			// being refused because of the invitation the first is creating.
		}
	}
	if first {
		if err := s.creator.Precheck(ctx, sub, in); err != nil {
			return err
		}
	}

	st, err := s.creator.Start(ctx, in)
	if err != nil {
		return err
	}
	// Created: the answer is 201 whatever happens to this read, since a 503 would tell the
	// portal that nothing happened. A dropped connection is retried; if Postgres stays out of
	// reach, the invitation is answered as the workflow recorded it.
	inv, err := s.readCreated(ctx, id)
	if err != nil {
		s.log.Warn("created invitation answered from the workflow's record; Postgres unreadable", "invitation_id", id, "error", err)
		inv = createdAsRecorded(in, st, s.now())
	}
	overlayState(&inv, st)
	return s.answerCreated(c, inv)
}

// readCreated reads an invitation the workflow has just recorded, trying again on a failed read
// for up to about a second.
func (s *Server) readCreated(ctx context.Context, id uuid.UUID) (store.Invitation, error) {
	var err error
	for attempt := range 5 {
		var inv store.Invitation
		if inv, err = s.store.GetInvitation(ctx, id); err == nil {
			return inv, nil
		}
		select {
		case <-ctx.Done():
			return inv, err
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
	return store.Invitation{}, err
}

// createdAsRecorded is the invitation as the create recorded it, from the workflow's input and
// its answer: what the row holds until its first email goes out.
func createdAsRecorded(in contract.InvitationInput, st contract.State, now time.Time) store.Invitation {
	inv := store.Invitation{
		NewInvitation: store.NewInvitation{
			ID: in.InvitationID, AccountID: in.AccountID, SubscriptionID: in.SubscriptionID, Application: in.Application,
			Role: in.Role, GroupIDs: in.GroupIDs, UserID: in.UserID, Email: in.Email, FirstName: in.FirstName,
			LastName: in.LastName, Phone: in.Phone, InviterName: in.Inviter.Name, InviterEmail: in.Inviter.Email,
			ExpiresAt: st.ExpiresAt.Truncate(time.Microsecond),
			ExpiresIn: in.Settings.TTL, HoldEmail: in.HoldEmail, Message: in.Message, Metadata: in.Metadata,
			RedirectURL: in.RedirectURL,
		},
		AccountName: in.AccountName, Subscription: in.SubscriptionName,
		Status: contract.StatusPending, Generation: 1, Sends: 1,
		CreatedAt: now, UpdatedAt: now, DeliveryStatus: contract.DeliveryQueued,
	}
	if in.HoldEmail {
		inv.Sends, inv.DeliveryStatus = 0, ""
	}
	return inv
}

func (s *Server) answerCreated(c *gin.Context, inv store.Invitation) error {
	c.Header("Location", "/v1/accounts/"+inv.AccountID.String()+"/invitations/"+inv.ID.String())
	c.JSON(http.StatusCreated, s.invitationView(inv))
	return nil
}

// idempotencyKey checks the optional Idempotency-Key header: once, 1 to 255 visible ASCII
// characters.
func idempotencyKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", problem.InvalidField("Idempotency-Key", "must be given once")
	}
	key := values[0]
	ok := key != "" && len(key) <= maxIdemKeyLen
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] > ' ' && key[i] < 0x7f
	}
	if !ok {
		return "", problem.InvalidField("Idempotency-Key", fmt.Sprintf("must be 1 to %d visible ASCII characters", maxIdemKeyLen))
	}
	return key, nil
}

// listInvitations answers a page of the account's invitations, newest first.
func (s *Server) listInvitations(c *gin.Context) error {
	q := c.Request.URL.Query()
	var v fieldChecker
	status := q.Get("status")
	if status != "" && !validStatus(status) {
		v.add("status", "must be one of pending, accepted, expired, revoked, declined")
	}
	email := q.Get("email")
	if len(email) > maxFilterBytes || !plainText(email) {
		v.add("email", "must be an email address of at most 254 characters")
	}
	limit := defaultListLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxListLimit {
			v.add("limit", fmt.Sprintf("must be an integer between 1 and %d", maxListLimit))
		}
		limit = n
	}
	var cursor *store.Cursor
	if raw := q.Get("cursor"); raw != "" {
		cur, ok := decodeCursor(raw)
		if !ok {
			v.add("cursor", "must be a next_cursor value returned by this list")
		}
		cursor = &cur
	}
	if p := v.problem(); p != nil {
		return p
	}
	items, next, err := s.store.ListInvitations(c.Request.Context(), account(c).ID, status, email, limit, cursor)
	if err != nil {
		return err
	}
	out := invitationListView{Items: make([]invitationView, 0, len(items))}
	for _, inv := range items {
		out.Items = append(out.Items, s.invitationView(inv))
	}
	if next != nil {
		cur := encodeCursor(*next)
		out.NextCursor = &cur
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func validStatus(s string) bool {
	switch contract.Status(s) {
	case contract.StatusPending, contract.StatusAccepted, contract.StatusExpired, contract.StatusRevoked, contract.StatusDeclined:
		return true
	}
	return false
}

// loadInvitation reads the path's invitation, which must belong to the path's account.
func (s *Server) loadInvitation(c *gin.Context) (store.Invitation, error) {
	id, ok := parseID(c.Param("invitation_id"))
	if !ok {
		return store.Invitation{}, problem.NotFound("invitation")
	}
	inv, err := s.store.GetInvitation(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inv.AccountID != account(c).ID) {
		return store.Invitation{}, problem.NotFound("invitation")
	}
	return inv, err
}

func (s *Server) getInvitation(c *gin.Context) error {
	inv, err := s.loadInvitation(c)
	if err != nil {
		return err
	}
	events, err := s.store.InvitationEvents(c.Request.Context(), inv.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, invitationDetailView{invitationView: s.invitationView(inv), Events: eventViews(events)})
	return nil
}

// invitationLink is "copy invitation link": the pending invitation's current link.
func (s *Server) invitationLink(c *gin.Context) error {
	inv, err := s.loadInvitation(c)
	if err != nil {
		return err
	}
	if inv.Status != contract.StatusPending || !s.now().Before(inv.ExpiresAt) {
		return problem.New(contract.CodeInvalidState, "Only a pending invitation has a link; this one is %s.", invitee.EffectiveStatus(inv, s.now()))
	}
	c.JSON(http.StatusOK, linkView{InviteURL: s.inviteURL(inv), ExpiresAt: inv.ExpiresAt.UTC()})
	return nil
}
