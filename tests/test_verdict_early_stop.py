"""Early stop on fatal findings: which findings end a job, and when (pure logic)."""

from __future__ import annotations

import pytest

from orchestrator.job.fatal import FatalWatch, policy


@pytest.mark.parametrize(
    ("kind", "title", "expected"),
    [
        ("bug", "kernel BUG in takedown_cpu", "stop"),
        ("oops", "BUG: unable to handle kernel NULL pointer dereference in __mmdrop", "stop"),
        ("panic", "kernel panic: Fatal exception", "stop"),
        ("hung_task", "INFO: task hung in cpus_read_lock", "stop"),
        ("lockdep", "possible deadlock in cpus_read_lock", "stop"),
        ("lockdep", "WARNING: suspicious RCU usage in mmu_notifier_register", None),
        ("rcu_stall", "INFO: rcu detected stall in rcu_torture_fwd_prog", "stuck"),
        ("warning", "WARNING in __mmdrop", None),
        ("kasan", "KASAN: use-after-free Read in mmdrop", None),
    ],
)
def test_policy(kind: str, title: str, expected: str | None) -> None:
    assert policy(kind, title) == expected


def test_a_panicked_warning_is_fatal() -> None:
    assert policy("warning", "WARNING in __mmdrop", panicked=True) == "stop"


def test_fatal_stops_when_the_report_is_complete_or_the_grace_is_over() -> None:
    w = FatalWatch(grace=15)
    assert w.should_stop(100.0, 100.0) is None
    w.feed("warning", "WARNING in __mmdrop", False, 100.0)
    assert w.should_stop(200.0, 100.0) is None  # a warning never stops the guest
    w.feed("bug", "kernel BUG in takedown_cpu", False, 110.0)
    assert w.should_stop(111.0, 110.9) is None  # still printing the report
    assert "fatal finding: kernel BUG" in (w.should_stop(113.0, 110.9) or "")  # quiet 2 s
    assert w.should_stop(118.0, 117.9) is not None  # busy console: the grace runs out
    busy = FatalWatch(grace=15)
    busy.feed("bug", "kernel BUG in x", False, 0.0)
    assert busy.should_stop(7.9, 7.8) is None and busy.should_stop(8.0, 7.9) is not None


def test_a_stall_stops_only_a_stuck_guest() -> None:
    w = FatalWatch(grace=15)
    w.feed("rcu_stall", "INFO: rcu detected stall in foo", False, 50.0)
    assert w.should_stop(80.0, 79.0) is None  # the system recovered and goes on printing
    assert w.should_stop(95.0, 79.0) is not None  # 16 s without a console line


def test_grace_zero_never_stops() -> None:
    w = FatalWatch(grace=0)
    w.feed("panic", "kernel panic: x", True, 0.0)
    assert w.should_stop(1000.0, 0.0) is None
