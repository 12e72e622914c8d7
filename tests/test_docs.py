"""What the README and docs/ promise, held to the repository: every relative link names a file
(and a heading) in it and none leaves it, the README's table of contents is its headings, and
its tables, example answer and commands are the code's."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from calls_batch_get.errors import ErrorCode
from calls_batch_get.models import BatchDetail, ContactStatus
from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
# Pages another engineer is writing, linked before they land; checked like any other once there.
PENDING = {ROOT / "docs" / "operations.md"}

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); a target has no spaces (an optional "title" may follow).
LINK = re.compile(r"!?\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def prose(text: str) -> str:
    """The text without its fenced code blocks: a link in a code sample is not a link."""
    return FENCE.sub("", text)


def links(page: Path) -> list[tuple[str, str]]:
    return [(m["text"], m["target"]) for m in LINK.finditer(prose(page.read_text()))]


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = title.replace("`", "").strip().lower()
    text = "".join(
        c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN"
    )
    return text.replace(" ", "-")


def headings(page: Path) -> list[tuple[int, str]]:
    return [(len(m["level"]), m["title"]) for m in HEADING.finditer(prose(page.read_text()))]


def anchors(page: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2... for repeated ones."""
    seen: Counter[str] = Counter()
    found = set()
    for _, title in headings(page):
        base = slug(title)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def relative_links() -> Iterator[tuple[Path, str]]:
    for page in PAGES:
        for _, target in links(page):
            if not SCHEME.match(target):
                yield page, target


def test_there_are_pages_and_links_to_check() -> None:
    assert {p.name for p in DOCS} >= {
        "api.md", "benchmarks.md", "decisions.md", "deployment.md", "development.md",
        "testing.md", "typescript.md",
    }
    assert sum(1 for _ in relative_links()) > 50


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_of_the_repository(page: Path) -> None:
    for text, target in links(page):
        if SCHEME.match(target):
            assert target.startswith(("https://", "http://localhost")), (page.name, target)
            continue
        path, _, anchor = target.partition("#")
        assert not path.startswith("/"), f"{page.name}: [{text}]({target}) is absolute"
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: [{text}]({target}) leaves it"
        if resolved in PENDING and not resolved.exists():
            continue
        assert resolved.exists(), f"{page.name}: [{text}]({target}) names nothing"
        if anchor:
            assert resolved.suffix == ".md", f"{page.name}: {target}: an anchor in a non-page"
            assert anchor in anchors(resolved), f"{page.name}: {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_sends_the_reader_outside_the_repository(page: Path) -> None:
    """The specification and the design notes are carried into docs/decisions.md; nothing
    names where they were kept before."""
    text = page.read_text()
    for outside in ("shared/", "DESIGN.md", "seed.txt", "/work/"):
        assert outside not in text, f"{page.name} names {outside}"


def test_the_readme_contents_are_its_headings() -> None:
    text = README.read_text()
    contents = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = [(m["text"], m["target"]) for m in LINK.finditer(contents)]
    sections = [title for level, title in headings(README) if level == 2 and title != "Contents"]
    assert listed == [(title, f"#{slug(title)}") for title in sections]
    assert [title for level, title in headings(README) if level == 1] == ["calls-batch-get"]
    # The order a newcomer reads in; "Deployment" is the section the code's messages name.
    for first, then in [("Prerequisites", "The two commands"), ("The two commands", "One request"),
                        ("One request", "Where the code starts"), ("Where the code starts", "API"),
                        ("API", "Configuration"), ("Configuration", "Deployment")]:
        assert sections.index(first) < sections.index(then)


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in links(README)}
    assert {*DOCS, *PENDING} <= linked


# --- the README's tables and examples are the code's ----------------------------------------------


def section(title: str, page: Path = README) -> str:
    return page.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def first_code(cell: str) -> str | None:
    found = INLINE_CODE.search(cell)
    return found[0].strip("`") if found else None


def test_the_error_tables_are_the_codes_the_function_answers() -> None:
    readme = {(int(row[0]), first_code(row[1])) for row in table_rows(section("API"))
              if row[0].isdigit() and first_code(row[1])}
    api = {(int(row[0]), first_code(row[2])) for row in table_rows(section("Errors", DOCS_API))
           if row[0].isdigit() and first_code(row[2])}
    assert {code for _, code in readme} == {code.value for code in ErrorCode}
    assert readme == api


DOCS_API = ROOT / "docs" / "api.md"


def openapi_query_parameters() -> list[str]:
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    operation = document["paths"]["/"]["get"]
    found = []
    for parameter in operation["parameters"]:
        if "$ref" in parameter:
            name = parameter["$ref"].rsplit("/", 1)[1]
            parameter = document["components"]["parameters"][name]
        if parameter["in"] == "query":
            found.append(parameter["name"])
    return found


