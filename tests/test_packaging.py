"""What a deploy uploads and installs, and what the scripts need from the machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pathspec
import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from calls_batch_get.store.postgres import DEFAULT_MAX_CONNECTIONS
from scripts.lock import DEPLOY_PYTHON, REQUIREMENTS, project_dependencies
from tests.conftest import ROOT

# --- .gcloudignore: the upload is exactly the function --------------------------------------------

# What a developer's checkout holds besides the tracked files after a run, a test or a mishap.
LITTER = (
    ".env",
    ".env.local",
    "service-account.pem",
    "key.json",
    "calls_batch_get.egg-info/PKG-INFO",
    "calls_batch_get/__pycache__/handler.cpython-313.pyc",
    "calls_batch_get/store/__pycache__/postgres.cpython-313.pyc",
    "calls_batch_get/store/postgres.pyc",
    ".venv/bin/python",
    ".mypy_cache/3.11/cache.json",
    "node_modules/openapi-typescript/package.json",
    "build/lib/main.py",
    "README.md",
)


def upload_set(root: Path) -> set[str]:
    """The files `gcloud ... --source=root` uploads: gitignore rules from .gcloudignore, with
    ignored folders not entered, as gcloud walks them."""
    rules = (root / ".gcloudignore").read_text().splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(rules)
    uploaded = set()
    for folder, subfolders, files in os.walk(root):
        here = Path(folder).relative_to(root)
        subfolders[:] = [d for d in subfolders if not spec.match_file(f"{here / d}/")]
        uploaded |= {str(here / f) for f in files if not spec.match_file(str(here / f))}
    return {path.removeprefix("./") for path in uploaded}


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # A file deleted in the work tree but not yet committed is not part of a deploy.
    return [path for path in listed if (ROOT / path).is_file()]


def test_upload_is_main_requirements_and_the_package_only(tmp_path: Path) -> None:
    tracked = tracked_files()
    for path in [*tracked, *LITTER]:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path in tracked:
            shutil.copyfile(ROOT / path, target)
        else:
            target.write_text("litter")
    package = {p for p in tracked if p.startswith("calls_batch_get/") and p.endswith(".py")}
    assert "calls_batch_get/store/postgres.py" in package
    assert upload_set(tmp_path) == {"main.py", "requirements.txt", *package}


# --- requirements.txt: exact pins, in step with pyproject.toml -----------------------------------


def pins() -> dict[NormalizedName, str]:
    pinned = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"not an exact pin: {line}"
            pinned[canonicalize_name(requirement.name)] = specifier.version
    return pinned


def deploy_environment(extra: str = "") -> dict[str, str]:
    return {
        **{key: str(value) for key, value in default_environment().items()},
        "python_version": DEPLOY_PYTHON,
        "python_full_version": f"{DEPLOY_PYTHON}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "extra": extra,
    }


def closure(requirements: list[Requirement]) -> Iterator[tuple[NormalizedName, Requirement]]:
    """Every distribution the requirements bring in on the deploy runtime, read from the
    metadata of what is installed here (which is what requirements.txt installed)."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        yield name, requirement
        for line in metadata.requires(name) or []:
            child = Requirement(line)
            wanted = ["", *sorted(requirement.extras)]
            if child.marker is None or any(
                child.marker.evaluate(deploy_environment(extra)) for extra in wanted
            ):
                pending.append(child)


def test_requirements_pin_every_package_the_project_brings_in_and_nothing_else() -> None:
    pinned = pins()
    reached = {}
    for name, requirement in closure([Requirement(d) for d in project_dependencies()]):
        assert name in pinned, f"{name} ({requirement}) is installed by a deploy but not pinned"
        assert pinned[name] in requirement.specifier, f"{name}=={pinned[name]} breaks {requirement}"
        reached[name] = pinned[name]
    assert reached == pinned, "pins that nothing needs: run scripts/lock.py"


def test_requirements_pin_what_the_suite_runs_on() -> None:
    installed = {name: metadata.version(name) for name in pins()}
    assert installed == pins()


def test_requirements_name_the_web_stack_the_code_imports() -> None:
    assert {"flask", "werkzeug", "functions-framework"} <= set(pins())


# --- the deploy recipe (docs/deployment.md, which the README's Deployment points to) -------------

# The smallest Supabase compute's transaction-pooler client limit.
POOLER_CLIENT_LIMIT = 200
DEPLOY_RECIPE = ROOT / "docs" / "deployment.md"
ENV_EXAMPLE = ROOT / "ops" / "env.example.yaml"
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def recipe_shell() -> list[str]:
    """The recipe's shell lines (its ```sh blocks), continuation lines joined."""
    blocks = SHELL_BLOCK.findall(DEPLOY_RECIPE.read_text())
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def deploy_commands() -> list[str]:
    """The recipe's gcloud deploy commands, of either API (so that a second path would show)."""
    return [line for line in recipe_shell() if line.startswith(("gcloud functions deploy",
                                                                "gcloud run deploy"))]


def deploy_command() -> str:
    """The recipe's one deploy: `gcloud run deploy --function`, the runbook's one path."""
    (command,) = deploy_commands()
    assert command.startswith("gcloud run deploy ")
    return command


