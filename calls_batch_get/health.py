"""``GET /health``: whether this instance could serve a read now, for an uptime probe.

No token is needed and nothing of any agency is read: the answer names the two things a read
depends on (the database, and the key set tokens are verified with) and whether each answered.
A probe's result is kept for a few seconds and shared by every caller meanwhile, one probe at a
time, so that a public URL cannot be turned into load on the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from time import monotonic

from flask import Response
from pydantic import BaseModel, ConfigDict

from calls_batch_get.http import json_response

# Not /healthz: Cloud Run's front end answers some paths ending in "z" itself (its known
# issues), so such a probe would never reach the function.
HEALTH_PATH = "/health"
# Long enough that any number of probes (or anyone else) cost the database one trivial
# statement per instance per window; short enough that an outage shows within a probe period.
CACHE_SECONDS = 5.0


class Part(StrEnum):
    OK = "ok"
    DOWN = "down"


class HealthBody(BaseModel):
    """The answer's body: ``error`` only when something is down (it is then a 503)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: str | None = None
    status: Part
    database: Part
    key_set: Part


# The names the error text gives the parts, in the body's order.
_PART_NAMES = (("database", "the database"), ("key_set", "the key set"))


@dataclass(frozen=True)
class Report:
    """What one probe found."""

    database: bool
    key_set: bool

    @property
    def ok(self) -> bool:
        return self.database and self.key_set

    @property
    def error(self) -> str | None:
        """Fixed text naming what is down (never a cause's own text), or None when nothing is."""
        down = [name for part, name in _PART_NAMES if not getattr(self, part)]
        if not down:
            return None
        return f"Unavailable: {' and '.join(down)}"

    def body(self) -> HealthBody:
        return HealthBody(
            error=self.error,
            status=_part(self.ok),
            database=_part(self.database),
            key_set=_part(self.key_set),
        )

    def response(self) -> Response:
        status = 200 if self.ok else 503
        return json_response(status, self.body().model_dump_json(exclude_none=True))


def _part(up: bool) -> Part:
    return Part.OK if up else Part.DOWN


def _answers(check: Callable[[], bool]) -> bool:
    # A part whose check fails in an unforeseen way is down; the probe itself must not fail.
    try:
        return check()
    except Exception:
        return False


class HealthCheck:
    """Probes ``database`` and ``key_set`` (each bounded and True when it answered), and keeps
    the result for ``CACHE_SECONDS``. Callers that arrive while a probe runs wait for it and
    share its result instead of starting their own."""

    def __init__(self, database: Callable[[], bool], key_set: Callable[[], bool]) -> None:
        self._database = database
        self._key_set = key_set
        self._lock = threading.Lock()
        self._report: Report | None = None
        self._probed_at = 0.0
        self.probes = 0
        """How many probes have run, for tests and logs."""

    def report(self) -> Report:
        with self._lock:
            if self._report is None or monotonic() - self._probed_at >= CACHE_SECONDS:
                self.probes += 1
                self._report = Report(
                    database=_answers(self._database), key_set=_answers(self._key_set)
                )
                # From when the answer came: a slow probe's result still serves its full window.
                self._probed_at = monotonic()
            return self._report
