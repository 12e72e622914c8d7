-- One read, defined once in the database and run as the caller.
--
-- public.calls_batch_get() is the whole read of a request: the caller's agency, the batch with its
-- counters, and one page of its contacts, as one JSON document from one snapshot. It is security
-- invoker: both ways the function reads (PostgREST with the user's own token, and the direct
-- store acting as `authenticated` with the token's claims) run it under row-level security, so a
-- mistake in its agency conditions still returns nothing of another agency.
--
-- For the policies to cost almost nothing, the contacts and the counters ledger carry their
-- batch's agency_id (kept equal to it by the database), and each policy compares that column with
-- the caller's agency: one comparison per row, on a column the page indexes hold, instead of a
-- lookup of the row's batch.

-- The function's own database role: owns nothing, bypasses nothing, holds no privilege of its own
-- (noinherit), and may only act as `authenticated`, as PostgREST's `authenticator` does. Created
-- without a password; README, "Deployment", says how to give it one.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'calls_batch_get') then
    create role calls_batch_get nologin noinherit;
  end if;
end
$$;
grant authenticated to calls_batch_get;

-- Upgrading a live database: writers of contacts wait until this migration commits (the backfill
-- and the new triggers must see the same rows).
lock table public.call_batches, public.campaign_contacts, public.call_batch_counters
  in share row exclusive mode;

-- The agency of a contact is its batch's: a composite foreign key makes any other value
-- impossible, and follows a batch that moves to another agency (on update cascade).
alter table public.call_batches
  add constraint call_batches_id_agency_id_key unique (id, agency_id);

alter table public.campaign_contacts add column agency_id uuid;
-- The backfill moves no contact between batches or statuses: the ledger has nothing to book.
alter table public.campaign_contacts disable trigger call_batch_counters_update;
update public.campaign_contacts cc
set agency_id = b.agency_id
from public.call_batches b
where b.id = cc.batch_id;
alter table public.campaign_contacts enable trigger call_batch_counters_update;
alter table public.campaign_contacts alter column agency_id set not null;
alter table public.campaign_contacts
  add constraint campaign_contacts_batch_agency_fkey foreign key (batch_id, agency_id)
  references public.call_batches (id, agency_id) on update cascade on delete cascade;
alter table public.campaign_contacts drop constraint campaign_contacts_batch_id_fkey;

-- Writers name only the batch; the agency is filled in from it (whatever they wrote).
create function public.campaign_contacts_agency() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  select b.agency_id into new.agency_id from public.call_batches b where b.id = new.batch_id;
  return new;
end
$$;
revoke all on function public.campaign_contacts_agency() from public;
create trigger campaign_contacts_agency
  before insert or update of batch_id on public.campaign_contacts
  for each row execute function public.campaign_contacts_agency();

-- The page indexes again, holding the agency too: a deep offset stays an index-only skip under
-- the contacts policy.
drop index public.campaign_contacts_batch_page_idx;
create index campaign_contacts_batch_page_idx
  on public.campaign_contacts (batch_id, created_at, id) include (agency_id);
drop index public.campaign_contacts_batch_status_page_idx;
create index campaign_contacts_batch_status_page_idx
  on public.campaign_contacts (batch_id, status, created_at, id) include (agency_id);

-- The agency follows from the batch: without this the planner takes the policy's agency test for
-- a filter that drops most of a batch's rows, and prefers reading the whole batch and sorting it
-- to the page's index range.
create statistics campaign_contacts_batch_agency (dependencies)
  on batch_id, agency_id from public.campaign_contacts;
analyze public.campaign_contacts;

-- The ledger's rows carry the agency of the contacts they count. A batch that moves to another
-- agency moves its contacts (the cascade above), whose update books their counts out of the old
-- agency and into the new one.
alter table public.call_batch_counters add column agency_id uuid;
update public.call_batch_counters k
set agency_id = b.agency_id
from public.call_batches b
where b.id = k.batch_id;
-- Rows of batches that no longer exist count nothing anyone can read.
delete from public.call_batch_counters where agency_id is null;
alter table public.call_batch_counters alter column agency_id set not null;

