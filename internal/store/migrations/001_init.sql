-- The read model the portal lists from, and the system of record for users, accounts,
-- memberships and seats. Invariants live in constraints, not in code: a seat count can never be
-- exceeded and an email can have one pending invitation per account, whatever races.

create table api_tokens (
    id          uuid primary key,
    name        text not null,
    token_hash  bytea not null unique,          -- sha256 of the token; the token is never stored
    account_id  uuid,                            -- null: the portal itself, any account
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

create table accounts (
    id          uuid primary key,
    name        text not null,
    created_at  timestamptz not null default now()
);

create table subscriptions (
    id             uuid primary key,
    account_id     uuid not null references accounts(id),
    application    text not null,
    name           text not null,
    seats          integer not null check (seats >= 0),
    seats_used     integer not null default 0 check (seats_used >= 0),
    seats_reserved integer not null default 0 check (seats_reserved >= 0),
    roles          text[] not null,
    created_at     timestamptz not null default now(),
    constraint seats_not_oversubscribed check (seats_used + seats_reserved <= seats)
);
create index subscriptions_account on subscriptions(account_id);

create table groups (
    id          uuid primary key,
    account_id  uuid not null references accounts(id),
    name        text not null,
    created_at  timestamptz not null default now(),
    unique (account_id, name)
);

create table users (
    id             uuid primary key,
    email          text not null,
    first_name     text not null,
    last_name      text not null,
    phone          text not null default '',
    password_hash  text,
    created_at     timestamptz not null default now()
);
create unique index users_email on users (lower(email));

create table memberships (
    account_id  uuid not null references accounts(id),
    user_id     uuid not null references users(id),
    role        text not null,
    group_ids   uuid[] not null default '{}',
    state       text not null default 'active' check (state in ('active', 'blocked')),
    invitation_id uuid,
    created_at  timestamptz not null default now(),
    primary key (account_id, user_id)
);

create table seats (
    subscription_id uuid not null references subscriptions(id),
    user_id         uuid not null references users(id),
    invitation_id   uuid,
    assigned_at     timestamptz not null default now(),
    primary key (subscription_id, user_id)
);

create table invitations (
    id               uuid primary key,
    account_id       uuid not null references accounts(id),
    subscription_id  uuid not null references subscriptions(id),
    application      text not null,
    role             text not null,
    group_ids        uuid[] not null default '{}',
    user_id          uuid references users(id),   -- the invited existing user, or the provisioned one
    email            text not null,
    first_name       text not null,
    last_name        text not null,
    phone            text not null default '',
    inviter_name     text not null default '',
    inviter_email    text not null default '',
    status           text not null check (status in ('pending', 'accepted', 'expired', 'revoked', 'declined')),
    generation       integer not null default 1,
    sends            integer not null default 0,   -- invite emails sent or being sent, all generations
    expires_at       timestamptz not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()   -- a pending invitation holds one reserved seat
);
create unique index invitations_one_pending on invitations (account_id, lower(email)) where status = 'pending';
create index invitations_account_created on invitations (account_id, created_at desc, id desc);

create table invitation_events (
    id             bigserial primary key,
    invitation_id  uuid not null references invitations(id),
    at             timestamptz not null default now(),
    type           text not null,
    detail         text not null default '',
    dedupe_key     text not null unique             -- activities retry; an event is written once
);
create index invitation_events_invitation on invitation_events (invitation_id, id);

-- Every email the service sends, keyed like Resend's Idempotency-Key, so a retried activity
-- never sends or records twice. With no RESEND_API_KEY this table is the dev mailbox.
create table emails (
    idempotency_key text primary key,
    invitation_id   uuid references invitations(id),
    kind            text not null,
    recipient       text not null,
    subject         text not null,
    html            text not null,
    text            text not null,
    status          text not null check (status in ('queued', 'sent', 'failed')),
    error           text not null default '',
    provider_id     text not null default '',
    created_at      timestamptz not null default now(),
    sent_at         timestamptz
);
create index emails_invitation on emails (invitation_id, created_at desc);

create table idempotency_keys (
    account_id     uuid not null,
    key            text not null,
    request_hash   bytea not null,
    invitation_id  uuid not null,
    created_at     timestamptz not null default now(),
    primary key (account_id, key)
);
