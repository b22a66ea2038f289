// Package ratelimit holds the token buckets of the abuse rate limits (docs/security.md): one
// bucket per key (a client address, an invite link, an account). The API keeps them in
// Postgres (NewShared over store.TakeToken), so every replica enforces one limit together;
// New keeps them in the process, in a table that stays bounded, for a single process.
package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// maxBuckets bounds each limiter's table. Buckets idle long enough to be full again are
// forgotten first; past the bound (a flood from very many addresses) the table is cleared,
// which errs on letting requests through rather than on refusing everyone.
const maxBuckets = 100_000

// Backend keeps buckets where every replica sees them (the store): TakeToken spends one token
// of a bucket of burst tokens refilled one every interval, TokenWait only looks.
type Backend interface {
	TakeToken(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Duration, error)
	TokenWait(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Duration, error)
}

// Set is one token bucket per key. A nil Set is a disabled limit: it allows everything.
type Set struct {
	limit rate.Limit
	burst int
	// shared, when set, holds the buckets (under name + ":" + key) instead of the process.
	shared   Backend
	name     string
	interval time.Duration
	log      *slog.Logger
	// idle is how long an untouched bucket takes to fill up again; it can then be dropped,
	// since a new bucket is the same thing.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns the set of a configured limit, or nil for a disabled one.
func New(r config.RateLimit) *Set {
	if !r.Enabled() {
		return nil
	}
	return &Set{
		limit:   rate.Limit(float64(r.Count) / r.Per.Seconds()),
		burst:   r.Count,
		idle:    r.Per,
		buckets: map[string]*bucket{},
	}
}

// NewShared returns the set of a configured limit with its buckets in b, named name (the key
// space of this limit), or nil for a disabled one. When b fails, the request goes on and the
// failure is logged: a limit must not take the service down with its database.
func NewShared(r config.RateLimit, name string, b Backend, log *slog.Logger) *Set {
	l := New(r)
	if l == nil || b == nil {
		return l
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.shared, l.name, l.log, l.interval = b, name, log, r.Per/time.Duration(r.Count)
	return l
}

// sharedTimeout bounds a shared bucket's round trip.
const sharedTimeout = 2 * time.Second

// Take spends one token of key's bucket; it returns 0 when the request may go on, else how
// long until it would be allowed (nothing is spent then).
func (l *Set) Take(ctx context.Context, key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	if l.shared != nil {
		return l.sharedCall(ctx, l.shared.TakeToken, key, now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) || len(l.buckets) >= maxBuckets {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return l.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// Blocked reports how long until key's bucket has a token again, without spending one: 0 when a
// Take would pass. For limits that spend only on failure (sign-ins), checked before the attempt.
func (l *Set) Blocked(ctx context.Context, key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	if l.shared != nil {
		return l.sharedCall(ctx, l.shared.TokenWait, key, now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// sharedCall asks the shared buckets, letting the request go on if they cannot answer.
func (l *Set) sharedCall(ctx context.Context, call func(context.Context, string, time.Time, time.Duration, int) (time.Duration, error), key string, now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
	defer cancel()
	wait, err := call(ctx, l.name+":"+key, now, l.interval, l.burst)
	if err != nil {
		l.log.Warn("rate limit not checked; the request goes on", "limit", l.name, "error", err)
		return 0
	}
	return wait
}

func (l *Set) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
	l.nextSweep = now.Add(l.idle)
}

// Size is how many buckets the table holds.
func (l *Set) Size() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Refusal is the 429 of a limit; what says whose budget is spent ("from this address").
func Refusal(wait time.Duration, what string) *problem.Problem {
	p := problem.New(contract.CodeRateLimited, "Too many requests %s; retry in %d seconds.", what, problem.RetryAfterSeconds(wait))
	p.RetryAfter = wait
	return p
}
