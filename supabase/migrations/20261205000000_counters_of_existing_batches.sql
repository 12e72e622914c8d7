-- No counters for what does not exist: a ledger row must belong to an existing batch.
--
-- A foreign key would do it at the cost of a KEY SHARE lock on the batch for every write of a
-- contact, a wait the writers do not have (see 20261129000000). This checks the statement's new
-- ledger rows against the batches instead: a read, no lock, no wait. It checks what is written
-- from outside a trigger: a row written by hand, by a script, by the rebuild, or by a data-only
-- restore that loads the ledger before the batches. The contacts' triggers' own rows need no
-- check (a contact's batch exists: its foreign key says so), and checking them cost a tenth of
-- the status updates' throughput (bench/scale.py).
--
-- Like every trigger here it does not fire under session_replication_role = replica (a
-- logical-replication subscriber, a restore that sets it): those writes are checked by the
-- drift function, and call_batch_counters_rebuild() drops rows of batches that do not exist.
-- A batch deleted while a writer of its contacts commits cannot leave rows behind either: its
-- delete waits on the contacts' row locks, and its trigger then removes the committed rows.

create function public.call_batch_counters_check_batch() returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  missing uuid;
begin
  select n.batch_id into missing
  from new_rows n
  where not exists (select 1 from public.call_batches b where b.id = n.batch_id)
  limit 1;
  if found then
    raise exception 'call_batch_counters: batch % does not exist', missing
      using errcode = 'foreign_key_violation',
        hint = 'The ledger is written by the contacts'' triggers; restore it only with its batches.';
  end if;
  return null;
end
$$;
revoke all on function public.call_batch_counters_check_batch() from public, anon, authenticated;

create trigger call_batch_counters_batch_exists
  after insert on public.call_batch_counters
  referencing new table as new_rows
  for each statement
  when (pg_trigger_depth() = 0)
  execute function public.call_batch_counters_check_batch();
