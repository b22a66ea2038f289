package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Token buckets in Postgres, for the rate limits every API replica must enforce together
// (server/ratelimit). Each is the generic cell rate algorithm: a bucket of burst tokens that
// refills one token every interval is a theoretical arrival time (tat) per key; a request at
// now spends a token when max(tat, now) + interval is no further than burst intervals ahead of
// now, and moves tat there. One statement decides and spends, so concurrent replicas never
// spend one token twice.

// TakeToken spends one token of key's bucket and returns 0, or, when the bucket is empty, how
// long until it has a token again (spending nothing).
func (s *Store) TakeToken(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Duration, error) {
	window := interval * time.Duration(burst)
	var tat time.Time
	err := s.Pool.QueryRow(ctx, `
		insert into rate_limits as r (key, tat) values ($1, $2::timestamptz + $3::interval)
		on conflict (key) do update set tat = greatest(r.tat, $2::timestamptz) + $3::interval
			where greatest(r.tat, $2::timestamptz) + $3::interval <= $2::timestamptz + $4::interval
		returning tat`, key, now, interval, window).Scan(&tat)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	return s.TokenWait(ctx, key, now, interval, burst)
}

// TokenWait returns how long until key's bucket has a token, without spending one: 0 when a
// TakeToken now would pass.
func (s *Store) TokenWait(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Duration, error) {
	var tat time.Time
	err := s.Pool.QueryRow(ctx, `select tat from rate_limits where key = $1`, key).Scan(&tat)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if wait := next.Sub(now) - interval*time.Duration(burst); wait > 0 {
		return wait, nil
	}
	return 0, nil
}
