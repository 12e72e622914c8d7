"""ops/: the log-based metrics, alert policies and dashboard, against the log lines the function
really writes (read as Cloud Logging files them), and the runbook's commands that create them."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import respx
import yaml
from werkzeug.test import TestResponse

from calls_batch_get.health import HEALTH_PATH
from calls_batch_get.settings import load_settings
from tests.conftest import ROOT, AppFactory
from tests.rows import BATCH, USER
from tests.test_endpoint import CODES_BY_STATUS, READ, serve
from tests.tokens import KeySetServer, TokenFactory

OPS = ROOT / "ops"
RUNBOOK = ROOT / "docs/operations.md"
METRICS = {path.stem: yaml.safe_load(path.read_text()) for path in OPS.glob("metrics/*.yaml")}
POLICIES = {path.name: json.loads(path.read_text()) for path in OPS.glob("policies/*.json")}
DASHBOARD = json.loads((OPS / "dashboard.json").read_text())
SERVICE = "calls-batch-get"
USER_METRIC = "logging.googleapis.com/user/"
# The codes a 5xx answer can carry, which the 5xx metric counts by.
CODES_OF_500S = CODES_BY_STATUS[500]


# --- the log lines, as Cloud Logging files them ------------------------------------------------

# Fields of a line that Cloud Logging takes out of the JSON payload into the entry itself
# ("special JSON fields" of structured logging); the rest is jsonPayload.
_SPECIAL = {
    "severity": "severity",
    "httpRequest": "httpRequest",
    "logging.googleapis.com/trace": "trace",
    "logging.googleapis.com/spanId": "spanId",
    "logging.googleapis.com/trace_sampled": "traceSampled",
}


def as_entry(line: dict[str, Any]) -> dict[str, Any]:
    """One stdout line of the function as the LogEntry Cloud Run's logging makes of it."""
    entry: dict[str, Any] = {
        "logName": "projects/some-project/logs/run.googleapis.com%2Fstdout",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": SERVICE}},
        "jsonPayload": {k: v for k, v in line.items() if k not in _SPECIAL},
    }
    for field, name in _SPECIAL.items():
        if field in line:
            entry[name] = line[field]
    return entry


@pytest.fixture
def rest(env: dict[str, str]) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{env['SUPABASE_URL']}/rest/v1", assert_all_called=False) as router:
        yield router


Line = dict[str, Any]


@pytest.fixture
def lines(
    make_app: AppFactory, rest: respx.MockRouter, tokens: TokenFactory, key_server: KeySetServer,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, tuple[Line, str | None]]:
    """One real request line of each kind the metrics must tell apart, with its answer's code."""
    token = {"Authorization": f"Bearer {tokens.es256(USER)}"}
    query = f"/?batch_id={BATCH}"
    rest.head("/").respond(200)
    client = make_app()
    capsys.readouterr()
    found: dict[str, tuple[Line, str | None]] = {}

    def note(kind: str, response: TestResponse) -> None:
        (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()
                   if '"httpRequest"' in text]
        found[kind] = (line, json.loads(response.data).get("code") if response.data else None)

    serve(rest)
    note("ok", client.get(query, headers=token))
    note("missing_token", client.get(query))
    note("preflight", client.options(
        query, headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}))
    note("health_ok", client.get(HEALTH_PATH))
    rest.get(READ).respond(503, json={"code": "PGRST001", "message": "down"})
    note("database_error", client.get(query, headers=token))
    rest.get(READ).mock(side_effect=RuntimeError("boom"))
    note("internal_error", client.get(query, headers=token))
    # A new instance whose key service fails, and whose health check says so.
    key_server.status = 503
    down = make_app()
    note("auth_unavailable", down.get(query, headers=token))
    note("health_down", down.get(HEALTH_PATH))
    return found


@pytest.fixture
def entries(lines: dict[str, tuple[Line, str | None]]) -> dict[str, dict[str, Any]]:
    return {kind: as_entry(line) for kind, (line, _) in lines.items()}


