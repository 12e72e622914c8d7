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


def deploy_commands() -> list[str]:
    """The recipe's gcloud deploy commands, continuation lines joined."""
    text = DEPLOY_RECIPE.read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line.startswith(("gcloud functions deploy",
                                                                   "gcloud run deploy"))]


def test_the_readme_deployment_points_to_the_recipe() -> None:
    """Code and .env.example send operators to "README, Deployment": it must be there, and lead
    to the recipe the test below checks."""
    readme = (ROOT / "README.md").read_text()
    section = " ".join(readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0].split())
    assert "](docs/deployment.md" in section
    assert "](docs/operations.md)" in section
    assert "calls_batch_get" in section
    # The sizing it states is the recipe's.
    functions, _ = deploy_commands()
    assert f"(`--runtime={flag(functions, 'runtime')}`)" in section
    cpu, memory = flag(functions, "cpu"), flag(functions, "memory").removesuffix("Mi")
    assert f"{cpu} CPU, {memory} MiB" in section
    assert f"{flag(functions, 'concurrency')} requests per instance" in section
    smallest, largest = flag(functions, "min-instances"), flag(functions, "max-instances")
    assert f"{smallest} to {largest} instances" in section


def flag(command: str, name: str) -> str:
    values: list[str] = re.findall(rf"--{name}=(\S+)", command)
    (value,) = values
    return value


def test_the_deploy_recipe_matches_the_code() -> None:
    functions, run = deploy_commands()
    runtime = f"python{DEPLOY_PYTHON.replace('.', '')}"
    assert flag(functions, "runtime") == runtime
    assert flag(run, "base-image") == runtime
    assert "--gen2" in functions
    for command in (functions, run):
        assert flag(command, "entry-point" if command is functions else "function") == (
            "calls_batch_get"
        )
        max_instances = int(flag(command, "max-instances"))
        assert max_instances * DEFAULT_MAX_CONNECTIONS < POOLER_CLIENT_LIMIT
        threads = re.search(r"THREADS=([0-9]+)", command)
        assert threads
        assert threads[1] == flag(command, "concurrency")
        for secret in flag(command, "set-secrets").split(","):
            assert re.fullmatch(r"[A-Z_]+=[a-z-]+:[0-9]+", secret), "pinned to a version"
        assert "GOOGLE_CLOUD_PROJECT=" in command
        assert flag(command, "service-account")


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
