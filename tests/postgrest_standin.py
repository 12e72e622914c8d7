"""A PostgREST stand-in for the supabase-py store, answering from the real test database.

Mounted with respx on ``{SUPABASE_URL}/rest/v1``, it answers as the API gateway and PostgREST do:
it checks the API key, verifies the JWT in ``Authorization`` (the project's keys: a key set and
the legacy secret; exp, nbf and iat with PostgREST's 30 s of skew), and runs each request in a
read-only transaction under ``set local role`` of the token's ``role`` (``anon`` for the bare anon
key) with ``request.jwt.claims`` set, so that row-level security applies as it does on Supabase.

It serves GET calls of stable functions (``/rpc/<name>``, arguments by name in the query string,
the value of a scalar function as the body) and GET/HEAD reads of ``SERVED_TABLES``: the body
built by PostgreSQL itself (``json_agg`` of the selected columns, so timestamps, numerics and
jsonb come out exactly as PostgREST serves them), ``Content-Range``, 200/206/416 by PostgREST's
rules, PostgreSQL's error codes. Anything outside the small part of the API it implements is
refused with a 400, so that a change in what supabase-py sends fails a test instead of being
answered by a guess.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import psycopg
import respx
from psycopg import sql

SCHEMA = "public"
SERVED_TABLES = frozenset({"users", "v_call_batch_summary", "campaign_contacts"})
SERVED_FUNCTIONS = frozenset({"calls_batch_get"})
# PostgREST's allowed clock skew for exp, nbf and iat (src/PostgREST/Auth.hs).
JWT_SKEW_SECONDS = 30
_ROLES = frozenset({"anon", "authenticated", "service_role"})
# What supabase-js's ``.single()`` asks for: the one row as an object, or a 406.
OBJECT_MEDIA_TYPE = "application/vnd.pgrst.object+json"
# Query parameters that are not filters; PostgREST reads every other key as a column filter.
_RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset"})
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_UNSIGNED = re.compile(r"[0-9]{1,18}")
_ORDER_DIRECTIONS = {"asc": sql.SQL("asc"), "desc": sql.SQL("desc")}
_ORDER_NULLS = {"nullsfirst": sql.SQL("nulls first"), "nullslast": sql.SQL("nulls last")}
# The filter operators the stand-in answers, as PostgREST translates them.
_OPERATORS = {"eq": sql.SQL("="), "gt": sql.SQL(">"), "gte": sql.SQL(">=")}
# PostgREST answers 400 for data exceptions (22*, e.g. 22P02 for a malformed uuid) and for an
# undefined column (42703); docs/references/errors.rst, "HTTP Status Codes". Only these can come
# from a read whose table and columns were checked first; anything else is a 500 here.
_CLIENT_ERROR_STATES = ("22", "42703")


class Refused(Exception):
    """An answer in PostgREST's error shape: ``{code, details, hint, message}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}
        self.headers = dict(headers or {})


def not_understood(details: str) -> Refused:
    """A request the real PostgREST might well accept, but this stand-in cannot answer truly."""
    return Refused(
        400, "PGRST100", "The PostgREST stand-in does not understand this request", details
    )