def test_the_request_lines_are_the_ones_the_metrics_expect(
    lines: dict[str, tuple[Line, str | None]],
) -> None:
    statuses = {kind: line["status"] for kind, (line, _) in lines.items()}
    assert statuses == {
        "ok": 200, "missing_token": 401, "preflight": 204, "health_ok": 200,
        "database_error": 500, "internal_error": 500, "auth_unavailable": 500, "health_down": 503,
    }
    # Each error answer's line carries the answer's own code; a success, a preflight and the
    # health check (whose 503 names what is down in `error`, with no code) carry none.
    for kind in ("missing_token", "database_error", "internal_error", "auth_unavailable"):
        line, code = lines[kind]
        assert code == kind
        assert line["code"] == kind
    assert {lines[kind][1] for kind in ("database_error", "internal_error",
                                        "auth_unavailable")} == CODES_OF_500S
    for kind in ("ok", "preflight", "health_ok", "health_down"):
        line, code = lines[kind]
        assert code is None
        assert "code" not in line, kind
    assert lines["health_down"][0]["error"].startswith("Unavailable: ")


# --- a small evaluator of the filters' subset of the Logging query language --------------------

_TERM = re.compile(
    r'(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>>=|<=|!=|=|>|<)\s*(?P<value>"[^"]*"|-?\d+(\.\d+)?)'
)
_LOG_ID = re.compile(r'log_id\("(?P<id>[^"]+)"\)')


def resolve(entry: dict[str, Any], field: str) -> Any:
    value: Any = entry
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def term_matches(entry: dict[str, Any], term: str) -> bool:
    negated = term.startswith("NOT ")
    term = term.removeprefix("NOT ").strip()
    if found := _LOG_ID.fullmatch(term):
        log_name: str = entry["logName"]
        result = log_name.endswith("/logs/" + found["id"].replace("/", "%2F"))
    else:
        parsed = _TERM.fullmatch(term)
        assert parsed, f"a term the evaluator does not know: {term!r}"
        actual = resolve(entry, parsed["field"])
        raw = parsed["value"]
        if actual is None:
            result = False
        elif raw.startswith('"'):
            assert parsed["op"] == "=", term
            result = str(actual) == raw.strip('"')
        else:
            number, op = float(raw), parsed["op"]
            result = bool({">=": actual >= number, "<=": actual <= number, ">": actual > number,
                           "<": actual < number, "=": actual == number}[op])
    return result != negated


def matches(entry: dict[str, Any], query: str) -> bool:
    terms = [t.strip() for t in " ".join(query.split()).split(" AND ")]
    return all(term_matches(entry, term) for term in terms)


def extract(entry: dict[str, Any], extractor: str) -> Any:
    found = re.fullmatch(r"EXTRACT\((?P<field>[\w.]+)\)", extractor)
    assert found, extractor
    return resolve(entry, found["field"])


def test_the_evaluator_reads_what_it_is_given() -> None:
    entry = as_entry({"severity": "ERROR", "status": 500, "error": "x",
                      "httpRequest": {"requestUrl": "/"}})
    assert matches(entry, 'jsonPayload.status>=500 AND jsonPayload.error="x"')
    assert not matches(entry, 'jsonPayload.status>=501')
    assert not matches(entry, 'NOT httpRequest.requestUrl="/"')
    assert matches(entry, 'log_id("run.googleapis.com/stdout") AND severity="ERROR"')
    assert not matches(entry, 'log_id("run.googleapis.com/requests")')
    assert "status" not in entry, "the special fields leave the payload"
    assert extract(entry, "EXTRACT(jsonPayload.error)") == "x"
    assert extract(entry, "EXTRACT(jsonPayload.code)") is None


# --- the metrics ----------------------------------------------------------------------------------


def test_the_5xx_metric_counts_exactly_the_500s_by_their_code(
    entries: dict[str, dict[str, Any]],
) -> None:
    metric = METRICS["calls_batch_get_5xx"]
    counted = {kind for kind, entry in entries.items() if matches(entry, metric["filter"])}
    # The health check's 503 is the uptime check's to report, not a user's failed request.
    assert counted == {"database_error", "internal_error", "auth_unavailable"}
    for kind in counted:
        labels = {key: extract(entries[kind], e) for key, e in metric["labelExtractors"].items()}
        assert labels["code"] == kind
        assert labels["cause"], f"{kind} names no cause"
    assert extract(entries["database_error"], metric["labelExtractors"]["cause"]) == (
        "httpx.HTTPStatusError"
    )


