-- No counters for what does not exist: a ledger row must belong to an existing batch.
--
-- A foreign key would do it at the cost of a KEY SHARE lock on the batch for every write of a
-- contact, a wait the writers do not have (see 20261129000000). This checks the statement's new
-- ledger rows against the batches instead: a read, no lock, no wait. It checks what is written
-- from outside a trigger: a row written by hand, by a script, by the rebuild, or by a data-only
-- restore that loads the ledger before the batches. The contacts' triggers' own rows need no
-- check (a contact's batch exists: its foreign key says so).
--
-- Like every trigger here it does not fire under session_replication_role = replica (a
-- logical-replication subscriber, a restore that sets it): those writes are checked by the
-- drift function, and call_batch_counters_rebuild() drops rows of batches that do not exist.
-- A batch deleted while a writer of its contacts commits cannot leave rows behind either: its
-- delete waits on the contacts' row locks, and its trigger then removes the committed rows.

-- Row by row, and only at trigger depth 0: the contacts' triggers insert a row or two per
-- statement, for which the condition is all that runs (a statement trigger with a transition
-- table cost them a tenth of their throughput even when its condition was false).
create function public.call_batch_counters_check_batch() returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if not exists (select 1 from public.call_batches b where b.id = new.batch_id) then
    raise exception 'call_batch_counters: batch % does not exist', new.batch_id
      using errcode = 'foreign_key_violation',
        hint = 'The ledger is written by the contacts'' triggers; restore it only with its batches.';
  end if;
  return new;
end
$$;
revoke all on function public.call_batch_counters_check_batch() from public, anon, authenticated;

create trigger call_batch_counters_batch_exists
  before insert on public.call_batch_counters
  for each row
  when (pg_trigger_depth() = 0)
  execute function public.call_batch_counters_check_batch();
