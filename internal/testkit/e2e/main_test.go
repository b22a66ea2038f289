package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	// Named stacktest here: the package's variable stack is the running stack.
	stacktest "github.com/onboarding-service/onboarding/internal/testkit/stack"
)

// Short durations of stack.Short (see internal/testkit/stack): expiry tests take seconds.
const (
	shortTTL      = stacktest.ShortTTL
	shortReminder = stacktest.ShortReminder
	shortResend   = stacktest.ShortResend
)

// stack is the running service: the real API router (stack.API with the contract's durations,
// stack.Short with second-scale ones) and a real worker, over a Temporal dev server and a
// Postgres database of this package's own; Resend's API is the only stand-in.
var stack *stacktest.Stack

func TestMain(m *testing.M) {
	s, err := stacktest.Start(context.Background(), stacktest.Options{Name: "e2e"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	stack = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

func randomHex(n int) string { return stacktest.RandomHex(n) }

// unique returns an email address no other test uses.
func unique(local string) string {
	return strings.ToLower(local) + "+" + randomHex(4) + "@example.test"
}
