"""The reference of bench/scale.py's HTTP run: a bare functions-framework function that runs the
store's own read (its settings, as the batch's user, and the read function) and returns the JSON
text PostgreSQL made, spliced into the body without parsing it (no token, no models, no log line,
not even the extra row taken off). What the real function costs beyond this is the cost of its
Python path.

    DATABASE_URL=... functions-framework --target bare --source bench/bare_function.py
"""

from __future__ import annotations

import json
import os
from uuid import UUID

import flask
import functions_framework
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from calls_batch_get.params import BatchQuery
from calls_batch_get.store.postgres import READ_STATEMENT, SESSION_SETTINGS, read_parameters

# The user is fixed: the bench polls as the batch's agency's user (scale_data.USER).
CLAIMS = json.dumps({"sub": str(UUID(int=0xB1)), "role": "authenticated"})

_pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
    os.environ["DATABASE_URL"],
    connection_class=psycopg.Connection[DictRow],
    kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
    min_size=1,
    max_size=4,
)


@functions_framework.http
def bare(request: flask.Request) -> flask.Response:
    query = BatchQuery(batch_id=UUID(request.args["batch_id"]))
    with _pool.connection() as conn:
        # One message, as the store sends it.
        cursor = psycopg.ClientCursor(conn)
        cursor.execute(f"{SESSION_SETTINGS}; {READ_STATEMENT}",
                       {**read_parameters(query), "statement_timeout": "10000", "claims": CLAIMS})
        cursor.nextset()
        row = cursor.fetchone()
    assert row is not None
    pagination = json.dumps({"limit": query.limit, "offset": 0})
    body = f'{{"read":{row["document"]},"contact_pagination":{pagination}}}'
    return flask.Response(body, mimetype="application/json")
