"""openapi.yaml against the code it describes: the schemas are the pydantic models', and the
parameters, statuses, codes and headers are the ones the function uses. (What the running
function answers is checked against it by tests/test_schemathesis.py.)"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import psycopg
import pytest
import respx
import yaml
from pydantic.json_schema import models_json_schema

from calls_batch_get import http, params
from calls_batch_get.errors import ErrorBody, ErrorCode, ParameterErrorBody
from calls_batch_get.health import HEALTH_PATH, HealthBody, Report
from calls_batch_get.models import BatchDetail, ContactStatus
from tests.conftest import ROOT, AppFactory
from tests.test_endpoint import CODES_BY_STATUS
from tests.tokens import KeySetServer

OPENAPI = ROOT / "openapi.yaml"
# Prose, which pydantic takes from docstrings and field names, is the document's own.
PROSE = frozenset({"title", "description", "examples"})


def load(path: Path = OPENAPI) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load()


def without_prose(value: Any, *, names: bool = False) -> Any:
    """``value`` less its prose; ``names``: value maps property names to schemas (a property
    may be called "title" and is no prose)."""
    if isinstance(value, dict):
        return {
            k: without_prose(v, names=k == "properties" and not names)
            for k, v in value.items()
            if names or k not in PROSE
        }
    if isinstance(value, list):
        return [without_prose(v) for v in value]
    return value


def as_type_lists(value: Any) -> Any:
    """pydantic's ``anyOf: [T, {type: null}]`` as the document writes it, ``type: [T, null]``
    with T's other keywords (its format): the same values."""
    if isinstance(value, dict):
        value = {k: as_type_lists(v) for k, v in value.items()}
        variants = value.get("anyOf")
        if (
            isinstance(variants, list) and len(variants) == 2 and variants[1] == {"type": "null"}
            and isinstance(variants[0].get("type"), str)
        ):
            (scalar, _) = variants
            rest = {k: v for k, v in value.items() if k != "anyOf"}
            return {**rest, **scalar, "type": [scalar["type"], "null"]}
        return value
    if isinstance(value, list):
        return [as_type_lists(v) for v in value]
    return value


def model_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "serialization")
         for model in (BatchDetail, ErrorBody, ParameterErrorBody, HealthBody)],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = top["$defs"]
    return defs


def test_it_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    # Every answer the function gives: the read (and its preflight) and the health check.
    assert set(document["paths"]) == {"/", HEALTH_PATH}
    assert set(document["paths"]["/"]) == {"get", "options"}
    assert set(document["paths"][HEALTH_PATH]) == {"get"}


BATCH_STATUS = "#/components/schemas/BatchStatus"


def test_component_schemas_are_the_pydantic_models(document: dict[str, Any]) -> None:
    documented = copy.deepcopy(document["components"]["schemas"])
    # The one schema of the document's own (see the next test), where the model has a string.
    assert documented["Batch"]["properties"]["status"] == {"$ref": BATCH_STATUS}
    documented["Batch"]["properties"]["status"] = {"type": "string"}
    del documented["BatchStatus"]
    # And the health body's error, a string or absent: the model's None is never sent
    # (Report.response dumps it with exclude_none), so the document has no null for it.
    error = documented["HealthBody"]["properties"]["error"]
    assert without_prose(error) == {"type": "string"}
    assert "error" not in documented["HealthBody"]["required"]
    documented["HealthBody"]["properties"]["error"] = {"type": ["string", "null"], "default": None}
    generated = model_schemas()
    assert set(documented) == set(generated)
    for name, schema in generated.items():
        assert without_prose(documented[name]) == without_prose(as_type_lists(schema)), name


def test_the_comparison_sees_every_property(document: dict[str, Any]) -> None:
    # Contact has a property called "title", which once went missing from the document unseen.
    contact = without_prose(document["components"]["schemas"]["Contact"])
    assert "title" in contact["properties"]
    assert list(contact["properties"]) == list(model_schemas()["Contact"]["properties"])
    assert without_prose({"title": "T", "properties": {"title": {"title": "T"}}}) == {
        "properties": {"title": {}}
    }


