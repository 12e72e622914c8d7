-- Reference schema for calls-batch-get: the tables and the view the function reads.
-- Plain SQL that applies to a bare PostgreSQL (15+) and to a Supabase project alike.

-- Supabase creates these roles; a bare server does not have them.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
end
$$;

create table public.agencies (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_at timestamptz not null default now()
);

-- One row per auth user (id = auth.users.id); agency_id null = not (yet) in an agency.
create table public.users (
  id uuid primary key,
  agency_id uuid references public.agencies (id) on delete set null,
  email text,
  full_name text,
  created_at timestamptz not null default now()
);
create index users_agency_id_idx on public.users (agency_id);

create table public.campaigns (
  id uuid primary key default gen_random_uuid(),
  agency_id uuid not null references public.agencies (id) on delete cascade,
  name text not null,
  created_at timestamptz not null default now()
);
create index campaigns_agency_id_idx on public.campaigns (agency_id);

-- The voice agent a batch calls with; `name` is the batch's agent_name.
create table public.agent_mappings (
  id uuid primary key default gen_random_uuid(),
  agency_id uuid not null references public.agencies (id) on delete cascade,
  name text not null,
  created_at timestamptz not null default now()
);
create index agent_mappings_agency_id_idx on public.agent_mappings (agency_id);

create table public.call_batches (
  id uuid primary key default gen_random_uuid(),
  agency_id uuid not null references public.agencies (id) on delete cascade,
  campaign_id uuid references public.campaigns (id) on delete set null,
  agent_mapping_id uuid references public.agent_mappings (id) on delete set null,
  from_number text,
  status text not null default 'draft'
    check (status in ('draft', 'scheduled', 'processing', 'paused', 'completed', 'cancelled', 'failed')),
  calls_per_minute integer not null default 30 check (calls_per_minute > 0),
  max_concurrent integer not null default 10 check (max_concurrent > 0),
  scheduled_for timestamptz,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz
);
create index call_batches_agency_id_idx on public.call_batches (agency_id, created_at desc);

create table public.campaign_contacts (
  id uuid primary key default gen_random_uuid(),
  batch_id uuid not null references public.call_batches (id) on delete cascade,
  phone_number text not null,
  first_name text,
  last_name text,
  email text,
  company text,
  title text,
  status text not null default 'pending'
    check (status in ('pending', 'queued', 'in_progress', 'completed', 'failed', 'skipped')),
  call_id uuid,
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 3 check (max_attempts >= 1),
  outcome text,
  duration_seconds integer check (duration_seconds >= 0),
  outcome_notes text,
  last_attempt_at timestamptz,
  completed_at timestamptz,
  custom_data jsonb not null default '{}'::jsonb check (jsonb_typeof(custom_data) = 'object'),
  do_not_call boolean not null default false,
  timezone text,
  created_at timestamptz not null default now()
);
-- The function's page (batch, order by created_at, id) and its count, with and without a status.
create index campaign_contacts_batch_page_idx
  on public.campaign_contacts (batch_id, created_at, id);
create index campaign_contacts_batch_status_page_idx
  on public.campaign_contacts (batch_id, status, created_at, id);

-- One row per batch with its live counters. The lateral join keeps a lookup of one batch to that
-- batch's contacts. Done = completed + failed + skipped; remaining = everything not yet done.
create view public.v_call_batch_summary
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

-- Row-level security: an authenticated user reads only their own agency's rows, so the schema is
-- safe even when queried through PostgREST with a user's token instead of through this function.

-- The caller's user id, as Supabase's auth.uid() reads it, without needing the auth schema.
create function public.request_user_id() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  )::uuid
$$;

-- security definer: reads users past its own policy, which would otherwise recurse.
create function public.request_agency_id() returns uuid
language sql stable security definer
set search_path = ''
as $$
  select u.agency_id from public.users u where u.id = public.request_user_id()
$$;
revoke all on function public.request_agency_id() from public;
grant execute on function public.request_user_id() to anon, authenticated;
grant execute on function public.request_agency_id() to authenticated;

alter table public.agencies enable row level security;
alter table public.users enable row level security;
alter table public.campaigns enable row level security;
alter table public.agent_mappings enable row level security;
alter table public.call_batches enable row level security;
alter table public.campaign_contacts enable row level security;

create policy agencies_read_own on public.agencies
  for select to authenticated using (id = (select public.request_agency_id()));
create policy users_read_own on public.users
  for select to authenticated using (id = (select public.request_user_id()));
create policy campaigns_read_own on public.campaigns
  for select to authenticated using (agency_id = (select public.request_agency_id()));
create policy agent_mappings_read_own on public.agent_mappings
  for select to authenticated using (agency_id = (select public.request_agency_id()));
create policy call_batches_read_own on public.call_batches
  for select to authenticated using (agency_id = (select public.request_agency_id()));
create policy campaign_contacts_read_own on public.campaign_contacts
  for select to authenticated using (
    exists (
      select 1 from public.call_batches b
      where b.id = campaign_contacts.batch_id
        and b.agency_id = (select public.request_agency_id())
    )
  );

grant select on public.agencies, public.users, public.campaigns, public.agent_mappings,
  public.call_batches, public.campaign_contacts, public.v_call_batch_summary to authenticated;
