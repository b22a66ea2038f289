-- Events out (issue 13). Every transition already writes its row of invitation_events in the
-- transaction of the change; the row now also carries what the portal's feed and webhooks
-- show: a public id and type, the account, and a snapshot of the invitation as it was just
-- after the change (no link, no token: the link is derived from the id and generation, never
-- stored). Story-only rows (a welcome email sent, say) have no public type and stay out of the
-- feed.
alter table invitation_events
    add column account_id   uuid references accounts(id),
    add column public_id    text unique,
    add column public_type  text,
    add column data         jsonb,
    add column user_id      uuid,
    -- The feed's position, given by the sequencer once the row is committed (so a reader's
    -- cursor never passes a row that commits later); null until then.
    add column seq          bigint unique;

update invitation_events e set account_id = i.account_id from invitations i where i.id = e.invitation_id;

create index invitation_events_unsequenced on invitation_events (id) where seq is null and public_type is not null;
create index invitation_events_feed on invitation_events (account_id, seq) where seq is not null;

-- The sequencer's counter: one row, locked by the one transaction that numbers a batch.
create table event_sequence (
    singleton  boolean primary key default true check (singleton),
    last_seq   bigint not null default 0
);
insert into event_sequence default values;

-- An account's webhook endpoints. The signing secret is never stored: it is derived from
-- TOKEN_SECRET, the endpoint id and secret_version (internal/webhook). A rotation raises the
-- version and keeps the previous one signing until previous_until.
create table webhook_endpoints (
    id               uuid primary key,
    account_id       uuid not null references accounts(id),
    url              text not null,
    event_types      text[] not null default '{}',  -- empty: every type
    description      text not null default '',
    -- The Temporal task queue of the deployment that registered it, whose workers deliver to
    -- it (so deployments sharing a database, blue and green say, each deliver their own).
    task_queue       text not null default '',
    secret_version   integer not null default 1 check (secret_version > 0),
    previous_until   timestamptz,
    created_at       timestamptz not null default now(),
    deleted_at       timestamptz
);
create index webhook_endpoints_account on webhook_endpoints (account_id, created_at) where deleted_at is null;

-- One row per event and endpoint it is owed to, written by the sequencer in the transaction
-- that numbers the event: the outbox of delivery workflows to start (started_at null until
-- Temporal has the workflow, whose id is derived from both ids, so starting twice is harmless).
create table webhook_deliveries (
    endpoint_id   uuid not null references webhook_endpoints(id),
    event_id      bigint not null references invitation_events(id),
    created_at    timestamptz not null default now(),
    started_at    timestamptz,
    delivered_at  timestamptz,
    failed_at     timestamptz,
    primary key (endpoint_id, event_id)
);
create index webhook_deliveries_unstarted on webhook_deliveries (created_at) where started_at is null;

-- Every delivery attempt, as GET .../webhooks/{id}/deliveries shows them.
create table webhook_attempts (
    id               bigserial primary key,
    endpoint_id      uuid not null references webhook_endpoints(id),
    event_id         bigint not null references invitation_events(id),
    attempt          integer not null,
    status_code      integer,
    error            text not null default '',
    at               timestamptz not null default now(),
    next_attempt_at  timestamptz,
    unique (endpoint_id, event_id, attempt)
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, id desc);

-- Provider events (Resend's webhooks) already applied, by their svix-id: a replay is ignored.
create table provider_events (
    id           text primary key,
    type         text not null,
    received_at  timestamptz not null default now()
);

-- Delivery as the provider reports it after the send.
alter table emails drop constraint emails_status_check;
alter table emails add constraint emails_status_check
    check (status in ('queued', 'sent', 'failed', 'delivered', 'bounced', 'complained'));
create index emails_provider on emails (provider_id) where provider_id <> '';

-- Wakes the worker's sequencer (LISTEN invitation_events) when a transaction that wrote
-- events commits; Postgres folds a transaction's identical notifications into one. The
-- sequencer also looks every few seconds, so a missed notification only delays.
create function notify_invitation_events() returns trigger language plpgsql as $$
begin
    perform pg_notify('invitation_events', '');
    return null;
end $$;
create trigger invitation_events_notify after insert on invitation_events
    for each statement execute function notify_invitation_events();