def test_the_latency_metric_takes_every_get_but_the_health_checks(
    entries: dict[str, dict[str, Any]],
) -> None:
    metric = METRICS["calls_batch_get_latency_ms"]
    taken = {kind for kind, entry in entries.items() if matches(entry, metric["filter"])}
    assert taken == {"ok", "missing_token", "database_error", "internal_error",
                     "auth_unavailable"}
    for kind in taken:
        value = extract(entries[kind], metric["valueExtractor"])
        assert isinstance(value, float)
        assert value > 0
        assert extract(entries[kind], metric["labelExtractors"]["status"]) == (
            entries[kind]["jsonPayload"]["status"]
        )
    assert metric["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert metric["metricDescriptor"]["unit"] == "ms"


@pytest.mark.parametrize("name", sorted(METRICS))
def test_each_metric_declares_the_labels_it_extracts(name: str) -> None:
    metric = METRICS[name]
    declared = [label["key"] for label in metric["metricDescriptor"]["labels"]]
    assert declared == list(metric["labelExtractors"])
    assert metric["metricDescriptor"]["metricKind"] == "DELTA"
    # The service's own lines only: never Cloud Run's request log, which has no jsonPayload.
    assert f'resource.labels.service_name="{SERVICE}"' in metric["filter"]
    assert 'log_id("run.googleapis.com/stdout")' in metric["filter"]


# --- alert policies and the dashboard -----------------------------------------------------------


def metric_of(filter_: str) -> str:
    found = re.search(r'metric\.type="([^"]+)"', filter_)
    assert found, filter_
    return found[1]


def labels_of(metric_type: str) -> set[str]:
    name = metric_type.removeprefix(USER_METRIC)
    assert name in METRICS, f"{metric_type} is none of ops/metrics/"
    return {label["key"] for label in METRICS[name]["metricDescriptor"]["labels"]}


def charted() -> list[tuple[str, dict[str, Any]]]:
    """Every (filter, aggregation) of the policies' conditions and the dashboard's charts."""
    found: list[tuple[str, dict[str, Any]]] = []
    for policy in POLICIES.values():
        for condition in policy["conditions"]:
            threshold = condition["conditionThreshold"]
            found.extend((threshold["filter"], a) for a in threshold["aggregations"])
    for widget in DASHBOARD["gridLayout"]["widgets"]:
        for data_set in widget["xyChart"]["dataSets"]:
            series = data_set["timeSeriesQuery"]["timeSeriesFilter"]
            found.append((series["filter"], series["aggregation"]))
    return found


def test_every_chart_and_condition_reads_a_metric_by_labels_it_has() -> None:
    for filter_, aggregation in charted():
        metric_type = metric_of(filter_)
        if not metric_type.startswith(USER_METRIC):
            continue  # Cloud Run's and the uptime check's own metrics
        groups = {g.removeprefix("metric.label.") for g in aggregation.get("groupByFields", [])}
        assert groups <= labels_of(metric_type), (filter_, groups)
        kind = METRICS[metric_type.removeprefix(USER_METRIC)]["metricDescriptor"]["valueType"]
        assert aggregation["perSeriesAligner"] == "ALIGN_DELTA"
        if kind == "DISTRIBUTION":
            # Percentiles of the merged distributions of every instance, not a mean of theirs.
            assert aggregation["crossSeriesReducer"].startswith("REDUCE_PERCENTILE_")
        else:
            assert aggregation["crossSeriesReducer"] == "REDUCE_SUM"


def test_the_policies_alert_on_5xx_by_code_and_on_the_p95() -> None:
    five = POLICIES["5xx.json"]["conditions"][0]["conditionThreshold"]
    assert metric_of(five["filter"]) == USER_METRIC + "calls_batch_get_5xx"
    assert five["aggregations"][0]["groupByFields"] == ["metric.label.code", "metric.label.cause"]
    assert "${metric.label.code}" in POLICIES["5xx.json"]["documentation"]["content"]
    # The alert's and the dashboard's chart alike: the 5xx by code first.
    groupings = [aggregation["groupByFields"] for filter_, aggregation in charted()
                 if metric_of(filter_) == USER_METRIC + "calls_batch_get_5xx"]
    assert len(groupings) == 2
    assert all(fields[0] == "metric.label.code" for fields in groupings), groupings
    p95 = POLICIES["latency-p95.json"]["conditions"][0]["conditionThreshold"]
    assert metric_of(p95["filter"]) == USER_METRIC + "calls_batch_get_latency_ms"
    assert p95["aggregations"][0]["crossSeriesReducer"] == "REDUCE_PERCENTILE_95"
    uptime = POLICIES["health.json"]["conditions"][0]["conditionThreshold"]
    assert metric_of(uptime["filter"]) == "monitoring.googleapis.com/uptime_check/check_passed"


def runbook_sections() -> set[str]:
    return {line.lstrip("#").strip() for line in RUNBOOK.read_text().splitlines()
            if line.startswith("#")}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_policy_points_to_a_section_of_the_runbook(name: str) -> None:
    content = POLICIES[name]["documentation"]["content"]
    assert "docs/operations.md" in content
    (section,) = re.findall(r'section "([^"]+)"', content)
    assert section in runbook_sections()


# --- the runbook's commands and the deploy's settings -------------------------------------------


def runbook_commands() -> str:
    """The runbook's shell, continuation lines joined."""
    return RUNBOOK.read_text().replace("\\\n", " ")


def test_the_runbook_creates_every_file_of_ops() -> None:
    text = " ".join(runbook_commands().split())
    for name in METRICS:
        assert (f"gcloud logging metrics create {name}"
                f" --config-from-file=ops/metrics/{name}.yaml") in text
    for name in POLICIES:
        assert f"--policy-from-file=ops/policies/{name}" in text or (
            name == "health.json" and "ops/policies/health.json" in text
        )
    assert "gcloud monitoring dashboards create --config-from-file=ops/dashboard.json" in text


def test_the_runbook_says_what_to_do_for_each_code_of_a_500() -> None:
    # The 5xx alert names the code; the runbook's "A spike of 500s" has a section for each.
    sections = runbook_sections()
    assert "A spike of 500s" in sections
    assert {code for code in CODES_OF_500S if f"`{code}`" in sections} == CODES_OF_500S


def test_the_env_vars_file_keeps_several_origins(env: dict[str, str]) -> None:
    values = yaml.safe_load((OPS / "env.example.yaml").read_text())
    assert all(isinstance(v, str) for v in values.values()), "gcloud wants every value a string"
    settings = load_settings({**values, "SUPABASE_URL": env["SUPABASE_URL"],
                              "SUPABASE_ANON_KEY": "sb_publishable_x"})
    assert settings.cors_allow_origins == ("https://app.example.com", "https://admin.example.com")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                                re.MULTILINE))
    assert set(values) - {"THREADS"} <= documented