def test_batch_status_is_the_databases_enumeration(
    document: dict[str, Any], database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        checks = [
            row[0] for row in conn.execute(
                "select pg_get_constraintdef(oid) from pg_constraint"
                " where conrelid = 'public.call_batches'::regclass and contype = 'c'"
                " and pg_get_constraintdef(oid) like '%(status%'"
            )
        ]
    assert len(checks) == 1, checks
    allowed = re.findall(r"'([^']*)'::text", checks[0])
    status = document["components"]["schemas"]["BatchStatus"]
    assert (status["type"], status["enum"]) == ("string", allowed)


def test_contact_pagination_has_the_cursor_contract(document: dict[str, Any]) -> None:
    pagination = document["components"]["schemas"]["ContactPagination"]
    assert list(pagination["properties"]) == ["total", "limit", "offset", "next_cursor", "has_more"]
    assert pagination["properties"]["offset"] == {"type": ["integer", "null"]}
    assert pagination["properties"]["next_cursor"] == {"type": ["string", "null"]}


def query_parameters(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        p["name"]: p for p in document["paths"]["/"]["get"]["parameters"] if p["in"] == "query"
    }


def test_query_parameters_and_their_rules(document: dict[str, Any]) -> None:
    query = query_parameters(document)
    assert list(query) == [
        "batch_id", "contact_status", "contact_limit", "contact_offset", "contact_cursor"
    ]
    assert [name for name, p in query.items() if p.get("required")] == ["batch_id"]
    assert query["contact_status"]["schema"] == {"$ref": "#/components/schemas/ContactStatus"}
    assert document["components"]["schemas"]["ContactStatus"]["enum"] == [
        s.value for s in ContactStatus
    ]
    assert query["contact_limit"]["schema"]["default"] == params.DEFAULT_LIMIT
    assert query["contact_limit"]["schema"]["minimum"] == 1
    assert "maximum" not in query["contact_limit"]["schema"], "above the maximum is clamped"
    assert query["contact_offset"]["schema"]["maximum"] == params.MAX_OFFSET
    cursor = query["contact_cursor"]["schema"]
    assert (cursor["pattern"], cursor["maxLength"]) == ("^[A-Za-z0-9_-]+$", 512)


def error_codes(response: dict[str, Any]) -> set[str]:
    (base, narrowing) = response["content"]["application/json"]["schema"]["allOf"]
    assert base["$ref"] in (
        "#/components/schemas/ErrorBody", "#/components/schemas/ParameterErrorBody"
    )
    # Required, so that the generated types' `code` is the narrowed union and not optional.
    assert "code" in narrowing["required"]
    return set(narrowing["properties"]["code"]["enum"])


def test_every_error_status_with_its_codes(document: dict[str, Any]) -> None:
    responses = document["paths"]["/"]["get"]["responses"]
    assert set(responses) == {"200", "304", "400", "401", "403", "404", "500"}
    documented = {int(s): error_codes(r) for s, r in responses.items() if int(s) >= 400}
    # 405 is any other method's answer: a response of the components, under no operation.
    documented[405] = error_codes(document["components"]["responses"]["MethodNotAllowed"])
    assert documented == CODES_BY_STATUS
    assert "MethodNotAllowed" in document["paths"]["/"]["options"]["description"]
    every_code = set().union(*CODES_BY_STATUS.values())
    assert every_code == {code.value for code in ErrorCode}


def test_a_400_names_one_of_the_query_parameters(document: dict[str, Any]) -> None:
    response = document["paths"]["/"]["get"]["responses"]["400"]
    (_, narrowing) = response["content"]["application/json"]["schema"]["allOf"]
    assert narrowing["properties"]["parameter"]["enum"] == list(query_parameters(document))


def test_headers_are_the_ones_the_function_sends(document: dict[str, Any]) -> None:
    headers = document["components"]["headers"]
    assert headers["X-Request-Id"]["schema"]["pattern"] == (
        f"^{http._SANE_REQUEST_ID.pattern}$"
    )
    assert headers["Access-Control-Expose-Headers"]["schema"]["const"] == http.EXPOSED_HEADERS
    assert headers["Cache-Control"]["schema"]["const"] == "no-store"
    responses = document["paths"]["/"]["get"]["responses"]
    assert "ETag" in responses["200"]["headers"]
    assert "ETag" in responses["304"]["headers"]
    assert "content" not in responses["304"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
    preflight = document["paths"]["/"]["options"]["responses"]["204"]["headers"]
    assert preflight["Access-Control-Allow-Methods"]["schema"]["const"] == http.ALLOWED_METHODS
    refused = document["components"]["responses"]["MethodNotAllowed"]["headers"]
    assert refused["Allow"] == {"$ref": "#/components/headers/Allow"}
    assert headers["Allow"]["schema"]["const"] == http.ALLOWED_METHODS


def test_the_preflight_allows_every_documented_request_header(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/"]["get"]["parameters"]
    sent = {p["name"].lower() for p in parameters if p["in"] == "header"}
    allowed = {h.strip() for h in http.ALLOWED_HEADERS.split(",")}
    assert sent | {"authorization"} <= allowed


# --- GET /health ------------------------------------------------------------------------------


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """``schema`` (which refers to the document's components) as a validator."""
    root = {**schema, "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def health_schema(document: dict[str, Any], status: int) -> dict[str, Any]:
    responses = document["paths"][HEALTH_PATH]["get"]["responses"]
    schema: dict[str, Any] = responses[str(status)]["content"]["application/json"]["schema"]
    return schema


def test_the_health_check_needs_no_token_and_answers_200_or_503(document: dict[str, Any]) -> None:
    operation = document["paths"][HEALTH_PATH]["get"]
    assert operation["security"] == []
    assert "parameters" not in operation
    responses = operation["responses"]
    assert set(responses) == {"200", "503"}
    common = {name: {"$ref": f"#/components/headers/{name}"}
              for name in ("X-Request-Id", "Cache-Control")}
    assert responses["503"]["headers"] == common
    assert responses["200"]["headers"] == {
        **common, "Access-Control-Expose-Headers": {
            "$ref": "#/components/headers/Access-Control-Expose-Headers"
        },
    }
    for status in (200, 503):
        (base, _) = health_schema(document, status)["allOf"]
        assert base == {"$ref": "#/components/schemas/HealthBody"}
        # The documented example is an answer of that status.
        example = responses[str(status)]["content"]["application/json"]["example"]
        assert validator(document, health_schema(document, status)).is_valid(example)


REPORTS = [Report(database=d, key_set=k) for d in (True, False) for k in (True, False)]


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: f"db={r.database},keys={r.key_set}")
def test_each_health_answer_fits_its_status_and_no_other(
    document: dict[str, Any], report: Report,
) -> None:
    response = report.response()
    body = json.loads(response.get_data())
    assert response.status_code == (200 if report.ok else 503)
    other = 503 if report.ok else 200
    assert validator(document, health_schema(document, response.status_code)).is_valid(body), body
    assert not validator(document, health_schema(document, other)).is_valid(body), body
    # An answer with a part changed is refused: the schemas hold what the parts say.
    flipped = {**body, "status": "down" if report.ok else "ok"}
    assert not validator(document, health_schema(document, response.status_code)).is_valid(flipped)


@pytest.fixture
def rest(env: dict[str, str]) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{env['SUPABASE_URL']}/rest/v1", assert_all_called=False) as router:
        router.head("/").respond(200)
        yield router


def test_the_health_answers_carry_the_documented_headers(
    document: dict[str, Any], make_app: AppFactory, rest: respx.MockRouter,
    key_server: KeySetServer,
) -> None:
    up = make_app().get(HEALTH_PATH)
    key_server.status = 503
    down = make_app().get(HEALTH_PATH)
    responses = document["paths"][HEALTH_PATH]["get"]["responses"]
    for answer in (up, down):
        documented = responses[str(answer.status_code)]
        assert answer.content_type == "application/json; charset=utf-8"
        assert validator(document, health_schema(document, answer.status_code)).is_valid(
            json.loads(answer.data)
        )
        for name, ref in documented["headers"].items():
            header = document["components"]["headers"][ref["$ref"].rsplit("/", 1)[1]]
            assert header["required"] is True
            assert validator(document, header["schema"]).is_valid(answer.headers[name]), name
    assert (up.status_code, down.status_code) == (200, 503)
