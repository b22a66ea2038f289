-- The run of the invitation's workflow whose create recorded the row, and the creates that a run
-- gave up on. A create attempt stuck on a dead connection may commit after its run gave up and
-- undid it; the tombstone makes such a late commit refuse instead of leaving a pending row that
-- holds a seat with no workflow behind it.
alter table invitations add column create_run text;

create table abandoned_creates (
    invitation_id uuid not null,
    run_id        text not null,
    abandoned_at  timestamptz not null default now(),
    primary key (invitation_id, run_id)
);