create or replace function public.call_batch_counters_fold(p_batch_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  with gone as (
    delete from public.call_batch_counters k
    where k.id in (
      select f.id from public.call_batch_counters f
      where f.batch_id = p_batch_id
      for update skip locked
    )
    returning k.agency_id, k.status, k.delta
  )
  insert into public.call_batch_counters (batch_id, agency_id, status, delta)
  select p_batch_id, g.agency_id, g.status, sum(g.delta)
  from gone g
  group by g.agency_id, g.status
  having sum(g.delta) <> 0;
exception
  when serialization_failure then
    null;
end
$$;

create or replace function public.call_batch_counters_record() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.call_batch_counters (batch_id, agency_id, status, delta)
    select n.batch_id, n.agency_id, n.status, count(*)
    from new_rows n group by n.batch_id, n.agency_id, n.status;
    if random() * public.call_batch_counters_fold_every() < 1 then
      perform public.call_batch_counters_fold(t.batch_id)
      from (select distinct n.batch_id from new_rows n) t;
    end if;
  elsif tg_op = 'DELETE' then
    insert into public.call_batch_counters (batch_id, agency_id, status, delta)
    select o.batch_id, o.agency_id, o.status, -count(*) from old_rows o
    where exists (select 1 from public.call_batches b where b.id = o.batch_id)
    group by o.batch_id, o.agency_id, o.status;
  else
    insert into public.call_batch_counters (batch_id, agency_id, status, delta)
    select m.batch_id, m.agency_id, m.status, sum(m.delta)
    from (
      select n.batch_id, n.agency_id, n.status, 1 as delta from new_rows n
      union all
      select o.batch_id, o.agency_id, o.status, -1 as delta from old_rows o
    ) m
    group by m.batch_id, m.agency_id, m.status
    having sum(m.delta) <> 0;
    if random() * public.call_batch_counters_fold_every() < 1 then
      perform public.call_batch_counters_fold(t.batch_id)
      from (select distinct n.batch_id from new_rows n) t;
    end if;
  end if;
  return null;
end
$$;

-- The policies compare a row's own agency_id with the caller's agency, computed once per query.
drop policy campaign_contacts_read_own on public.campaign_contacts;
create policy campaign_contacts_read_own on public.campaign_contacts
  for select to authenticated using (agency_id = (select public.request_agency_id()));
drop policy call_batch_counters_read_own on public.call_batch_counters;
create policy call_batch_counters_read_own on public.call_batch_counters
  for select to authenticated using (agency_id = (select public.request_agency_id()));

-- The read. Parameters as the API names them; a page is contact_offset rows into the batch's
-- contacts (in the order created_at, id) or, with after_created_at and after_id (a cursor's
-- position), the contacts after that one. It returns contact_limit + 1 contacts: the extra one
-- says whether another page follows.
--
-- plpgsql with plan_cache_mode = force_custom_plan: every call is planned with its own values,
-- so the conditions on a parameter that is null (no status filter, no cursor) fold away and each
-- shape of request gets the index range of its own (a SQL function's body would be planned with
-- the parameters unknown, before PostgreSQL 18).
create function public.calls_batch_get(
  batch_id uuid,
  contact_status text default null,
  contact_limit integer default 50,
  contact_offset integer default 0,
  after_created_at timestamptz default null,
  after_id uuid default null
) returns json
language plpgsql
stable
security invoker
set search_path = ''
set plan_cache_mode = force_custom_plan
-- A poll reads a few rows by index; launching workers would cost more than it saves.
set max_parallel_workers_per_gather = 0
as $$
begin
  if calls_batch_get.contact_limit is null or calls_batch_get.contact_limit not between 1 and 200
  then
    raise exception 'contact_limit must be between 1 and 200' using errcode = '22023';
  end if;
  if calls_batch_get.contact_offset is null or calls_batch_get.contact_offset < 0 then
    raise exception 'contact_offset must be 0 or more' using errcode = '22023';
  end if;
  if (calls_batch_get.after_created_at is null) <> (calls_batch_get.after_id is null)
    or (calls_batch_get.after_id is not null and calls_batch_get.contact_offset <> 0)
  then
    raise exception 'a position needs after_created_at and after_id, and no contact_offset'
      using errcode = '22023';
  end if;
  return (
    with caller as (
      select u.agency_id from public.users u where u.id = public.request_user_id()
    ),
    batch as (
      select v.id, v.agency_id, v.campaign_id, v.campaign_name, v.agent_mapping_id,
        v.agent_name, v.from_number, v.status, v.total_contacts, v.queued, v.in_progress,
        v.completed, v.failed, v.skipped, v.progress_percentage, v.remaining_count,
        v.calls_per_minute, v.max_concurrent, v.scheduled_for, v.created_at, v.started_at
      from public.v_call_batch_summary v
      where v.id = calls_batch_get.batch_id and v.agency_id = (select c.agency_id from caller c)
    ),
    -- Where a page that skips contact_offset rows starts, found on the index alone: a deep
    -- offset skips index entries, not table rows. Nothing is read unless the batch is the
    -- caller's (a one-time filter). A first page and a cursor's need no such start.
    start as (
      select cc.created_at, cc.id
      from public.campaign_contacts cc
      where cc.batch_id = calls_batch_get.batch_id
        and exists (select 1 from batch)
        and (calls_batch_get.contact_status is null
             or cc.status = calls_batch_get.contact_status)
      order by cc.created_at, cc.id
      offset calls_batch_get.contact_offset
      limit 1
    )
    select json_build_object(
      'agency_id', (select c.agency_id from caller c),
      'batch', (select row_to_json(b) from batch b),
      'contacts', (
        select coalesce(json_agg(p order by p.created_at, p.id), '[]'::json)
        from (
          select cc.id, cc.phone_number, cc.first_name, cc.last_name, cc.email, cc.company,
            cc.title, cc.status, cc.call_id, cc.attempts, cc.max_attempts, cc.outcome,
            cc.duration_seconds, cc.outcome_notes, cc.last_attempt_at, cc.completed_at,
            cc.custom_data, cc.do_not_call, cc.timezone, cc.created_at
          from public.campaign_contacts cc
          where cc.batch_id = calls_batch_get.batch_id
            and exists (select 1 from batch b)
            and (calls_batch_get.contact_status is null
                 or cc.status = calls_batch_get.contact_status)
            and (calls_batch_get.after_id is null
                 or (cc.created_at, cc.id)
                    > (calls_batch_get.after_created_at, calls_batch_get.after_id))
            and (calls_batch_get.contact_offset = 0
                 or (cc.created_at, cc.id) >= ((select s.created_at from start s),
                                               (select s.id from start s)))
          order by cc.created_at, cc.id
          limit calls_batch_get.contact_limit + 1
        ) p
      )
    )
  );
end
$$;
revoke all on function public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)
  from public;
revoke all on function public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)
  from anon;
grant execute on function public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)
  to authenticated;
