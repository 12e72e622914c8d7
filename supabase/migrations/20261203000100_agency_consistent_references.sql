-- No names of another agency: a batch may only name a campaign and an agent mapping of its own
-- agency (the database refuses the rest), and the summary view joins them on the agency too,
-- so that even data written past the constraints never shows another agency's names.

-- References that already cross agencies are wrong data that leak names: they are cleared (the
-- batch keeps everything else), and the count is said.
do $$
declare
  cleared integer;
begin
  update public.call_batches b set campaign_id = null
  from public.campaigns c
  where c.id = b.campaign_id and c.agency_id <> b.agency_id;
  get diagnostics cleared = row_count;
  if cleared > 0 then
    raise notice 'cleared % batch references to another agency''s campaign', cleared;
  end if;
  update public.call_batches b set agent_mapping_id = null
  from public.agent_mappings am
  where am.id = b.agent_mapping_id and am.agency_id <> b.agency_id;
  get diagnostics cleared = row_count;
  if cleared > 0 then
    raise notice 'cleared % batch references to another agency''s agent mapping', cleared;
  end if;
end
$$;

alter table public.campaigns
  add constraint campaigns_id_agency_id_key unique (id, agency_id);
alter table public.agent_mappings
  add constraint agent_mappings_id_agency_id_key unique (id, agency_id);
-- Deleting a campaign or a mapping clears the batch's reference alone (a column list on SET
-- NULL, PostgreSQL 15+), never its agency.
alter table public.call_batches
  add constraint call_batches_campaign_agency_fkey foreign key (campaign_id, agency_id)
    references public.campaigns (id, agency_id) on delete set null (campaign_id),
  add constraint call_batches_agent_mapping_agency_fkey foreign key (agent_mapping_id, agency_id)
    references public.agent_mappings (id, agency_id) on delete set null (agent_mapping_id),
  drop constraint call_batches_campaign_id_fkey,
  drop constraint call_batches_agent_mapping_id_fkey;

-- Same columns, same meaning; the names and the counters are those of the batch's own agency.
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
left join public.campaigns c on c.id = b.campaign_id and c.agency_id = b.agency_id
left join public.agent_mappings am
  on am.id = b.agent_mapping_id and am.agency_id = b.agency_id
cross join lateral (
  select
    coalesce(sum(k.delta), 0)::integer as total_contacts,
    coalesce(sum(k.delta) filter (where k.status = 'queued'), 0)::integer as queued,
    coalesce(sum(k.delta) filter (where k.status = 'in_progress'), 0)::integer as in_progress,
    coalesce(sum(k.delta) filter (where k.status = 'completed'), 0)::integer as completed,
    coalesce(sum(k.delta) filter (where k.status = 'failed'), 0)::integer as failed,
    coalesce(sum(k.delta) filter (where k.status = 'skipped'), 0)::integer as skipped
  from public.call_batch_counters k
  where k.batch_id = b.id and k.agency_id = b.agency_id
) s;
