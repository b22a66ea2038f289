package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Edit is a PATCH of a pending invitation as the workflow's edit update hands it over: nil
// fields stay as they are. Its link (the generation) and its seat stay.
type Edit struct {
	InvitationID uuid.UUID
	Generation   int
	// Key names the edit (its update's ID): it is applied, and its event written, once.
	Key       string
	Role      *string         `json:",omitempty"`
	GroupIDs  *[]uuid.UUID    `json:",omitempty"`
	Message   *string         `json:",omitempty"`
	Metadata  json.RawMessage `json:",omitempty"`
	ExpiresAt *time.Time      `json:",omitempty"`
	// ExpiresIn is the new validity, also for renewals (zero: unchanged).
	ExpiresIn time.Duration `json:",omitempty"`
	Detail    string
}

// EditInvitation applies e to the pending invitation of e.Generation and records its updated
// event, in one transaction, and returns the expiry the row then has. A repeat of an applied
// edit (the same Key) changes nothing, and answers the expiry as it is.
func (s *Store) EditInvitation(ctx context.Context, e Edit) (expiresAt time.Time, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		inv, err := lockInvitation(ctx, tx, e.InvitationID)
		if err != nil {
			return err
		}
		if inv.generation != e.Generation {
			return ErrSuperseded
		}
		key := editDedupeKey(e.InvitationID, e.Generation, e.Key)
		var done bool
		if err := tx.QueryRow(ctx, `select exists(select 1 from invitation_events where dedupe_key = $1)`, key).Scan(&done); err != nil {
			return err
		}
		if done {
			return tx.QueryRow(ctx, `select expires_at from invitations where id = $1`, e.InvitationID).Scan(&expiresAt)
		}
		if inv.status != contract.StatusPending {
			return ErrInvalidState
		}
		var groups any
		if e.GroupIDs != nil {
			groups = *e.GroupIDs
			if *e.GroupIDs == nil {
				groups = []uuid.UUID{}
			}
		}
		var metadata any
		if len(e.Metadata) > 0 {
			metadata = string(e.Metadata)
		}
		if err := tx.QueryRow(ctx, `
			update invitations set role = coalesce($2, role), group_ids = coalesce($3, group_ids),
				message = coalesce($4, message), metadata = coalesce($5::jsonb, metadata),
				expires_at = coalesce($6, expires_at), expires_in = coalesce($7, expires_in),
				edits = edits + 1, updated_at = now()
			where id = $1 returning expires_at`,
			e.InvitationID, e.Role, groups, e.Message, metadata, e.ExpiresAt, secondsArg(e.ExpiresIn)).Scan(&expiresAt); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, eventInsert, e.InvitationID, contract.EventUpdated, e.Detail, key, publicArg(contract.PublicUpdated))
		return err
	})
	return expiresAt, err
}

// editDedupeKey is the dedupe key of the updated event that the edit named key (its update's
// ID) writes on the invitation's generation.
func editDedupeKey(invitationID uuid.UUID, generation int, key string) string {
	return fmt.Sprintf("%s:g%d:%s:%s", invitationID, generation, contract.EventUpdated, key)
}

// EditApplied reports whether the edit named key was applied to the invitation's generation.
func (s *Store) EditApplied(ctx context.Context, invitationID uuid.UUID, generation int, key string) (bool, error) {
	var done bool
	err := s.Pool.QueryRow(ctx, `select exists(select 1 from invitation_events where dedupe_key = $1)`,
		editDedupeKey(invitationID, generation, key)).Scan(&done)
	return done, err
}
