-- Rolls back 20261129000000_call_batch_counters.sql: the summary view counts the contacts again,
-- and the ledger, its triggers and its functions are gone. For a database at that migration
-- (no later one applied: they build on the ledger). Run it in one transaction, then tell the
-- Supabase CLI (README, "Deployment", "Rolling back the counters"):
--
--   psql "$DATABASE_URL" --single-transaction -v ON_ERROR_STOP=1 \
--     -f supabase/rollback/20261129000000_call_batch_counters.down.sql
--   supabase migration repair --status reverted 20261129000000
--
-- The view first, so that no reader ever finds it without the ledger it reads. Its grants stay.
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
    count(*)::integer as total_contacts,
    (count(*) filter (where cc.status = 'queued'))::integer as queued,
    (count(*) filter (where cc.status = 'in_progress'))::integer as in_progress,
    (count(*) filter (where cc.status = 'completed'))::integer as completed,
    (count(*) filter (where cc.status = 'failed'))::integer as failed,
    (count(*) filter (where cc.status = 'skipped'))::integer as skipped
  from public.campaign_contacts cc
  where cc.batch_id = b.id
) s;

drop trigger call_batch_counters_insert on public.campaign_contacts;
drop trigger call_batch_counters_update on public.campaign_contacts;
drop trigger call_batch_counters_delete on public.campaign_contacts;
drop trigger call_batch_counters_truncate on public.campaign_contacts;
drop trigger call_batch_counters_batch_delete on public.call_batches;
drop function public.call_batch_counters_record();
drop function public.call_batch_counters_reset();
drop function public.call_batch_counters_forget();
drop function public.call_batch_counters_fold(uuid);
drop function public.call_batch_counters_fold_every();
drop table public.call_batch_counters;
