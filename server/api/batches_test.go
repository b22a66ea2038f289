package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// batchOf is a JSON batch of the given rows.
func batchOf(rows ...string) string { return `{"items":[` + strings.Join(rows, ",") + `]}` }

// waitBatch polls a batch until it completes.
func (h *harness) waitBatch(id string, timeout time.Duration) batchView {
	h.t.Helper()
	var b batchView
	eventually(h.t, timeout, "batch "+id+" to complete", func() bool {
		b = decodeJSON[batchView](h.t, h.api("GET", h.accountPath("/invitation-batches/"+id), ""), 200)
		return b.Status == "completed"
	})
	return b
}

func TestBatchJudgesEachRowAsASingleCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withSeats(2))
	a, b, c := uniqueEmail("bulk-a"), uniqueEmail("bulk-b"), uniqueEmail("bulk-c")
	body := batchOf(
		h.inviteBody(a, ""),
		h.inviteBody(a, ""), // the same person again: duplicate_invitation, as a second single create
		h.inviteBody("not-an-email", ""),
		h.inviteBody(b, `,"role":"owner"`),
		h.inviteBody(b, ""),
		h.inviteBody(c, ""), // the subscription's two seats are taken by then
	)
	w := h.api("POST", h.accountPath("/invitation-batches"), body)
	started := decodeJSON[batchView](t, w, 202)
	if started.Status != "running" || started.Total != 6 || len(started.Items) != 0 || w.Header().Get("Location") == "" {
		t.Fatalf("202 answered %+v (Location %q)", started, w.Header().Get("Location"))
	}
	done := h.waitBatch(started.ID.String(), time.Minute)
	if done.Succeeded != 2 || done.Failed != 4 || len(done.Items) != 6 {
		t.Fatalf("batch = %+v", done)
	}
	want := []struct {
		status string
		code   contract.Code
	}{{"created", ""}, {"failed", contract.CodeDuplicateInvitation}, {"failed", contract.CodeValidation},
		{"failed", contract.CodeValidation}, {"created", ""}, {"failed", contract.CodeSeatsExhausted}}
	for i, it := range done.Items {
		if it.Index != i || it.Status != want[i].status {
			t.Errorf("row %d = %+v, want %s", i, it, want[i].status)
			continue
		}
		if it.Status == "created" {
			if it.InvitationID == nil || it.Error != nil {
				t.Errorf("row %d created without its invitation: %+v", i, it)
				continue
			}
			inv := h.row(*it.InvitationID)
			if inv.Status != contract.StatusPending {
				t.Errorf("row %d's invitation is %s", i, inv.Status)
			}
			continue
		}
		if it.Error == nil || it.Error.Code != want[i].code || it.Error.Detail == "" || it.InvitationID != nil {
			t.Errorf("row %d = %+v, want code %s", i, it, want[i].code)
		}
	}
	if f := done.Items[2].Error.Errors; len(f) != 1 || f[0].Field != "email" {
		t.Errorf("the bad row names its field: %+v", f)
	}
	if f := done.Items[3].Error.Errors; len(f) != 1 || f[0].Field != "role" {
		t.Errorf("the bad role is named: %+v", f)
	}
	if sub := h.subscription(); sub.SeatsReserved == nil || *sub.SeatsReserved != 2 {
		t.Errorf("seats reserved = %v, want 2", sub.SeatsReserved)
	}
}

func TestBatchFromCSV(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := uniqueEmail("csv-a"), uniqueEmail("csv-b")
	csv := "\xef\xbb\xbfemail,first_name,last_name,role,subscription_id,group_ids\n" +
		fmt.Sprintf("%s,Ann,Lee,editor,%s,%s\n", a, h.sub.ID, h.group.ID) +
		fmt.Sprintf("%s,\"Bo, Jr.\",Ray,admin,%s,\n", b, h.sub.ID)
	w := h.do("POST", h.accountPath("/invitation-batches"), csv, "Authorization", "Bearer "+portalToken, "Content-Type", "text/csv; charset=utf-8")
	started := decodeJSON[batchView](t, w, 202)
	done := h.waitBatch(started.ID.String(), time.Minute)
	if done.Succeeded != 2 || done.Failed != 0 {
		t.Fatalf("batch = %+v", done)
	}
	inv := h.row(*done.Items[0].InvitationID)
	if inv.Email != a || len(inv.GroupIDs) != 1 || inv.GroupIDs[0] != h.group.ID || inv.Role != "editor" {
		t.Errorf("row 0 = %+v", inv.NewInvitation)
	}
	if inv := h.row(*done.Items[1].InvitationID); inv.FirstName != "Bo, Jr." || inv.Role != "admin" || len(inv.GroupIDs) != 0 {
		t.Errorf("row 1 = %+v", inv.NewInvitation)
	}

	for name, body := range map[string]string{
		"unknown column": "email,shoe_size\nx@acme.test,44\n",
		"ragged row":     "email,role\nx@acme.test\n",
		"no rows":        "",
	} {
		p := decodeProblem(t, h.do("POST", h.accountPath("/invitation-batches"), body, "Authorization", "Bearer "+portalToken, "Content-Type", "text/csv"), 422, contract.CodeValidation)
		if len(p.Errors) == 0 {
			t.Errorf("%s: no field named: %+v", name, p)
		}
	}
}

func TestBatchIdempotencyAndLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := batchOf(h.inviteBody(uniqueEmail("idem"), ""))
	key := "batch-" + randomHex(6)
	first := decodeJSON[batchView](t, h.api("POST", h.accountPath("/invitation-batches"), body, "Idempotency-Key", key), 202)
	w := h.api("POST", h.accountPath("/invitation-batches"), body, "Idempotency-Key", key)
	again := decodeJSON[batchView](t, w, 202)
	if again.ID != first.ID || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay answered %+v (replayed %q), want batch %s", again, w.Header().Get("Idempotent-Replayed"), first.ID)
	}
	decodeProblem(t, h.api("POST", h.accountPath("/invitation-batches"), batchOf(h.inviteBody(uniqueEmail("other"), "")), "Idempotency-Key", key), 422, contract.CodeIdempotencyConflict)
	done := h.waitBatch(first.ID.String(), time.Minute)
	if done.Succeeded != 1 {
		t.Fatalf("batch = %+v", done)
	}

	rows := make([]string, 1001)
	for i := range rows {
		rows[i] = `{}`
	}
	for name, tc := range map[string]struct {
		body  string
		field string
	}{
		"empty":     {`{"items":[]}`, "items"},
		"too many":  {batchOf(rows...), "items"},
		"not rows":  {`{"items":[1]}`, "items[0]"},
		"extra key": {`{"items":[{}],"x":1}`, "x"},
		"missing":   {`{}`, "items"},
	} {
		p := decodeProblem(t, h.api("POST", h.accountPath("/invitation-batches"), tc.body), 422, contract.CodeValidation)
		if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: errors %+v, want field %s", name, p.Errors, tc.field)
		}
	}
	decodeProblem(t, h.do("POST", h.accountPath("/invitation-batches"), "x", "Authorization", "Bearer "+portalToken, "Content-Type", "text/plain"), 415, contract.CodeUnsupportedMediaType)
	decodeProblem(t, h.api("GET", h.accountPath("/invitation-batches/"+first.ID.String()[:8]), ""), 404, contract.CodeNotFound)

	// Another account's batch is not found.
	other := newHarness(t)
	decodeProblem(t, other.api("GET", other.accountPath("/invitation-batches/"+first.ID.String()), ""), 404, contract.CodeNotFound)
}
