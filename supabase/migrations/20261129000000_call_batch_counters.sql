-- Per-batch contact counters kept by the database, so that a poll of a batch costs the same at
-- 1M contacts as at 1k: v_call_batch_summary reads them instead of counting the batch's contacts.
--
-- Layout: an append-only ledger of signed deltas, several rows per batch, summed at read time.
-- Every statement that changes campaign_contacts inserts one row per batch and status whose count
-- it changed (the net change); nothing ever updates a ledger row in place. A single counters row
-- per batch would make every writer of a running batch queue on that row until commit (and
-- deadlock when two transactions touch two batches in different orders); an insert waits for
-- nobody. To keep the sum cheap, now and then a writer folds a batch's rows into one per status,
-- taking only rows no one else holds (SKIP LOCKED), so folding never waits either.

create table public.call_batch_counters (
  id bigint generated always as identity primary key,
  -- No foreign key: its check would take a KEY SHARE lock on the batch for every write of a
  -- contact, a wait (and a deadlock) the contacts' writers do not have today. Rows of a deleted
  -- batch are removed by call_batch_counters_forget below.
  batch_id uuid not null,
  status text not null
    check (status in ('pending', 'queued', 'in_progress', 'completed', 'failed', 'skipped')),
  delta integer not null
);
create index call_batch_counters_batch_id_idx on public.call_batch_counters (batch_id);

comment on table public.call_batch_counters is
  'Signed changes of the number of a batch''s contacts in each status, summed per batch by '
  'v_call_batch_summary. Written only by the triggers on campaign_contacts and call_batches.';

-- One insert or update statement in this many (at random, so that no pattern of writes escapes
-- it) folds the ledger rows of the batches it wrote into one per status: a batch keeps a few
-- dozen rows. (Deletes only shrink batches; the next insert or update folds after them.)
create function public.call_batch_counters_fold_every() returns integer
language sql immutable
as $$ select 16 $$;

-- Folds the batch's unlocked ledger rows into one per status. Never waits: rows another
-- transaction is folding (or has just folded) are left for later.
create function public.call_batch_counters_fold(p_batch_id uuid) returns void
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
    returning k.status, k.delta
  )
  insert into public.call_batch_counters (batch_id, status, delta)
  select p_batch_id, g.status, sum(g.delta)
  from gone g
  group by g.status
  -- A status with no contacts left needs no row: no rows reads as zero.
  having sum(g.delta) <> 0;
exception
  -- Under REPEATABLE READ or SERIALIZABLE, a row folded by a transaction that committed after
  -- ours began cannot be locked; the fold is an optimisation, so the write goes on without it.
  when serialization_failure then
    null;
end
$$;
revoke all on function public.call_batch_counters_fold(uuid) from public;

-- Statement-level: a load of 100k contacts is one call and one ledger row per status. Each
-- operation has only its own transition tables (PL/pgSQL plans only the branch it runs), hence
-- three short statements rather than one over both tables: folding them into one through an
-- array and a helper function doubled the cost of a one-row update.
create function public.call_batch_counters_record() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.call_batch_counters (batch_id, status, delta)
    select n.batch_id, n.status, count(*) from new_rows n group by n.batch_id, n.status;
    if random() * public.call_batch_counters_fold_every() < 1 then
      perform public.call_batch_counters_fold(t.batch_id)
      from (select distinct n.batch_id from new_rows n) t;
    end if;
  elsif tg_op = 'DELETE' then
    insert into public.call_batch_counters (batch_id, status, delta)
    select o.batch_id, o.status, -count(*) from old_rows o
    -- Contacts deleted with their batch (the cascade) leave nothing behind.
    where exists (select 1 from public.call_batches b where b.id = o.batch_id)
    group by o.batch_id, o.status;
  else
    -- An update that changes neither status nor batch cancels out here and books nothing.
    insert into public.call_batch_counters (batch_id, status, delta)
    select m.batch_id, m.status, sum(m.delta)
    from (
      select n.batch_id, n.status, 1 as delta from new_rows n
      union all
      select o.batch_id, o.status, -1 as delta from old_rows o
    ) m
    group by m.batch_id, m.status
    having sum(m.delta) <> 0;
    if random() * public.call_batch_counters_fold_every() < 1 then
      perform public.call_batch_counters_fold(t.batch_id)
      from (select distinct n.batch_id from new_rows n) t;
    end if;
  end if;
  return null;
