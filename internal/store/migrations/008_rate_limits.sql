-- The abuse rate limits' buckets, shared by every API replica (server/ratelimit): one row a
-- bucket, holding its theoretical arrival time (GCRA): the bucket is full again once tat has
-- passed, and a row whose tat is past is the same as no row, so the maintenance pass deletes
-- those. Unlogged: after a crash the buckets start full, which is what a restart did before.
create unlogged table rate_limits (
    key  text primary key,
    tat  timestamptz not null
);
