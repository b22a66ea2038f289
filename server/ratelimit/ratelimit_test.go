package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/config"
)

func TestLimiterTableStaysBounded(t *testing.T) {
	t.Parallel()
	l := New(config.RateLimit{Count: 1, Per: time.Second})
	now := time.Now()
	for i := range 1000 {
		l.Take(t.Context(), "k"+strconv.Itoa(i), now)
	}
	if l.Size() != 1000 {
		t.Fatalf("size %d", l.Size())
	}
	// Once idle long enough to be full again, buckets are forgotten at the next sweep.
	l.Take(t.Context(), "fresh", now.Add(2*time.Second))
	if l.Size() != 1 {
		t.Fatalf("size %d after the sweep, want 1", l.Size())
	}
	var off *Set
	if off.Take(t.Context(), "any", now) != 0 || New(config.RateLimit{}) != nil {
		t.Fatal("a disabled limit refuses")
	}
}