def test_the_readme_deployment_points_to_the_recipe() -> None:
    """Code and .env.example send operators to "README, Deployment": it must be there, and lead
    to the recipe the test below checks."""
    readme = (ROOT / "README.md").read_text()
    section = " ".join(readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0].split())
    assert "](docs/deployment.md" in section
    assert "](docs/operations.md)" in section
    assert "calls_batch_get" in section
    # The one deploy path is the recipe's, and the sizing it states is the recipe's.
    command = deploy_command()
    assert "Deploy with `gcloud run deploy --function`" in section
    assert f"(`--base-image={flag(command, 'base-image')}`)" in section
    cpu, memory = flag(command, "cpu"), flag(command, "memory").removesuffix("Mi")
    assert f"{cpu} CPU, {memory} MiB" in section
    assert f"{flag(command, 'concurrency')} requests per instance" in section
    smallest, largest = flag(command, "min-instances"), flag(command, "max-instances")
    assert f"{smallest} to {largest} instances" in section


def flag(command: str, name: str) -> str:
    values: list[str] = re.findall(rf"--{name}=(\S+)", command)
    (value,) = values
    return value


def deploy_settings(command: str) -> dict[str, str]:
    """The environment the deploy sets: the file the recipe makes from ops/env.example.yaml."""
    assert flag(command, "env-vars-file") == '"$ENV_FILE"'
    (made,) = [line for line in recipe_shell() if line.endswith('> "$ENV_FILE"')]
    assert " ops/env.example.yaml " in made
    values: dict[str, str] = yaml.safe_load(ENV_EXAMPLE.read_text())
    return values


def test_the_deploy_recipe_matches_the_code() -> None:
    command = deploy_command()
    runtime = f"python{DEPLOY_PYTHON.replace('.', '')}"
    assert flag(command, "base-image") == runtime
    assert flag(command, "function") == "calls_batch_get"
    assert flag(command, "source") == "."
    max_instances = int(flag(command, "max-instances"))
    assert max_instances * DEFAULT_MAX_CONNECTIONS < POOLER_CLIENT_LIMIT
    settings = deploy_settings(command)
    assert settings["THREADS"] == flag(command, "concurrency")
    assert settings["GOOGLE_CLOUD_PROJECT"]
    for secret in flag(command, "set-secrets").split(","):
        assert re.fullmatch(r"[A-Z_]+=[a-z-]+:[0-9]+", secret), "pinned to a version"
    assert flag(command, "service-account")
    assert flag(command, "build-service-account")
    # The runbook's one path only: no command of the Cloud Functions API beside it.
    assert not [line for line in recipe_shell() if line.startswith("gcloud functions")]


def gcloud_env_vars(value: str) -> dict[str, str]:
    """What gcloud makes of a --set-env-vars or --update-env-vars value: KEY=VALUE items split on
    commas, or on DELIM after a leading ^DELIM^ (`gcloud topic escaping`). An item that is no
    KEY=VALUE (the second origin of a bare comma list) fails the deploy, and fails this too."""
    value = value.strip("'\"")
    delimiter = ","
    if escaped := re.match(r"\^([^^]+)\^", value):
        delimiter, value = escaped[1], value[escaped.end():]
    items = [item.partition("=") for item in value.split(delimiter)]
    for key, equals, _ in items:
        if not equals or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ValueError(f"gcloud refuses {value!r}")
    return {key: item for key, _, item in items}


def test_the_env_vars_reading_is_gclouds() -> None:
    origins = "https://app.example.com,https://admin.example.com"
    with pytest.raises(ValueError, match="gcloud refuses"):
        gcloud_env_vars(f"THREADS=8,CORS_ALLOW_ORIGINS={origins}")
    assert gcloud_env_vars(f'"^;^THREADS=8;CORS_ALLOW_ORIGINS={origins}"') == {
        "THREADS": "8", "CORS_ALLOW_ORIGINS": origins,
    }


def test_the_recipe_never_gives_cors_origins_as_a_bare_comma_list() -> None:
    given = []
    for line in recipe_shell():
        for value in re.findall(r"--(?:set|update)-env-vars=(\S+)", line):
            if "CORS_ALLOW_ORIGINS" in value:
                # With the alternate delimiter, however many origins it lists.
                assert re.match(r"['\"]?\^[^^,]+\^", value), value
                given.append(gcloud_env_vars(value)["CORS_ALLOW_ORIGINS"])
    assert given, "the recipe shows how to change the origins alone"
    # The deploy's own: several origins, in the file, where a value keeps its commas.
    command = deploy_command()
    assert "--set-env-vars" not in command
    assert len(deploy_settings(command)["CORS_ALLOW_ORIGINS"].split(",")) > 1


# --- the scripts' own needs -----------------------------------------------------------------------


def old_python(tmp_path: Path) -> str:
    """A real Python 3.10 when pyenv has one, else a stand-in that answers like one."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True)
        real = Path(root.stdout.strip()) / "versions/3.10.13/bin/python3.10"
        if real.is_file():
            return str(real)
    stub = tmp_path / "python3.10"
    stub.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.13"\nexit 1\n')
    stub.chmod(0o755)
    return str(stub)


def test_an_old_python_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    python = old_python(tmp_path)
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail; source scripts/venv.sh"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": python, "VENV": str(tmp_path / "venv")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"calls-batch-get needs Python 3.11 or newer; {python} is Python 3.10.13."
        " Set PYTHON to a newer interpreter."
    )
    assert not (tmp_path / "venv").exists()