end
$$;

-- Emptying the contacts empties the ledger.
create function public.call_batch_counters_reset() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from public.call_batch_counters;
  return null;
end
$$;

-- A deleted batch's ledger rows go with it.
create function public.call_batch_counters_forget() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from public.call_batch_counters k using old_batches o where k.batch_id = o.id;
  return null;
end
$$;


-- Upgrading a live database: the triggers and the backfill must see the same contacts. CREATE
-- TRIGGER already locks out writers until this migration commits; the lock says so up front.
lock table public.campaign_contacts in share row exclusive mode;

-- Transition tables cannot be combined with a column list (UPDATE OF status, batch_id): the
-- update trigger sees every update and books only those that moved a contact.
create trigger call_batch_counters_insert
  after insert on public.campaign_contacts
  referencing new table as new_rows
  for each statement execute function public.call_batch_counters_record();
create trigger call_batch_counters_update
  after update on public.campaign_contacts
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.call_batch_counters_record();
create trigger call_batch_counters_delete
  after delete on public.campaign_contacts
  referencing old table as old_rows
  for each statement execute function public.call_batch_counters_record();
create trigger call_batch_counters_truncate
  after truncate on public.campaign_contacts
  for each statement execute function public.call_batch_counters_reset();
create trigger call_batch_counters_batch_delete
  after delete on public.call_batches
  referencing old table as old_batches
  for each statement execute function public.call_batch_counters_forget();

-- The counters of the contacts already there.
insert into public.call_batch_counters (batch_id, status, delta)
select cc.batch_id, cc.status, count(*)
from public.campaign_contacts cc
group by cc.batch_id, cc.status;

-- Same columns, same meaning, same security_invoker: the counters now come from the ledger
-- (a few rows read by batch_id) instead of a count of the batch's contacts.
create or replace view public.v_call_batch_summary
with (security_invoker = true) as
select
  b.id,
  b.agency_id,
  b.campaign_id,
  c.name as campaign_name,
  b.agent_mapping_id,
  am.name as agent_name,
  b.from_number,
  b.status,
  s.total_contacts,
  s.queued,
  s.in_progress,
  s.completed,
  s.failed,
  s.skipped,
  case
    when s.total_contacts = 0 then 0.0
    else round(100.0 * (s.completed + s.failed + s.skipped) / s.total_contacts, 1)
  end as progress_percentage,
  s.total_contacts - s.completed - s.failed - s.skipped as remaining_count,
  b.calls_per_minute,
  b.max_concurrent,
  b.scheduled_for,
  b.created_at,
  b.started_at
from public.call_batches b
left join public.campaigns c on c.id = b.campaign_id
left join public.agent_mappings am on am.id = b.agent_mapping_id
cross join lateral (
  select
    coalesce(sum(k.delta), 0)::integer as total_contacts,
    coalesce(sum(k.delta) filter (where k.status = 'queued'), 0)::integer as queued,
    coalesce(sum(k.delta) filter (where k.status = 'in_progress'), 0)::integer as in_progress,
    coalesce(sum(k.delta) filter (where k.status = 'completed'), 0)::integer as completed,
    coalesce(sum(k.delta) filter (where k.status = 'failed'), 0)::integer as failed,
    coalesce(sum(k.delta) filter (where k.status = 'skipped'), 0)::integer as skipped
  from public.call_batch_counters k
  where k.batch_id = b.id
) s;

-- Row-level security as for the contacts: a user reads the counters of their agency's batches.
alter table public.call_batch_counters enable row level security;
create policy call_batch_counters_read_own on public.call_batch_counters
  for select to authenticated using (
    exists (
      select 1 from public.call_batches b
      where b.id = call_batch_counters.batch_id
        and b.agency_id = (select public.request_agency_id())
    )
  );
-- Supabase's default privileges grant every new table to anon and authenticated in full; only
-- the triggers (security definer) write the ledger.
revoke all on public.call_batch_counters from public;
do $$
begin
  execute 'revoke all on public.call_batch_counters from anon, authenticated';
end
$$;
grant select on public.call_batch_counters to authenticated;
