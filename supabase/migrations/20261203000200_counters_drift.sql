-- Drift you can see: where the counters ledger no longer says what the contacts are.
--
-- The ledger is exact under any mix of writers, but writes that bypass the triggers (a
-- data-only restore, a logical-replication subscriber, session_replication_role = replica,
-- ALTER TABLE ... DISABLE TRIGGER) change contacts without it, or bring its rows in twice. This
-- lists, for one batch or for all, every (batch, status) whose ledger sum (the rows of the
-- batch's own agency, as the summary view reads them) differs from the count of its contacts,
-- and every ledger row of a batch that does not exist. An empty answer means the counters are
-- right.
--
-- For one batch it reads that batch's index ranges (planned with its value: the condition on a
-- null batch folds away); for all it reads both tables once.

create function public.call_batch_counters_drift(p_batch_id uuid default null)
returns table (batch_id uuid, status text, contacts bigint, counted bigint, batch_exists boolean)
language plpgsql
stable
security invoker
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
#variable_conflict use_column
begin
  return query
  with counted_contacts as (
    select cc.batch_id, cc.status, count(*) as n
    from public.campaign_contacts cc
    where p_batch_id is null or cc.batch_id = p_batch_id
    group by cc.batch_id, cc.status
  ),
  ledger as (
    select k.batch_id, k.status, sum(k.delta)::bigint as n
    from public.call_batch_counters k
    left join public.call_batches b on b.id = k.batch_id
    where (p_batch_id is null or k.batch_id = p_batch_id)
      and (b.id is null or k.agency_id = b.agency_id)
    group by k.batch_id, k.status
  ),
  compared as (
    select coalesce(c.batch_id, l.batch_id) as batch_id, coalesce(c.status, l.status) as status,
      coalesce(c.n, 0) as contacts, coalesce(l.n, 0) as counted
    from counted_contacts c
    full join ledger l on l.batch_id = c.batch_id and l.status = c.status
  )
  select d.batch_id, d.status, d.contacts, d.counted, x.batch_exists
  from compared d
  cross join lateral (
    select exists (select 1 from public.call_batches b where b.id = d.batch_id) as batch_exists
  ) x
  where d.contacts <> d.counted or not x.batch_exists
  order by d.batch_id, d.status;
end
$$;
-- Only the owner and service_role (the project's server side) read every agency's counts.
revoke all on function public.call_batch_counters_drift(uuid) from public, anon, authenticated;
grant execute on function public.call_batch_counters_drift(uuid) to service_role;
