-- A user's password-reset link: the generation its token names (a newer request raises it and so
-- supersedes the older link, across workflow runs), when it expires and when it was used, with
-- the delivery of its email. The token is never stored: it is signed from the user id and the
-- generation, at send time.
create table password_resets (
    user_id       uuid primary key references users(id),
    generation    integer not null check (generation > 0),
    requested_at  timestamptz not null default now(),
    expires_at    timestamptz not null,
    used_at       timestamptz,
    email_status  text not null default 'queued' check (email_status in ('queued', 'sent', 'failed', 'skipped')),
    email_error   text not null default '',
    provider_id   text not null default ''
);
