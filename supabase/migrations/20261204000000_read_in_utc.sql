-- The read function speaks UTC whatever the session's TimeZone (a project's, a role's, a
-- pooler's): json renders a timestamptz in the session's zone, and the API's timestamps are
-- UTC. Set on the function, it holds for both stores' reads, and lets the function's models
-- check "offset zero" in pydantic's core instead of converting every timestamp in Python.
alter function public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)
  set "TimeZone" = 'UTC';
