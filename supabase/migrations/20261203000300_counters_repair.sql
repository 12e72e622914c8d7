-- Drift you can repair: the ledger of a batch rebuilt from its contacts, while writers write.
--
-- Writers only insert ledger rows and never wait; a fold (one statement in 16) replaces a
-- batch's unlocked rows by their sums. A rebuild deletes the batch's rows and books its
-- contacts' count, in one statement, so one snapshot: a writer committed before it is in both
-- the count and the deleted rows, one still running is in neither and its row lands on the new
-- base. Only a fold in flight could spoil that (its sum row would survive the rows it replaced,
-- counted again), so a fold and a rebuild of one batch exclude each other through an advisory
-- lock: the rebuild waits for the folds under way to commit; a fold that finds the lock taken
-- skips folding, as it skips rows already locked, and its writer waits for nothing.

-- The advisory locks: one per batch (its id's hash under this ledger's key), and one over all
-- batches, which a fold and a batch's rebuild take shared and a rebuild of every batch alone.
create function public.call_batch_counters_lock_key(p_batch_id uuid) returns integer
language sql immutable
set search_path = ''
as $$ select hashtext(p_batch_id::text) $$;

create or replace function public.call_batch_counters_fold(p_batch_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- A rebuild of this batch (or of all) is under way: folding is an optimisation, so not now.
  if not (
    pg_try_advisory_xact_lock_shared(hashtext('public.call_batch_counters (all)'), 0)
    and pg_try_advisory_xact_lock(
      hashtext('public.call_batch_counters'), public.call_batch_counters_lock_key(p_batch_id)
    )
  ) then
    return;
  end if;
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

-- Rebuilds the ledger of one batch (or, with null, of every batch, and drops the rows of
-- batches that no longer exist) from the contacts; returns how many contacts it booked. It
-- holds its advisory lock and the ledger rows it deleted until the calling transaction ends;
-- writers of this batch and of every other go on inserting meanwhile.
create function public.call_batch_counters_rebuild(p_batch_id uuid default null) returns bigint
language plpgsql
volatile
security invoker
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
declare
  booked bigint;
begin
  if p_batch_id is null then
    perform pg_advisory_xact_lock(hashtext('public.call_batch_counters (all)'), 0);
  else
    perform pg_advisory_xact_lock_shared(hashtext('public.call_batch_counters (all)'), 0);
    perform pg_advisory_xact_lock(
      hashtext('public.call_batch_counters'), public.call_batch_counters_lock_key(p_batch_id)
    );
  end if;
  with gone as (
    delete from public.call_batch_counters k
    where p_batch_id is null or k.batch_id = p_batch_id
  ),
  counted as (
    select cc.batch_id, cc.agency_id, cc.status, count(*) as n
    from public.campaign_contacts cc
    where p_batch_id is null or cc.batch_id = p_batch_id
    group by cc.batch_id, cc.agency_id, cc.status
  ),
  inserted as (
    insert into public.call_batch_counters (batch_id, agency_id, status, delta)
    select c.batch_id, c.agency_id, c.status, c.n from counted c
    returning delta
  )
  select coalesce(sum(i.delta), 0) into booked from inserted i;
  return booked;
end
$$;

-- Only the owner and service_role.
revoke all on function public.call_batch_counters_lock_key(uuid),
  public.call_batch_counters_rebuild(uuid) from public, anon, authenticated;
grant execute on function public.call_batch_counters_rebuild(uuid) to service_role;