def test_the_parameter_tables_are_the_contracts() -> None:
    for text in (section("API"), section("Request", DOCS_API)):
        named = [first_code(row[0]) for row in table_rows(text) if first_code(row[0])]
        assert named == openapi_query_parameters()
    statuses = ", ".join(status.value for status in ContactStatus)
    assert f"one of `{statuses}`" in section("API")


def test_the_configuration_table_is_what_the_settings_read() -> None:
    source = (ROOT / "calls_batch_get" / "settings.py").read_text()
    read = set(re.findall(r"_optional\(env, \"([A-Z_]+)\"\)", source))
    tabled = {first_code(row[0]) for row in table_rows(section("Configuration"))}
    example = set(re.findall(r"^#? ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert tabled == read
    assert read - {"SUPABASE_SERVICE_ROLE_KEY"} == example


def json_blocks(text: str) -> list[str]:
    return re.findall(r"^```json\n(.*?)^```$", text, re.M | re.S)


def test_the_example_answer_is_a_whole_answer_of_the_request_above_it() -> None:
    text = section("One request")
    (block,) = json_blocks(text)
    answer = json.loads(block)
    detail = BatchDetail.model_validate(answer)
    # Every field, in the order the function writes them.
    assert json.loads(detail.model_dump_json()) == answer
    assert list(answer["batch"]) == list(type(detail.batch).model_fields)
    assert list(answer["contacts"][0]) == list(type(detail.contacts[0]).model_fields)
    (line,) = [line for line in text.splitlines() if line.startswith("curl ")]
    query = dict(re.findall(r"[?&]([a-z_]+)=([^&\"]+)", line))
    assert query["batch_id"] == "$BATCH_ID"
    exported = dict(re.findall(r"^export ([A-Z_]+)=(\S+)", README.read_text(), re.M))
    assert str(detail.batch.id) == exported["BATCH_ID"]
    assert detail.contact_pagination.limit == len(detail.contacts) == int(query["contact_limit"])
    assert {c.status.value for c in detail.contacts} == {query["contact_status"]}
    assert detail.contact_pagination.total == getattr(detail.batch, query["contact_status"])


def test_the_exports_are_what_the_runner_prints() -> None:
    printed = re.findall(r"export ([A-Z_]+)=\{", (ROOT / "scripts" / "dev.py").read_text())
    for page in (README, ROOT / "docs" / "development.md"):
        shown = re.findall(r"^export ([A-Z_]+)=", page.read_text(), re.M)
        assert shown == printed, page.name


def test_the_prerequisites_name_the_python_the_scripts_check() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    (minimum,) = re.findall(r'^requires-python = ">=(3\.[0-9]+)"', pyproject, re.M)
    checked = re.findall(r"sys\.version_info < \((3), ([0-9]+)\)",
                         (ROOT / "scripts" / "python_venv.sh").read_text())
    assert checked == [("3", minimum.split(".")[1])]
    assert f"`python3` {minimum} or newer" in section("Prerequisites")


def test_the_typescript_sample_calls_what_the_client_exports() -> None:
    source = (ROOT / "clients" / "typescript" / "src" / "index.ts").read_text()
    (sample,) = re.findall(r"^```ts\n(.*?)^```$", section("From TypeScript"), re.M | re.S)
    package = json.loads((ROOT / "clients" / "typescript" / "package.json").read_text())
    assert f'from "{package["name"]}"' in sample
    assert "export function createClient(" in source
    for method in re.findall(r"client\.([A-Za-z]+)\(", sample):
        assert re.search(rf"^\s+{method}\(", source, re.M), method
    for kind in re.findall(r'answer\.kind === "([a-z_]+)"', sample):
        assert f'readonly kind: "{kind}"' in source, kind


def test_the_timings_and_sizes_the_decisions_state_are_the_codes() -> None:
    # The numbers a reader plans by (how long a key set is kept, how long a fetch may take, how
    # many tokens an instance remembers) are written in docs/decisions.md: each is the code's.
    from calls_batch_get import auth
    from calls_batch_get.store import postgres

    text = " ".join((ROOT / "docs/decisions.md").read_text().split())
    first_backoff, max_backoff = auth.JWKS_BACKOFF_SECONDS
    stated = [
        f"kept for {auth.JWKS_LIFESPAN_SECONDS / 60:g} minutes",
        f"refetches it at most every {auth.JWKS_REFRESH_COOLDOWN_SECONDS:g} s",
        f"at most its {auth.JWKS_FETCH_TIMEOUT_SECONDS:g} s timeout",
        f"none other for {first_backoff:g} s, doubling per failure up to {max_backoff:g} s",
        f"the last {auth.VERIFIED_TOKENS_KEPT:,} tokens",
        f"leeway is {auth.LEEWAY_SECONDS} s",
        f"keepalives ({postgres.KEEPALIVE_IDLE_SECONDS} s idle,"
        f" {postgres.KEEPALIVE_INTERVAL_SECONDS} s \N{MULTIPLICATION SIGN}"
        f" {postgres.KEEPALIVE_COUNT} probes)",
    ]
    assert [phrase for phrase in stated if phrase not in text] == []