def test_the_runbook_never_splits_the_origins_on_commas() -> None:
    text = runbook_commands()
    for command in re.findall(r"--(?:set|update)-env-vars=\S+", text):
        value = command.split("=", 1)[1].lstrip("'\"")
        assert "CORS_ALLOW_ORIGINS" not in value or value.startswith("^;^"), command
    assert "--env-vars-file=" in text


def test_no_file_names_a_project_or_its_service_account() -> None:
    # The runbook's commands take the project from $PROJECT, the files none at all.
    for path in [*OPS.rglob("*.*"), RUNBOOK]:
        text = path.read_text()
        assert not re.search(r"@[a-z][a-z0-9-]+\.iam\.gserviceaccount\.com", text), path
        assert "projects/" not in text or path == RUNBOOK, path


def test_every_cause_the_runbook_names_is_a_class_a_line_can_name() -> None:
    # A line's cause is the failure's module and class (handler._cause): the runbook's must be
    # real ones, or an operator searches for a cause that never comes.
    text = RUNBOOK.read_text()
    named = set(re.findall(r"`((?:psycopg|psycopg_pool|pydantic_core|httpx|calls_batch_get)"
                           r"[\w.]*\.[A-Z]\w+)`", text))
    assert len(named) >= 9, named
    for name in named:
        module, _, cls = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name
