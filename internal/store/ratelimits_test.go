package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A bucket of 5 tokens refilled one every 12 s (5 a minute): 20 concurrent takes spend exactly
// 5, the rest are told how long to wait; a token comes back 12 s later, and only one; TokenWait
// looks without spending.
func TestTokenBucketSharedAcrossCallers(t *testing.T) {
	s := catalogTestStore(t)
	ctx := t.Context()
	key := "test:" + uuid.NewString()
	now := time.Now().UTC().Truncate(time.Microsecond)
	interval := 12 * time.Second

	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			wait, err := s.TakeToken(ctx, key, now, interval, 5)
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				passed.Add(1)
			} else if wait <= 0 || wait > interval {
				t.Errorf("refused with wait %s, want up to %s", wait, interval)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 5 {
		t.Fatalf("%d of 20 concurrent takes passed, want 5", n)
	}
	if wait, err := s.TokenWait(ctx, key, now, interval, 5); err != nil || wait != interval {
		t.Fatalf("TokenWait = %s, %v; want %s", wait, err, interval)
	}
	later := now.Add(interval)
	if wait, _ := s.TakeToken(ctx, key, later, interval, 5); wait != 0 {
		t.Fatalf("a token did not come back after %s: wait %s", interval, wait)
	}
	if wait, _ := s.TakeToken(ctx, key, later, interval, 5); wait != interval {
		t.Fatalf("a second token came back: wait %s", wait)
	}
	if wait, _ := s.TokenWait(ctx, "test:"+uuid.NewString(), now, interval, 5); wait != 0 {
		t.Fatalf("an unknown bucket is not full: wait %s", wait)
	}
}
