package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// The create of an invitation, and its undo when the workflow run gave up on it.

// NewInvitation is what CreateInvitation records: the invitation's row as the workflow's
// create activity hands it over (hence the JSON name of ID, which the activity's input always had).
type NewInvitation struct {
	ID             uuid.UUID `json:"InvitationID"`
	AccountID      uuid.UUID
	SubscriptionID uuid.UUID
	Application    string
	Role           string
	GroupIDs       []uuid.UUID
	UserID         *uuid.UUID
	Email          string
	FirstName      string
	LastName       string
	Phone          string
	InviterName    string
	InviterEmail   string
	ExpiresAt      time.Time
	// CreateRun is the workflow run that records the row (empty for runs of lifecycle 0): a
	// create that run abandoned (AbandonCreate) refuses to commit late.
	CreateRun string `json:",omitempty"`
	// The options of CONTRACT.md "Invitation options". ExpiresIn is the invitation's validity,
	// also that of its renewals (zero for rows from before it was recorded: INVITATION_TTL);
	// HoldEmail (send_email false) sends nothing until a resend; Metadata is a JSON object,
	// copied onto the membership on acceptance.
	ExpiresIn   time.Duration   `json:",omitempty"`
	HoldEmail   bool            `json:",omitempty"`
	Message     string          `json:",omitempty"`
	Metadata    json.RawMessage `json:",omitempty"`
	RedirectURL string          `json:",omitempty"`
}

// metadataArg is a metadata object as a query argument: {} when there is none.
func metadataArg(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(m)
}

// secondsArg is a validity as the expires_in column: whole seconds, null for none.
func secondsArg(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	n := int64(d / time.Second)
	return &n
}

// CreateInvitation records a pending invitation and reserves its seat, atomically. created is
// false when a previous attempt had already committed it.
func (s *Store) CreateInvitation(ctx context.Context, n NewInvitation) (created bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		// Serialised with AbandonCreate on the invitation, and with every accept and renew of
		// the same person in the account: what refuseMember reads below is then what committed.
		if err := lockCreate(ctx, tx, n.ID); err != nil {
			return err
		}
		if err := lockInvitee(ctx, tx, n.AccountID, n.Email); err != nil {
			return err
		}
		if n.CreateRun != "" {
			var abandoned bool
			if err := tx.QueryRow(ctx, `select exists(select 1 from abandoned_creates where invitation_id = $1 and run_id = $2)`,
				n.ID, n.CreateRun).Scan(&abandoned); err != nil {
				return err
			}
			if abandoned {
				return ErrAbandoned
			}
		}
		var exists bool
		if err := tx.QueryRow(ctx, `select exists(select 1 from invitations where id = $1)`, n.ID).Scan(&exists); err != nil {
			return err
		}
		if exists { // a retry of a create that committed
			return nil
		}
		created = true
		if err := refuseMember(ctx, tx, n.AccountID, n.UserID, n.Email); err != nil {
			return err
		}
		if err := reserveSeat(ctx, tx, n.SubscriptionID); err != nil {
			return err
		}
		// sends starts at 1: the workflow emails the invite right after, and the portal's 201
		// should already say so (0 when the email is held back).
		if n.GroupIDs == nil {
			n.GroupIDs = []uuid.UUID{}
		}
		_, err = tx.Exec(ctx, `
			insert into invitations (id, account_id, subscription_id, application, role, group_ids, user_id,
				email, first_name, last_name, phone, inviter_name, inviter_email, status, generation, expires_at, sends, create_run,
				expires_in, send_email, message, metadata, redirect_url)
			values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'pending',1,$14,case when $17 then 1 else 0 end,nullif($15, ''),
				$16,$17,$18,$19::jsonb,$20)`,
			n.ID, n.AccountID, n.SubscriptionID, n.Application, n.Role, n.GroupIDs, n.UserID,
			n.Email, n.FirstName, n.LastName, n.Phone, n.InviterName, n.InviterEmail, n.ExpiresAt, n.CreateRun,
			secondsArg(n.ExpiresIn), !n.HoldEmail, n.Message, metadataArg(n.Metadata), n.RedirectURL)
		if constraintOf(err) == "invitations_one_pending" {
			return errPendingExists
		}
		if err != nil {
			return err
		}
		return addEvent(ctx, tx, n.ID, contract.EventCreated, 1, fmt.Sprintf("invited as %s; link valid until %s", n.Role, n.ExpiresAt.UTC().Format(time.RFC3339)))
	})
	if errors.Is(err, errPendingExists) {
		return false, s.duplicateOf(ctx, n.AccountID, n.Email)
	}
	return created && err == nil, err
}

// errPendingExists leaves a transaction that hit the one-pending-invitation constraint; the
// caller then names the winner with duplicateOf. It must not look it up inside the transaction:
// that would hold one pool connection while waiting for another, and a burst of duplicates
// would deadlock the pool.
var errPendingExists = errors.New("a pending invitation for this email exists")

// duplicateOf reads the pending invitation that won the race, after the failed transaction.
func (s *Store) duplicateOf(ctx context.Context, accountID uuid.UUID, email string) error {
	var id uuid.UUID
	err := s.Pool.QueryRow(ctx, `select id from invitations where account_id = $1 and lower(email) = lower($2) and status = 'pending'`,
		accountID, email).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return &DuplicateInvitationError{ExistingID: id}
}

// lockCreate serialises the transactions that create or abandon the create of invitation id.
func lockCreate(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	_, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtextextended($1::text, 1))`, id)
	return err
}

// AbandonCreate undoes the create of invitation id by workflow run runID, which gave up on it
// (its attempt ran out of time, perhaps after committing): it leaves a tombstone, so an attempt
// still in flight refuses to commit, and deletes the row that run created, releasing its seat.
// A row created by another run (the API's retry of the create starts a new one) stays.
func (s *Store) AbandonCreate(ctx context.Context, id uuid.UUID, runID string) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockCreate(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `insert into abandoned_creates (invitation_id, run_id) values ($1, $2) on conflict do nothing`, id, runID); err != nil {
			return err
		}
		var createRun *string
		err := tx.QueryRow(ctx, `select create_run from invitations where id = $1 and status = 'pending' and generation = 1 for update`, id).Scan(&createRun)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if createRun == nil || *createRun != runID {
			return nil
		}
		return deleteInvitation(ctx, tx, id)
	})
}

// DiscardInvitation deletes a pending invitation whose creation the workflow abandoned (its
// create activity timed out after perhaps committing) and releases its seat. No-op if absent.
func (s *Store) DiscardInvitation(ctx context.Context, id uuid.UUID) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		inv, err := lockInvitation(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if inv.status != contract.StatusPending || inv.generation != 1 {
			return ErrInvalidState
		}
		return deleteInvitation(ctx, tx, id)
	})
}

// deleteInvitation deletes a pending invitation's rows and releases its seat.
func deleteInvitation(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	var subscriptionID uuid.UUID
	if err := tx.QueryRow(ctx, `select subscription_id from invitations where id = $1`, id).Scan(&subscriptionID); err != nil {
		return err
	}
	if err := releaseSeat(ctx, tx, subscriptionID); err != nil {
		return err
	}
	for _, q := range []string{
		`delete from invitation_events where invitation_id = $1`,
		`delete from emails where invitation_id = $1`,
		`delete from invitations where id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}