@dataclass(frozen=True)
class Served:
    """One request as the stand-in saw and answered it (monotonic clock times); ``role`` is the
    one it ran as, ``body`` what it answered (kept when ``keep_bodies``)."""

    method: str
    table: str
    params: tuple[tuple[str, str], ...]
    prefer: str | None
    status: int
    started: float
    finished: float
    role: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class ProjectKeys:
    """What the gateway and PostgREST know of a project: its API keys (each standing for a
    role) and the keys its user tokens are signed with."""

    anon_key: str
    service_key: str
    public_jwks: tuple[dict[str, Any], ...] = ()
    jwt_secret: str | None = None
    skew_seconds: int = JWT_SKEW_SECONDS

    def api_key_role(self, key: str | None) -> str | None:
        return {self.anon_key: "anon", self.service_key: "service_role"}.get(key or "")

    def claims_of(self, token: str) -> dict[str, Any]:
        """The verified claims of a user's token, or a 401 in PostgREST's words."""
        try:
            header = jwt.get_unverified_header(token)
            key: Any
            if header.get("alg") == "HS256" and self.jwt_secret is not None:
                key = self.jwt_secret
            else:
                found = [k for k in self.public_jwks if k.get("kid") == header.get("kid")]
                if not found:
                    raise Refused(401, "PGRST301", "No suitable key or wrong key type")
                key = jwt.PyJWK(found[0])
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(header.get("alg"))],
                leeway=self.skew_seconds,
                options={"verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "PGRST303", "JWT expired") from None
        except jwt.ImmatureSignatureError:
            raise Refused(401, "PGRST303", "JWT not yet valid") from None
        except jwt.InvalidTokenError as error:
            raise Refused(401, "PGRST301", f"JWSError {type(error).__name__}") from None
        return claims


@dataclass(frozen=True)
class Read:
    """A parsed read: what to select, filter, order and slice, and whether to count."""

    table: str
    columns: tuple[str, ...]
    filters: tuple[tuple[str, str, str], ...]
    order: tuple[sql.Composable, ...]
    limit: int | None
    offset: int
    count: bool
    head: bool
    single: bool = False


def content_range(offset: int, page_rows: int, total: int | None) -> str:
    """PostgREST's ``contentRangeH``: ``first-last/total``, with ``*`` for an empty range or an
    unknown total (src/PostgREST/RangeQuery.hs)."""
    last = offset + page_rows - 1
    first_last = f"{offset}-{last}" if total != 0 and offset <= last else "*"
    return f"{first_last}/{'*' if total is None else total}"


def range_status(offset: int, page_rows: int, total: int | None) -> int:
    """PostgREST's ``rangeStatus`` (src/PostgREST/RangeQuery.hs): without a count always 200;
    with one, 416 when the offset is *past* the total (``lower > total``: an offset equal to the
    total is an empty 206, and offset 1 of 0 rows is a 416), 206 when the page is not the whole
    set, else 200. Its test/spec/Feature/Query/RangeSpec.hs pins the 416 bodies and the
    ``Content-Range: */<total>`` they keep."""
    if total is None:
        return 200
    if offset > total:
        return 416
    return 206 if page_rows < total else 200


@dataclass
class PostgrestStandIn:
    """Serves GET calls of ``SERVED_FUNCTIONS`` and GET/HEAD reads of ``SERVED_TABLES``, each as
    the role its token names. ``database_url`` logs in as a role that may act as each of them
    (PostgREST's authenticator)."""

    database_url: str
    keys: ProjectKeys
    rest_path: str = "/rest/v1"
    # Kept in ``served`` for tests that look at what left the database.
    keep_bodies: bool = False
    # Held inside each answer, so that tests can see concurrent requests overlap.
    delay_seconds: float = 0.0
    tables: frozenset[str] = SERVED_TABLES
    # Where each answer gets its connection: a new one by default; a benchmark passes a pool's,
    # as PostgREST keeps its own pool.
    connection: Callable[[], contextlib.AbstractContextManager[psycopg.Connection[Any]]] | None = (
        None
    )
    served: list[Served] = field(default_factory=list)
    _done: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _columns: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _arguments: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict, repr=False)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        table = request.url.path.removeprefix(self.rest_path + "/")
        role: str | None = None
        try:
            role, claims = self._authenticate(request.headers)
            response = self._answer(request, table, role, claims)
        except Refused as refused:
            response = _json_response(refused.status, json.dumps(refused.body), refused.headers)
        if request.method == "HEAD":
            response = httpx.Response(response.status_code, headers=response.headers)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        with self._done:
            self.served.append(
                Served(
                    method=request.method,
                    table=table,
                    params=tuple(request.url.params.multi_items()),
                    prefer=request.headers.get("prefer"),
                    status=response.status_code,
                    started=started,
                    finished=time.monotonic(),
                    role=role,
                    body=response.content if self.keep_bodies else b"",
                )
            )
            self._done.notify_all()
        return response

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Served]:
        """The log once ``count`` requests have been answered: a caller may return before
        reads it no longer needs are back."""
        with self._done:
            if not self._done.wait_for(lambda: len(self.served) >= count, timeout):
                raise TimeoutError(f"{len(self.served)} of {count} requests answered")
            return list(self.served)

    def _answer(
        self, request: httpx.Request, resource: str, role: str, claims: dict[str, Any]
    ) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            raise not_understood(f"method {request.method}")
        function = resource.removeprefix("rpc/")
        if function == resource and resource not in self.tables:
            raise not_understood(f"resource {resource!r}")
        if function != resource and (function not in SERVED_FUNCTIONS or request.method != "GET"):
            raise not_understood(f"{request.method} of function {function!r}")
        _check_headers(request.headers)
        with self._connect() as conn, conn.transaction():
            # What PostgREST runs first in each request's transaction.
            conn.execute("set transaction read only")
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            conn.execute(
                "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),)
            )
            try:
                if function != resource:
                    return self._call(conn, function, request)
                columns = self._columns_of(conn, resource)
                return _run(conn, _parse(request, resource, columns), columns)
            except psycopg.Error as error:
                raise _postgres_refusal(error, role) from error

    def _connect(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        if self.connection is not None:
            return self.connection()
        return psycopg.connect(self.database_url, autocommit=True, options="-c TimeZone=UTC")

    def _authenticate(self, headers: httpx.Headers) -> tuple[str, dict[str, Any]]:
        """The role and claims a request runs with: the gateway wants a project key in
        ``apikey``; PostgREST takes the role from the bearer JWT, or the key's own role when the
        bearer is a key (or absent)."""
        key_role = self.keys.api_key_role(headers.get("apikey"))
        if key_role is None:
            raise Refused(401, "PGRST301", "No valid API key found in request")
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        if not bearer or self.keys.api_key_role(bearer) is not None:
            bearer_role = self.keys.api_key_role(bearer) or key_role
            return bearer_role, {"role": bearer_role}
        if scheme.lower() != "bearer":
            raise Refused(401, "PGRST301", "Authorization is not a bearer token")
        claims = self.keys.claims_of(bearer)
        role = claims.get("role")
        if role not in _ROLES:
            raise Refused(401, "PGRST301", f"role {role!r} does not exist")
        return str(role), claims

    def _call(
        self, conn: psycopg.Connection[Any], function: str, request: httpx.Request
    ) -> httpx.Response:
        """A stable function called by GET: arguments by name, each cast to its declared type,
        the function's value (a scalar) as the body."""
        declared = self._arguments_of(conn, function)
        given = dict(request.url.params.multi_items())
        missing = [n for n, (_, has_default) in declared.items() if not has_default]
        if not set(given) <= set(declared) or not set(missing) <= set(given):
            raise Refused(
                404,
                "PGRST202",
                f"Could not find the function {SCHEMA}.{function}({', '.join(sorted(given))})"
                " in the schema cache",
            )
        arguments = sql.SQL(", ").join(
            sql.SQL("{} => cast({} as {})").format(
                sql.Identifier(name), sql.Placeholder(name), sql.SQL(declared[name][0])
            )
            for name in given
        )
        statement = sql.SQL("select to_json({}({}))::text").format(
            sql.Identifier(SCHEMA, function), arguments
        )
        row = conn.execute(statement, given).fetchone()
        assert row is not None
        return _json_response(200, row[0], {"Content-Range": "0-0/*"})

    def _arguments_of(
        self, conn: psycopg.Connection[Any], function: str
    ) -> dict[str, tuple[str, bool]]:
        """Argument name -> (type, has a default), read once from the catalog."""
        if function not in self._arguments:
            rows = conn.execute(
                "select a.name, format_type(a.type, null), a.n > p.pronargs - p.pronargdefaults"
                " from pg_proc p, unnest(p.proargnames, p.proargtypes::oid[])"
                " with ordinality as a(name, type, n)"
                " where p.oid = %s::regproc",
                (f"{SCHEMA}.{function}",),
            ).fetchall()
            self._arguments[function] = {name: (t, bool(d)) for name, t, d in rows}
        return self._arguments[function]

    def _columns_of(self, conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
        """Column name -> type, in table order, read once from the catalog."""
        if table not in self._columns:
            rows = conn.execute(
                "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
                " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
                " order by a.attnum",
                (f"{SCHEMA}.{table}",),
            ).fetchall()
            self._columns[table] = {name: type_name for name, type_name in rows}
        return self._columns[table]


def _check_headers(headers: httpx.Headers) -> None:
    for name in ("range", "range-unit"):
        if name in headers:
            raise not_understood(f"header {name}")
    accept = headers.get("accept", "*/*")
    if accept not in ("*/*", "application/json", OBJECT_MEDIA_TYPE):
        raise not_understood(f"Accept: {accept}")
    profile = headers.get("accept-profile", SCHEMA)
    if profile != SCHEMA:
        raise Refused(406, "PGRST106", f"The schema must be one of the following: {SCHEMA}")
    preferences = [p.strip() for p in headers.get("prefer", "").split(",") if p.strip()]
    unknown = [p for p in preferences if p != "count=exact"]
    if unknown:
        raise not_understood(f"Prefer: {', '.join(unknown)}")


def _single_params(request: httpx.Request) -> tuple[dict[str, str], list[tuple[str, str]]]:
    reserved: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for key, value in request.url.params.multi_items():
        if key in _RESERVED_PARAMS:
            if key in reserved:
                raise not_understood(f"{key} given twice")
            reserved[key] = value
        else:
            filters.append((key, value))
    return reserved, filters


def _column(table: str, columns: Mapping[str, str], name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise not_understood(f"column syntax {name!r} (aliases, casts, JSON paths, embeds)")
    if name not in columns:
        # PostgreSQL's own answer, which PostgREST passes on.
        raise Refused(400, "42703", f"column {table}.{name} does not exist")
    return name


def _parse_select(table: str, columns: Mapping[str, str], raw: str | None) -> tuple[str, ...]:
    if raw is None or raw == "*":
        return tuple(columns)
    return tuple(_column(table, columns, name) for name in raw.split(","))


def _parse_order(
    table: str, columns: Mapping[str, str], raw: str | None
) -> tuple[sql.Composable, ...]:
    if raw is None:
        return ()
    terms: list[sql.Composable] = []
    for term in raw.split(","):
        name, *modifiers = term.split(".")
        parts: list[sql.Composable] = [sql.Identifier(_column(table, columns, name))]
        if modifiers and modifiers[0] in _ORDER_DIRECTIONS:
            parts.append(_ORDER_DIRECTIONS[modifiers.pop(0)])
        if modifiers and modifiers[0] in _ORDER_NULLS:
            parts.append(_ORDER_NULLS[modifiers.pop(0)])
        if modifiers:
            raise not_understood(f"order term {term!r}")
        terms.append(sql.SQL(" ").join(parts))
    return tuple(terms)


def _parse_unsigned(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not _UNSIGNED.fullmatch(raw):
        raise not_understood(f"{name}={raw!r}")
    return int(raw)


def _parse_filters(
    table: str, columns: Mapping[str, str], raw: list[tuple[str, str]]
) -> tuple[tuple[str, str, str], ...]:
    filters = []
    for key, value in raw:
        operator, dot, operand = value.partition(".")
        if "." in key or key in ("and", "or", "not"):
            raise not_understood(f"parameter {key!r}")
        column = _column(table, columns, key)
        if operator not in _OPERATORS or not dot:
            raise not_understood(f"filter {key}={value!r} (only {', '.join(_OPERATORS)})")
        filters.append((column, operator, operand))
    return tuple(filters)


def _parse(request: httpx.Request, table: str, columns: Mapping[str, str]) -> Read:
    reserved, filters = _single_params(request)
    return Read(
        table=table,
        columns=_parse_select(table, columns, reserved.get("select")),
        filters=_parse_filters(table, columns, filters),
        order=_parse_order(table, columns, reserved.get("order")),
        limit=_parse_unsigned("limit", reserved.get("limit")),
        offset=_parse_unsigned("offset", reserved.get("offset")) or 0,
        count="count=exact" in request.headers.get("prefer", ""),
        head=request.method == "HEAD",
        single=request.headers.get("accept") == OBJECT_MEDIA_TYPE,
    )


def _statement(read: Read, types: Mapping[str, str]) -> tuple[sql.Composed, dict[str, Any]]:
    """The shape of PostgREST's read statement: the page in a CTE, the body and the page size
    aggregated from it, the total counted over the same filters without the slice."""
    params: dict[str, Any] = {"limit": read.limit, "offset": read.offset}
    conditions: list[sql.Composable] = []
    for n, (column, operator, value) in enumerate(read.filters):
        # The operand typed as the column, so PostgreSQL itself rejects a malformed one (22P02).
        conditions.append(
            sql.SQL("{} {} cast({} as {})").format(
                sql.Identifier(column),
                _OPERATORS[operator],
                sql.Placeholder(f"f{n}"),
                sql.SQL(types[column]),
            )
        )
        params[f"f{n}"] = value
    where = sql.SQL(" and ").join(conditions) if conditions else sql.SQL("true")
    source = sql.Identifier(SCHEMA, read.table)
    order = (
        sql.SQL(" order by {}").format(sql.SQL(", ").join(read.order))
        if read.order
        else sql.SQL("")
    )
    total = (
        sql.SQL("(select pg_catalog.count(*) from {} where {})").format(source, where)
        if read.count
        else sql.SQL("null::bigint")
    )
    statement = sql.SQL(
        "with pgrst_source as ("
        " select {columns} from {source} where {where}{order}"
        " limit %(limit)s offset %(offset)s)"
        " select {total}, pg_catalog.count(_postgrest_t),"
        " coalesce(json_agg(_postgrest_t), '[]')::text"
        " from (select * from pgrst_source) _postgrest_t"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, read.columns)),
        source=source,
        where=where,
        order=order,
        total=total,
    )
    return statement, params


def _run(conn: psycopg.Connection[Any], read: Read, types: Mapping[str, str]) -> httpx.Response:
    statement, params = _statement(read, types)
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    total, page_rows, body = row
    headers = {"Content-Range": content_range(read.offset, page_rows, total)}
    status = range_status(read.offset, page_rows, total)
    if status == 416:
        raise Refused(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            f"An offset of {read.offset} was requested, but there are only {total} rows.",
            headers=headers,
        )
    if read.single:
        if page_rows != 1:
            raise Refused(
                406,
                "PGRST116",
                "JSON object requested, multiple (or no) rows returned",
                f"The result contains {page_rows} rows",
            )
        return _json_response(200, json.dumps(json.loads(body)[0]), headers, OBJECT_MEDIA_TYPE)
    return _json_response(status, body, headers)


def _postgres_refusal(error: psycopg.Error, role: str) -> Refused:
    sqlstate = error.sqlstate or "XX000"
    status = 400 if sqlstate.startswith(_CLIENT_ERROR_STATES) else 500
    if sqlstate == "42501":
        # PostgREST: insufficient privilege is 401 for the anonymous role, else 403.
        status = 401 if role == "anon" else 403
    diag = error.diag
    return Refused(
        status, sqlstate, diag.message_primary or str(error), diag.message_detail, diag.message_hint
    )


def _json_response(
    status: int, body: str, headers: Mapping[str, str], media_type: str = "application/json"
) -> httpx.Response:
    return httpx.Response(
        status,
        content=body.encode(),
        headers={**headers, "Content-Type": f"{media_type}; charset=utf-8"},
    )


@contextlib.contextmanager
def mounted(standin: PostgrestStandIn, supabase_url: str) -> Iterator[respx.MockRouter]:
    """The stand-in answering every httpx request under ``{supabase_url}/rest/v1``; any other
    httpx request fails (respx refuses what no route matches)."""
    with respx.mock(base_url=supabase_url + standin.rest_path, assert_all_called=False) as router:
        router.route().mock(side_effect=standin)
        yield router
