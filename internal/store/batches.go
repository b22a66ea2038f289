package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Bulk invitations: a batch and its rows (migration 007).

// Batch statuses and row statuses.
const (
	BatchRunning   = "running"
	BatchCompleted = "completed"
	ItemPending    = "pending"
	ItemCreated    = "created"
	ItemFailed     = "failed"
)

// Batch is one bulk submission.
type Batch struct {
	ID             uuid.UUID
	AccountID      uuid.UUID
	IdempotencyKey string // "" for none
	RequestHash    []byte
	FullReach      bool
	CreatedBy      string
	Total          int
	Status         string
	CreatedAt      time.Time
	CompletedAt    *time.Time
	// Succeeded and Failed count the rows finished so far.
	Succeeded, Failed int
}

// BatchItem is one row of a batch.
type BatchItem struct {
	Index        int
	Request      json.RawMessage // the validated create request; nil for a row that failed validation
	InvitationID uuid.UUID
	Status       string
	ErrorCode    string
	ErrorDetail  string
	ErrorFields  json.RawMessage // [{field, message}] of a validation failure
}

// ErrBatchConflict: the batch's Idempotency-Key was used with a different body.
var ErrBatchConflict = errors.New("idempotency key reused with a different batch")

// CreateBatch records a batch and its rows, or, for an Idempotency-Key already used with the
// same body, returns the batch recorded then (created false).
func (s *Store) CreateBatch(ctx context.Context, b Batch, items []BatchItem) (Batch, bool, error) {
	created := false
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if b.IdempotencyKey != "" {
			// Serialise the submissions of one key, so two concurrent ones record one batch.
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 7))`, b.AccountID, b.IdempotencyKey); err != nil {
				return err
			}
			var id uuid.UUID
			var hash []byte
			err := tx.QueryRow(ctx, `select id, request_hash from invitation_batches where account_id = $1 and idempotency_key = $2`,
				b.AccountID, b.IdempotencyKey).Scan(&id, &hash)
			if err == nil {
				if !bytes.Equal(hash, b.RequestHash) {
					return ErrBatchConflict
				}
				b.ID = id
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		created = true
		if _, err := tx.Exec(ctx, `
			insert into invitation_batches (id, account_id, idempotency_key, request_hash, full_reach, created_by, total)
			values ($1, $2, nullif($3, ''), $4, $5, $6, $7)`,
			b.ID, b.AccountID, b.IdempotencyKey, b.RequestHash, b.FullReach, b.CreatedBy, len(items)); err != nil {
			return err
		}
		rows := make([][]any, len(items))
		for i, it := range items {
			var req any
			if len(it.Request) > 0 {
				req = string(it.Request)
			}
			fields := it.ErrorFields
			if len(fields) == 0 {
				fields = json.RawMessage("[]")
			}
			var finished any
			if it.Status != ItemPending {
				finished = time.Now()
			}
			rows[i] = []any{b.ID, it.Index, req, it.InvitationID, it.Status, it.ErrorCode, it.ErrorDetail, string(fields), finished}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"invitation_batch_items"},
			[]string{"batch_id", "index", "request", "invitation_id", "status", "error_code", "error_detail", "error_fields", "finished_at"},
			pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return Batch{}, false, err
	}
	got, err := s.GetBatch(ctx, b.AccountID, b.ID)
	return got, created, err
}

// DeleteUnstartedBatch deletes a batch none of whose rows was processed yet (its workflow could
// not be started, so the submission answers that nothing happened).
func (s *Store) DeleteUnstartedBatch(ctx context.Context, id uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `
		delete from invitation_batches b where id = $1
		and not exists (select 1 from invitation_batch_items i where i.batch_id = b.id and i.status = 'created')`, id)
	return err
}

// GetBatch returns an account's batch with its counts.
func (s *Store) GetBatch(ctx context.Context, accountID, id uuid.UUID) (Batch, error) {
	var b Batch
	var key *string
	err := s.Pool.QueryRow(ctx, `
		select b.id, b.account_id, b.idempotency_key, b.request_hash, b.full_reach, b.created_by, b.total, b.status,
			b.created_at, b.completed_at,
			(select count(*) from invitation_batch_items i where i.batch_id = b.id and i.status = 'created'),
			(select count(*) from invitation_batch_items i where i.batch_id = b.id and i.status = 'failed')
		from invitation_batches b where b.id = $1 and b.account_id = $2`, id, accountID).
		Scan(&b.ID, &b.AccountID, &key, &b.RequestHash, &b.FullReach, &b.CreatedBy, &b.Total, &b.Status,
			&b.CreatedAt, &b.CompletedAt, &b.Succeeded, &b.Failed)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, ErrNotFound
	}
	if key != nil {
		b.IdempotencyKey = *key
	}
	return b, err
}

// batchItemColumns select a BatchItem; use with scanBatchItem.
const batchItemColumns = `index, request, invitation_id, status, error_code, error_detail, error_fields`

func scanBatchItem(r pgx.CollectableRow) (BatchItem, error) {
	var it BatchItem
	var req []byte
	err := r.Scan(&it.Index, &req, &it.InvitationID, &it.Status, &it.ErrorCode, &it.ErrorDetail, &it.ErrorFields)
	if len(req) > 0 {
		it.Request = req
	}
	return it, err
}

// BatchItems returns a batch's rows; finishedOnly leaves out those still pending.
func (s *Store) BatchItems(ctx context.Context, batchID uuid.UUID, finishedOnly bool) ([]BatchItem, error) {
	rows, err := s.Pool.Query(ctx, `select `+batchItemColumns+` from invitation_batch_items
		where batch_id = $1 and (not $2 or status <> 'pending') order by index`, batchID, finishedOnly)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanBatchItem)
}

// PendingBatchItems returns up to limit rows of the batch still to create, in order.
func (s *Store) PendingBatchItems(ctx context.Context, batchID uuid.UUID, limit int) ([]BatchItem, error) {
	rows, err := s.Pool.Query(ctx, `select `+batchItemColumns+` from invitation_batch_items
		where batch_id = $1 and status = 'pending' order by index limit $2`, batchID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanBatchItem)
}

// FinishBatchItem records a pending row's outcome; a row already finished keeps its first one.
func (s *Store) FinishBatchItem(ctx context.Context, batchID uuid.UUID, it BatchItem) error {
	fields := it.ErrorFields
	if len(fields) == 0 {
		fields = json.RawMessage("[]")
	}
	_, err := s.Pool.Exec(ctx, `
		update invitation_batch_items set status = $3, error_code = $4, error_detail = $5, error_fields = $6, finished_at = now()
		where batch_id = $1 and index = $2 and status = 'pending'`,
		batchID, it.Index, it.Status, it.ErrorCode, it.ErrorDetail, string(fields))
	return err
}

// CompleteBatch marks a batch whose rows are all finished completed.
func (s *Store) CompleteBatch(ctx context.Context, id uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `
		update invitation_batches b set status = 'completed', completed_at = now()
		where id = $1 and status = 'running'
		and not exists (select 1 from invitation_batch_items i where i.batch_id = b.id and i.status = 'pending')`, id)
	return err
}

// InvitationExists reports whether an invitation with id was recorded.
func (s *Store) InvitationExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := s.Pool.QueryRow(ctx, `select exists(select 1 from invitations where id = $1)`, id).Scan(&ok)
	return ok, err
}
