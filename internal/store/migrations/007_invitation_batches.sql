-- Bulk invitations (CONTRACT.md "Bulk invitations"): a batch and its rows. The rows are stored
-- validated, in the canonical create form, each with the invitation id it creates under, fixed
-- when the batch is accepted: the batch workflow's retries and restarts create under the same
-- id, so a row is never created twice. A row that failed validation is stored failed at once.
create table invitation_batches (
    id               uuid primary key,
    account_id       uuid not null references accounts(id),
    idempotency_key  text,
    request_hash     bytea not null,
    full_reach       boolean not null,           -- the submitting token may name any user
    created_by       text not null default '',
    total            integer not null check (total between 1 and 1000),
    status           text not null default 'running' check (status in ('running', 'completed')),
    created_at       timestamptz not null default now(),
    completed_at     timestamptz
);
create unique index invitation_batches_key on invitation_batches (account_id, idempotency_key) where idempotency_key is not null;
create index invitation_batches_account on invitation_batches (account_id, created_at desc);

create table invitation_batch_items (
    batch_id       uuid not null references invitation_batches(id) on delete cascade,
    index          integer not null check (index >= 0),
    request        jsonb,                          -- null for a row that failed validation
    invitation_id  uuid not null,
    status         text not null check (status in ('pending', 'created', 'failed')),
    error_code     text not null default '',
    error_detail   text not null default '',
    error_fields   jsonb not null default '[]',
    finished_at    timestamptz,
    primary key (batch_id, index)
);
create index invitation_batch_items_pending on invitation_batch_items (batch_id, index) where status = 'pending';
