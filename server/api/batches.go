package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// Bulk invitations: POST and GET /v1/accounts/{account_id}/invitation-batches (CONTRACT.md
// "Bulk invitations"). The API checks each row's body as a single create's (a bad row is
// failed at once, with the same codes), records the batch with every row's invitation id fixed,
// and starts its workflow (workflows.InvitationBatch), which creates the rows through the
// single create's path (server/invitecreate).

// batchView is a batch and its finished rows.
type batchView struct {
	ID        uuid.UUID       `json:"id"`
	Status    string          `json:"status"`
	Total     int             `json:"total"`
	Succeeded int             `json:"succeeded"`
	Failed    int             `json:"failed"`
	CreatedAt time.Time       `json:"created_at"`
	Items     []batchItemView `json:"items"`
}

type batchItemView struct {
	Index        int             `json:"index"`
	Status       string          `json:"status"`
	InvitationID *uuid.UUID      `json:"invitation_id"`
	Error        *batchErrorView `json:"error"`
}

type batchErrorView struct {
	Code   contract.Code        `json:"code"`
	Detail string               `json:"detail"`
	Errors []problem.FieldError `json:"errors,omitempty"`
}

// batchBody is a JSON batch; its rows are decoded one by one, so a bad row fails alone.
type batchBody struct {
	Items []json.RawMessage `json:"items"`
}

func (s *Server) createBatch(c *gin.Context) error {
	ctx := c.Request.Context()
	acc := account(c)
	key, err := idempotencyKey(c.Request.Header.Values("Idempotency-Key"))
	if err != nil {
		return err
	}
	rows, err := readBatchRows(c)
	if err != nil {
		return err
	}
	tok, _ := apiToken(c)
	b := store.Batch{ID: uuid.Must(uuid.NewV7()), AccountID: acc.ID, IdempotencyKey: key, FullReach: fullReach(c), CreatedBy: tok.Name}
	items := make([]store.BatchItem, len(rows))
	digest := sha256.New()
	for i, raw := range rows {
		it := store.BatchItem{Index: i, InvitationID: uuid.Must(uuid.NewV7()), Status: store.ItemPending}
		req, p := decodeInvitationUpTo(raw, s.cfg.InvitationTTLMax)
		if p != nil {
			it.Status, it.ErrorCode, it.ErrorDetail = store.ItemFailed, string(p.Code), p.Detail
			it.ErrorFields, _ = json.Marshal(p.Errors)
			fmt.Fprintf(digest, "%d:invalid:%s\n", i, raw)
		} else {
			it.Request, _ = json.Marshal(req) // strings, ids and a checked object: cannot fail
			fmt.Fprintf(digest, "%d:%x\n", i, req.Hash())
		}
		items[i] = it
	}
	b.RequestHash = digest.Sum(nil)
	got, created, err := s.store.CreateBatch(ctx, b, items)
	if errors.Is(err, store.ErrBatchConflict) {
		return problem.New(contract.CodeIdempotencyConflict, "This Idempotency-Key was used with a different batch.")
	}
	if err != nil {
		return err
	}
	// Started again on a replay too: if the first request's start failed after the batch was
	// recorded, the retry is what starts it (a running one is joined).
	if err := s.workflows.StartBatch(ctx, contract.BatchInput{BatchID: got.ID, AccountID: acc.ID, Total: got.Total}); err != nil {
		if created {
			// Nothing happened: the answer says so, and no batch is left waiting for a workflow.
			if derr := s.store.DeleteUnstartedBatch(context.WithoutCancel(ctx), got.ID); derr != nil {
				s.log.Warn("unstarted batch not deleted", "batch_id", got.ID, "error", derr)
			}
		}
		return problem.Unavailable(err)
	}
	if !created {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/v1/accounts/"+acc.ID.String()+"/invitation-batches/"+got.ID.String())
	c.JSON(http.StatusAccepted, batchView{ID: got.ID, Status: got.Status, Total: got.Total, Succeeded: got.Succeeded,
		Failed: got.Failed, CreatedAt: got.CreatedAt.UTC(), Items: []batchItemView{}})
	return nil
}

func (s *Server) getBatch(c *gin.Context) error {
	ctx := c.Request.Context()
	id, ok := parseID(c.Param("batch_id"))
	if !ok {
		return problem.NotFound("invitation batch")
	}
	b, err := s.store.GetBatch(ctx, account(c).ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("invitation batch")
	}
	if err != nil {
		return err
	}
	items, err := s.store.BatchItems(ctx, b.ID, true)
	if err != nil {
		return err
	}
	out := batchView{ID: b.ID, Status: b.Status, Total: b.Total, Succeeded: b.Succeeded, Failed: b.Failed,
		CreatedAt: b.CreatedAt.UTC(), Items: make([]batchItemView, 0, len(items))}
	for _, it := range items {
		v := batchItemView{Index: it.Index, Status: it.Status}
		if it.Status == store.ItemCreated {
			v.InvitationID = &it.InvitationID
		} else {
			v.Error = &batchErrorView{Code: contract.Code(it.ErrorCode), Detail: it.ErrorDetail}
			_ = json.Unmarshal(it.ErrorFields, &v.Error.Errors) // written by us: [] or field errors
		}
		out.Items = append(out.Items, v)
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// readBatchRows reads a batch's rows as create bodies: from JSON `{items:[...]}` or from CSV.
func readBatchRows(c *gin.Context) ([]json.RawMessage, error) {
	mt := "application/json"
	if ct := c.GetHeader("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			mt = ""
		}
	}
	var rows []json.RawMessage
	switch {
	case mt == "text/csv":
		data, err := jsonbody.ReadRaw(c)
		if err != nil {
			return nil, err
		}
		if rows, err = csvRows(data); err != nil {
			return nil, err
		}
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		data, err := jsonbody.ReadRaw(c)
		if err != nil {
			return nil, err
		}
		var b batchBody
		if p := decodeBatchBody(data, &b); p != nil {
			return nil, p
		}
		rows = b.Items
	default:
		return nil, problem.New(contract.CodeUnsupportedMediaType, "Send the batch as application/json ({\"items\": [...]}) or text/csv.")
	}
	switch {
	case len(rows) == 0:
		return nil, problem.InvalidField("items", "must have at least one row")
	case len(rows) > contract.MaxBatchItems:
		return nil, problem.InvalidField("items", fmt.Sprintf("must have at most %d rows; this batch has %d", contract.MaxBatchItems, len(rows)))
	}
	return rows, nil
}

// decodeBatchBody decodes `{items:[...]}`: exactly that key, an array of objects. The rows
// themselves are checked one by one afterwards.
func decodeBatchBody(data []byte, b *batchBody) *problem.Problem {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return problem.InvalidField(problem.BodyField, `must be a JSON object {"items": [...]}`)
	}
	for k := range top {
		if k != "items" {
			return problem.InvalidField(k, "unknown field")
		}
	}
	raw, ok := top["items"]
	if !ok || string(raw) == "null" {
		return problem.InvalidField("items", "is required")
	}
	if err := json.Unmarshal(raw, &b.Items); err != nil {
		return problem.InvalidField("items", "must be an array of invitation objects")
	}
	for i, it := range b.Items {
		if t := strings.TrimSpace(string(it)); !strings.HasPrefix(t, "{") {
			return problem.InvalidField(fmt.Sprintf("items[%d]", i), "must be a JSON object")
		}
	}
	return nil
}
