package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// op is one timed operation: caller numbers the caller running it (0 to callers-1), i the
// operations of a run from 0.
type op func(ctx context.Context, caller, i int) error

// load runs n operations with callers concurrent callers, each caller taking the next operation
// as soon as its last one answered (a closed loop, as a portal's import job or a crowd of
// invitees would). It returns the latencies of every operation and the wall time from the
// first start to the last answer. The first failure stops the run and is returned with the
// number of the operation that failed.
//
// With more non-nil, the callers go on past n until more is closed (a profile being taken),
// so the run covers it; op must then accept any i. onFail, if not nil, hears the first failure
// before the other callers' requests are cancelled, while the stack still shows what held them.
func load(ctx context.Context, callers, n int, fn op, more <-chan struct{}, onFail func()) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, n)
		firstErr  error
	)
	keepGoing := func(i int) bool {
		if i < n {
			return true
		}
		if more == nil {
			return false
		}
		select {
		case <-more:
			return false
		default:
			return true
		}
	}
	var wg sync.WaitGroup
	began := time.Now()
	for caller := range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if !keepGoing(i) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := fn(ctx, caller, i)
				took := time.Since(t0)
				if err != nil {
					mu.Lock()
					first := firstErr == nil
					if first {
						firstErr = fmt.Errorf("operation %d: %w", i, err)
					}
					mu.Unlock()
					if first {
						if onFail != nil && ctx.Err() == nil {
							onFail()
						}
						cancel()
					}
					return
				}
				mu.Lock()
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return latencies, time.Since(began), firstErr
}
