"""The watchdog that cuts a blocking database call once its deadline passed (deadline.py): one
thread for many alarms, each firing on time and never after it was called off."""

from __future__ import annotations

import threading
import time

from calls_batch_get.deadline import Watchdog

# A thread's wake-up on a busy machine.
SLACK_SECONDS = 0.5


def test_an_alarm_due_before_those_armed_earlier_fires_on_time() -> None:
    # A read with a short budget armed while another read's long alarm is pending: the thread,
    # asleep until the long one, must wake for the short one.
    watchdog = Watchdog("test-watchdog")
    late = watchdog.arm(30.0, lambda: None)
    time.sleep(0.2)  # the thread is asleep until the long alarm
    fired = threading.Event()
    started = time.monotonic()
    soon = watchdog.arm(0.1, fired.set)
    try:
        assert fired.wait(0.1 + SLACK_SECONDS)
        assert time.monotonic() - started < 0.1 + SLACK_SECONDS
        assert soon.cancel() is True  # it fired
    finally:
        late.cancel()


def test_an_alarm_called_off_in_time_never_fires() -> None:
    watchdog = Watchdog("test-watchdog")
    fired = threading.Event()
    alarm = watchdog.arm(0.1, fired.set)
    assert alarm.cancel() is False
    assert not fired.wait(0.1 + SLACK_SECONDS)


def test_alarms_fire_in_the_order_they_are_due() -> None:
    watchdog = Watchdog("test-watchdog")
    order: list[str] = []
    done = threading.Event()
    def last() -> None:
        order.append("third")
        done.set()

    watchdog.arm(0.6, last)
    time.sleep(0.1)
    watchdog.arm(0.2, lambda: order.append("first"))
    watchdog.arm(0.3, lambda: order.append("second"))
    assert done.wait(0.5 + SLACK_SECONDS)
    assert order == ["first", "second", "third"]
