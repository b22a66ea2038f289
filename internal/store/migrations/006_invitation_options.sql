-- Per-invitation options (CONTRACT.md "Invitation options", "Editing a pending invitation"):
-- the validity an invitation was created with (also that of its renewals), whether the first
-- email is held back, the inviter's note, the portal's metadata (copied onto the membership on
-- acceptance) and where the hosted page sends the invitee after accepting. Rows from before
-- have no expires_in: they follow INVITATION_TTL.
alter table invitations
    add column expires_in   integer check (expires_in > 0),
    add column send_email   boolean not null default true,
    add column message      text not null default '',
    add column metadata     jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    add column redirect_url text not null default '',
    -- edits counts the PATCHes of the invitation: each writes its own `updated` event.
    add column edits        integer not null default 0;

alter table memberships
    add column metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object');
