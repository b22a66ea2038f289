package activities

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// A business refusal is the activity's answer: typed with its API code, never retried, and
// benign, so the SDK neither logs it at ERROR nor counts it as a failure. A lost connection
// stays an ordinary, retried error.
func TestBusinessRefusalsAreBenign(t *testing.T) {
	for err, code := range map[error]contract.Code{
		store.ErrSeatsExhausted: contract.CodeSeatsExhausted,
		store.ErrAlreadyMember:  contract.CodeAlreadyMember,
		store.ErrSuperseded:     contract.CodeInvitationExpired,
		store.ErrInvalidState:   contract.CodeInvalidState,
		store.ErrNotFound:       contract.CodeNotFound,
		&store.DuplicateInvitationError{ExistingID: uuid.Nil}: contract.CodeDuplicateInvitation,
		fmt.Errorf("wrapped: %w", store.ErrSeatsExhausted):    contract.CodeSeatsExhausted,
	} {
		var appErr *temporal.ApplicationError
		if !errors.As(businessError(err), &appErr) {
			t.Fatalf("%v: not an ApplicationError", err)
		}
		if appErr.Type() != string(code) || !appErr.NonRetryable() || appErr.Category() != temporal.ApplicationErrorCategoryBenign {
			t.Errorf("%v: type %s, non-retryable %v, category %v; want %s, non-retryable, benign",
				err, appErr.Type(), appErr.NonRetryable(), appErr.Category(), code)
		}
	}
	// An invitation Postgres holds as closed is refused as invalid_state with its outcome, so a
	// run whose state is behind can learn it.
	user := uuid.New()
	var appErr *temporal.ApplicationError
	var d contract.ClosedDetails
	closed := fmt.Errorf("close: %w", &store.ClosedError{Status: contract.StatusAccepted, UserID: &user})
	if !errors.As(businessError(closed), &appErr) || appErr.Type() != string(contract.CodeInvalidState) ||
		!appErr.HasDetails() || appErr.Details(&d) != nil || d.Status != contract.StatusAccepted || d.UserID == nil || *d.UserID != user {
		t.Errorf("%v became %v with details %+v; want invalid_state naming accepted by %s", closed, appErr, d, user)
	}
	lost := errors.New("connection reset by peer")
	if got := businessError(lost); got != lost {
		t.Errorf("a lost connection became %v; it must stay retryable as it is", got)
	}
}
