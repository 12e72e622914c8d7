-- Grants as narrow as the product needs, on a database set up as Supabase sets one up.
--
-- A Supabase project grants ALL on every new table, sequence and function in public to anon,
-- authenticated and service_role (its default privileges), and PostgREST and GraphQL expose
-- public to both API roles. Row-level security filters what they read, but not TRUNCATE, not a
-- sequence, not a security definer function called through /rpc/. After this migration:
-- anon can do nothing with these objects; authenticated can only SELECT, under the policies,
-- and call the read function; no internal function is callable through the API; and what a
-- later migration creates in public opens to the API roles only where it grants so itself.
-- service_role (the project's server-side key) keeps what Supabase gives it.

revoke all on table public.agencies, public.users, public.campaigns, public.agent_mappings,
  public.call_batches, public.campaign_contacts, public.call_batch_counters,
  public.v_call_batch_summary
  from public, anon, authenticated;
grant select on table public.agencies, public.users, public.campaigns, public.agent_mappings,
  public.call_batches, public.campaign_contacts, public.call_batch_counters,
  public.v_call_batch_summary
  to authenticated;
revoke all on sequence public.call_batch_counters_id_seq from public, anon, authenticated;

-- Internal functions: the counters' triggers and fold, the agency trigger. A trigger function
-- needs no EXECUTE grant to fire; the fold is called by the triggers as its owner.
revoke all on function public.call_batch_counters_fold(uuid),
  public.call_batch_counters_fold_every(), public.call_batch_counters_record(),
  public.call_batch_counters_reset(), public.call_batch_counters_forget(),
  public.campaign_contacts_agency()
  from public, anon, authenticated;
-- What the policies and the read function call, as authenticated (the agency helper is security
-- definer: it reads the caller's own users row past that table's policy, which would recurse).
revoke all on function public.request_user_id(), public.request_agency_id() from public, anon;
grant execute on function public.request_user_id(), public.request_agency_id() to authenticated;

-- Every function with a search_path of its own (splinter's 0011).
alter function public.request_user_id() set search_path = '';
alter function public.call_batch_counters_fold_every() set search_path = '';

-- The foreign keys' own indexes (splinter's 0001): deleting a campaign or an agent mapping sets
-- its batches' reference to null, which would otherwise scan every batch.
create index call_batches_campaign_id_idx on public.call_batches (campaign_id);
create index call_batches_agent_mapping_id_idx on public.call_batches (agent_mapping_id);

-- What the role running the migrations creates in public from now on starts closed to the API
-- roles (it would otherwise get Supabase's grants of ALL): a later table, sequence or function
-- is reachable only through grants its own migration writes.
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;
-- PostgreSQL itself lets PUBLIC execute every new function, in every schema: a per-schema rule
-- cannot take that away, only this global one (for the functions this role creates).
alter default privileges revoke execute on functions from public;
