"""The benchmark runs as its docstring says."""

from __future__ import annotations

import shlex
import subprocess
import sys

import bench.concurrent_reads
from tests.conftest import ROOT


def test_the_usage_line_of_the_docstring_runs() -> None:
    doc = bench.concurrent_reads.__doc__ or ""
    (usage,) = [line.strip() for line in doc.splitlines() if line.strip().startswith(".venv/")]
    words = [w for w in shlex.split(usage) if not w.startswith("[") and not w.endswith("]")]
    assert words[0] == ".venv/bin/python"
    result = subprocess.run(
        [sys.executable, *words[1:], "--rounds", "2", "--delay-ms", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sequential / concurrent (median)" in result.stdout
