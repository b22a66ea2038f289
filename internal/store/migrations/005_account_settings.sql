-- An account's settings (issue 14): which email domains it may invite (each with its
-- subdomains; empty: any) and which origins an invitation's redirect_url may point to (empty:
-- none). Entries are stored in the canonical ASCII form internal/accountpolicy gives them. An
-- account without a row has the defaults: both lists empty.
create table account_settings (
    account_id                uuid primary key references accounts(id),
    allowed_email_domains     text[] not null default '{}',
    allowed_redirect_origins  text[] not null default '{}',
    updated_at                timestamptz not null default now()
);
