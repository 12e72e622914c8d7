"""One deadline per request, and a watchdog that acts when a blocking call outlives it.

A blocking driver call (psycopg waiting on a socket) cannot be given a deadline of its own: a
server that stops answering, or a network that drops packets, holds it until TCP gives up,
minutes later. The watchdog runs on one thread per store and, when an armed alarm is due, runs
its action (closing the socket under the waiting call), unless the call finished first.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Deadline:
    """A point in time a piece of work must be done by, counted on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())


class Alarm:
    """An action due at a time; ``cancel()`` and the firing exclude each other."""

    def __init__(self, at: float, action: Callable[[], None]) -> None:
        self.at = at
        self._action = action
        self._lock = threading.Lock()
        self._state = "armed"

    @property
    def armed(self) -> bool:
        return self._state == "armed"

    def cancel(self) -> bool:
        """Disarms the alarm; True when it had already fired (its action ran, or is running:
        the lock makes the caller wait for it to finish)."""
        with self._lock:
            if self._state == "armed":
                self._state = "cancelled"
            return self._state == "fired"

    def fire(self) -> None:
        with self._lock:
            if self._state != "armed":
                return
            self._state = "fired"
            self._action()


class Watchdog:
    """Fires alarms on one daemon thread, started on first use (after a fork, in the worker)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, delay: float, action: Callable[[], None]) -> Alarm:
        alarm = Alarm(time.monotonic() + delay, action)
        with self._cond:
            heapq.heappush(self._heap, (alarm.at, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            # Only an alarm due before all others changes how long the thread should sleep;
            # waking it for every request would cost each a thread switch.
            if self._heap[0][2] is alarm:
                self._cond.notify()
        return alarm

    def _next_due(self) -> Alarm:
        with self._cond:
            while True:
                # Cancelled alarms are the common case (the call finished): drop them lazily.
                while self._heap and not self._heap[0][2].armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            # Fired outside the heap's lock, so a slow action never delays arming.
            self._next_due().fire()
