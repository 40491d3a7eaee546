"""`kto matrix`'s night-to-night lines speak of bugs: a NEW bug, a known bug seen in a new
cell, a closed bug back; the bug store decided which, the summary only says it."""

from __future__ import annotations

from pathlib import Path

from orchestrator.bugs.known import BugRef, Known
from orchestrator.bugs.triage import Rate
from orchestrator.commands.matrix import _as_bug
from orchestrator.matrix.history import Line, Tally

CELL = "debian-6.1.none.default.x86_64.hotplug"
W = "WARNING in takedown_cpu"


def _known(ref: BugRef) -> Known:
    return Known("20261202-010000-matrix-n-0002", Path("/x/bugs.sqlite"), {(f"{CELL}-r0", W): ref})


def _line(cls: str = "new") -> Line:
    return Line(cls, CELL, W, Tally(2, 2), [Tally(0, 2)])


def test_a_bug_first_seen_tonight_is_a_new_bug() -> None:
    ref = BugRef(4, W, "open", "20261202-010000-matrix-n-0002", Rate(2, 2), new=True)
    assert _as_bug(_line(), _known(ref)) == "  [NEW bug #4]"


def test_a_known_bug_in_a_cell_that_never_showed_it_is_seen_in_a_new_cell() -> None:
    ref = BugRef(3, W, "open", "20261125-010000-matrix-n-0001", Rate(5, 9))
    assert _as_bug(_line(), _known(ref)) == (
        "  [bug #3, open since 2026-11-25: seen in a new cell]"
    )


def test_a_closed_bug_that_returns_says_so() -> None:
    ref = BugRef(7, f"{W} (2)", "open", None, Rate(2, 2), new=True, back_of=3)
    assert _as_bug(_line(), _known(ref)) == "  [bug #7 back: #3 was closed]"


def test_no_store_no_words() -> None:
    assert _as_bug(_line(), None) == ""


def test_a_fixed_line_is_its_open_bug_gone_tonight(monkeypatch) -> None:
    ref = BugRef(5, W, "open", "20261125-010000-matrix-n-0001", Rate(3, 3))
    known = Known("20261202-010000-matrix-n-0002", Path("/x/bugs.sqlite"))
    known.absent[f"{CELL}-r0"] = [ref]
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "3")
    fixed = Line("fixed", CELL, W, Tally(0, 2), [Tally(2, 2)])
    assert _as_bug(fixed, known) == (
        "  [bug #5 gone tonight; fixed once quiet 3 night(s) with enough clean runs]"
    )
    # another cell's open bug is not this line's
    known.absent = {"debian-6.1.none.default.arm64.hotplug-r0": [ref]}
    assert _as_bug(fixed, known) == ""
