"""A monotonic clock moved by hand, put in place of a module's own ``monotonic``."""

from __future__ import annotations

import pytest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


def hand_clock(monkeypatch: pytest.MonkeyPatch, target: str) -> Clock:
    """``target`` (``"calls_batch_get.keyset.monotonic"``) reads the returned clock."""
    clock = Clock()
    monkeypatch.setattr(target, lambda: clock.now)
    return clock
