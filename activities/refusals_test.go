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
	lost := errors.New("connection reset by peer")
	if got := businessError(lost); got != lost {
		t.Errorf("a lost connection became %v; it must stay retryable as it is", got)
	}
}
