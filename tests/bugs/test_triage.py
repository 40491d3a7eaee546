"""Reproduction rates: Wilson intervals against published values, the words triage reads,
and the runs it takes to see a bug (what closes one by silence and sizes a confirmation)."""

from __future__ import annotations

import pytest

from orchestrator.bugs.triage import Rate


@pytest.mark.parametrize(
    ("fails", "runs", "lo", "hi"),
    [
        # Wilson score intervals at 95 % (Newcombe 1998, table I; Agresti & Coull 1998).
        (3, 10, 0.1078, 0.6032),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval(fails: int, runs: int, lo: float, hi: float) -> None:
    got = Rate(fails, runs).interval()
    assert got == pytest.approx((lo, hi), abs=6e-4)


def test_words_say_how_a_bug_reproduces() -> None:
    assert Rate(3, 10).words() == "flaky (≈30 %, 11-60 %)"
    assert Rate(10, 10).words() == "every run (10:10, 72-100 %)"
    assert Rate(19, 20).words() == "almost always (≈95 %, 76-99 %)"
    assert Rate(0, 10).words() == "not seen (0:10, rate < 28 %)"
    assert Rate(0, 0).words() == "no verdicts yet"
    assert Rate(0, 0).interval() == (0.0, 1.0)


def test_runs_to_see_grow_as_the_rate_falls() -> None:
    # At the cautious end of the rate: 10:10 may still be a 72 % bug, seen in 3 runs with
    # 95 % chance; 3:10 may be an 11 % one, which takes 27 runs.
    assert Rate(10, 10).runs_to_see() == 3
    assert Rate(3, 10).runs_to_see() == 27
    assert Rate(1, 1).runs_to_see() == 13  # one sighting says little
    assert Rate(0, 5).runs_to_see() is None
    needs = [Rate(f, 20).runs_to_see() or 0 for f in (20, 15, 10, 5, 2)]
    assert needs == sorted(needs)
