"""Findings into bugs: one bug per problem across nights, with its titles, cells, fail:runs,
its lifecycle (gone, fixed by silence, back as "(2)"), and an ingest that never counts a run
twice. Runs are real recorded jobs with real parser findings (nights.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from orchestrator.bugs import query
from orchestrator.bugs.ingest import ingest
from orchestrator.bugs.record import record_run
from orchestrator.bugs.store import open_store
from orchestrator.records.model import load_run

from ..results.runs import DATA
from .nights import MMDROP, PANIC, PGTABLES, RSS, SEED002, SEED003, night, rid


def _record(run: Path):  # type: ignore[no-untyped-def]
    return record_run(load_run(run))


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "bugs.sqlite") as db:
        return [tuple(r) for r in db.execute(sql)]


def _bugs(root: Path, state: str = "all") -> list[query.BugRow]:
    with open_store(root) as store:
        return query.list_bugs(store.db, state)


def test_findings_of_one_job_are_one_bug_with_its_secondary_titles(tmp_path: Path) -> None:
    known = _record(night(tmp_path, rid(1), {"x86_64.rcutorture-onoff": [SEED003, SEED003]}))
    (bug,) = _bugs(tmp_path)
    assert bug.title == MMDROP and bug.state == "open"
    roles = dict(_rows(tmp_path, "SELECT title, role FROM titles"))
    assert roles == {MMDROP: "primary", RSS: "together", PGTABLES: "together"}
    assert str(bug.rate) == "2:2" and bug.incidents == 6
    assert bug.kinds == ["bad_pgtables", "bad_rss", "warning"]
    job = "debian-6.1.none.default.x86_64.rcutorture-onoff-r0"
    for title in (MMDROP, RSS, PGTABLES):
        ref = known.of(job, title)
        assert ref is not None and ref.id == bug.id and ref.new
    assert known.of(job, MMDROP).label() == f"#1 {MMDROP}, NEW bug, 2:2 runs"  # type: ignore[union-attr]


def test_a_consequence_seen_first_keeps_its_bug_and_the_lead_joins_it(tmp_path: Path) -> None:
    # Night 1 shows only the rss-counter report; night 2 the whole seed 003 report: the
    # WARNING (the lead, unknown) joins the open bug its consequence already has.
    _record(night(tmp_path, rid(1), {"x86_64.t": [SEED003[1:2]]}))
    _record(night(tmp_path, rid(2), {"x86_64.t": [SEED003]}))
    (bug,) = _bugs(tmp_path)
    assert bug.title == RSS and str(bug.rate) == "2:2"
    roles = dict(_rows(tmp_path, "SELECT title, role FROM titles"))
    assert roles == {RSS: "primary", MMDROP: "together", PGTABLES: "together"}


def test_distinct_problems_are_distinct_bugs_with_cells_and_fail_runs(tmp_path: Path) -> None:
    # The seeds matrix: one bug per seed scenario, each with its own cells.
    _record(
        night(
            tmp_path,
            rid(1),
            {
                "x86_64.rcutorture-onoff": [SEED003, SEED003],
                "arm64.rcutorture-onoff": [SEED003, None],
                "x86_64.kvm-mmu-notifier": [SEED002, SEED002],
                "x86_64.command": [PANIC, "ERROR"],
                "sparc64.hotplug": ["SKIP"],
            },
        )
    )
    bugs = {b.title: b for b in _bugs(tmp_path)}
    assert set(bugs) == {MMDROP, SEED002[0]["title"], PANIC[0]["title"]}
    mmdrop = bugs[MMDROP]
    assert mmdrop.arches == ["arm64", "x86_64"] and str(mmdrop.rate) == "3:4"
    assert mmdrop.rate.words().startswith("flaky (≈75 %")
    # The ERROR repeat is no verdict: the panic is 1:1, not 1:2.
    assert str(bugs[PANIC[0]["title"]].rate) == "1:1"
    with open_store(tmp_path) as store:
        cells = {c.cell: str(c.rate) for c in query.detail(store.db, mmdrop.id).cells}
    assert cells == {
        "debian-6.1.none.default.arm64.rcutorture-onoff": "1:2",
        "debian-6.1.none.default.x86_64.rcutorture-onoff": "2:2",
    }


def test_the_same_run_twice_adds_nothing(tmp_path: Path) -> None:
    run = night(tmp_path, rid(1), {"x86_64.t": [SEED003, None], "arm64.t": [PANIC]})
    _record(run)
    tables = ("runs", "jobs", "bugs", "titles", "incidents", "bug_cells", "events")
    before = {t: _rows(tmp_path, f"SELECT * FROM {t}") for t in tables}
    with open_store(tmp_path) as store:
        again = ingest(store, load_run(run))
    assert (again.jobs, again.incidents, again.new_bugs) == (0, 0, [])
    for t in tables:
        now = _rows(tmp_path, f"SELECT * FROM {t}")
        if t == "runs":  # only the ingest time may move
            now, before[t] = [r[:-1] for r in now], [r[:-1] for r in before[t]]
        assert now == before[t], t


def test_a_job_that_changed_is_taken_again(tmp_path: Path) -> None:
    # A resumed matrix re-runs a job that was interrupted: its old record goes, the new stays.
    run = night(tmp_path, rid(1), {"x86_64.t": ["ERROR", SEED003]})
    _record(run)
    assert str(_bugs(tmp_path)[0].rate) == "1:1"
    shutil.rmtree(run / "debian-6.1.none.default.x86_64.t-r0")
    night(tmp_path / "again", rid(1), {"x86_64.t": [PANIC]})
    shutil.copytree(
        tmp_path / "again" / rid(1) / "debian-6.1.none.default.x86_64.t-r0",
        run / "debian-6.1.none.default.x86_64.t-r0",
    )
    _record(run)
    rates = {b.title: str(b.rate) for b in _bugs(tmp_path)}
    assert rates == {MMDROP: "1:2", PANIC[0]["title"]: "1:2"}
    assert _rows(tmp_path, "SELECT COUNT(*) FROM jobs") == [(2,)]


def test_gone_then_fixed_after_quiet_nights_then_back_as_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two trees' nights: the regression shows on night 2 in two cells, is gone on night 3,
    # fixed after the quiet nights, and its return is a new bug linked to the old one.
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "2")
    clean = {"x86_64.hotplug": [None, None], "arm64.hotplug": [None, None]}
    _record(night(tmp_path, rid(1), clean))
    bad = {"x86_64.hotplug": [SEED003] * 4, "arm64.hotplug": [SEED003] * 4}
    known = _record(night(tmp_path, rid(2), bad))
    (bug,) = _bugs(tmp_path)
    assert str(bug.rate) == "8:8" and bug.status() == "open"
    assert [r.new for r in known.bugs()] == [True]
    known = _record(night(tmp_path, rid(3), clean))
    (bug,) = _bugs(tmp_path)
    assert bug.status() == "open, gone 1 night" and str(bug.rate) == "8:8"
    # The night's summary says so: the bug was not seen, and later that it was closed.
    label = f"#1 {MMDROP}, open since 2026-12-02, 8:8 runs"
    assert known.lines() == [f"bug {label}: not seen in this run, gone 1 night(s)"]
    known = _record(night(tmp_path, rid(4), clean))
    (bug,) = _bugs(tmp_path)
    assert bug.state == "fixed", bug
    assert bug.closed_reason is not None
    assert bug.closed_reason.startswith("stopped reproducing for 2 nights at the tree's head")
    assert bug.closed_by == "kto"
    assert known.lines() == [f"bug #1 {MMDROP}: closed as fixed, {bug.closed_reason}"]
    known = _record(night(tmp_path, rid(5), bad))
    old, new = sorted(_bugs(tmp_path), key=lambda b: b.id)
    assert new.title == f"{MMDROP} (2)" and new.prev_id == old.id and new.state == "open"
    ref = known.of("debian-6.1.none.default.x86_64.hotplug-r0", MMDROP)
    assert ref is not None and ref.label() == f"#2 {MMDROP} (2), NEW bug (#1 is back), 8:8 runs"


def test_a_flaky_bug_needs_more_quiet_runs_than_a_certain_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 in 4 runs: 2 quiet nights of 2 runs would miss it a third of the time; the store
    # waits for the runs its cautious rate needs (the Wilson lower bound).
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "2")
    _record(night(tmp_path, rid(1), {"x86_64.t": [PANIC, None, None, None]}))
    for day in (2, 3, 4):
        _record(night(tmp_path, rid(day), {"x86_64.t": [None, None]}))
    (bug,) = _bugs(tmp_path)
    assert bug.state == "open" and bug.quiet_nights == 3
    need = bug.rate.runs_to_see()
    assert need is not None and need > 6
    day = 5
    while bug.state == "open":
        _record(night(tmp_path, rid(day), {"x86_64.t": [None, None]}))
        (bug,) = _bugs(tmp_path)
        day += 1
    assert (day - 2) * 2 >= need  # quiet runs when it closed


def test_bisect_and_single_runs_are_not_quiet_nights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a matrix runs the tree's head; a clean `kto run` or bisect probe of an old commit
    # says nothing about whether the bug is gone.
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "1")
    _record(night(tmp_path, rid(1), {"x86_64.t": [PANIC]}))
    probe = night(tmp_path, rid(2, "b"), {"x86_64.t": [None, None, None]})
    doc = json.loads((probe / "run.json").read_text())
    (probe / "run.json").write_text(json.dumps({**doc, "compare_key": None, "label": "bisect"}))
    _record(probe)
    (bug,) = _bugs(tmp_path)
    assert bug.state == "open" and bug.quiet_nights == 0


def test_a_bisect_that_shows_the_bug_later_does_not_restart_its_quiet_nights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Night 1 shows the bug, night 2 is clean; then a fix bisect probes old commits where
    # it still shows; night 3 is clean. Two quiet nights at the tree's head: fixed. The
    # probe's incident used to count as the bug's last sighting, and the quiet nights
    # started again after it.
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "2")
    _record(night(tmp_path, rid(1), {"x86_64.t": [PANIC] * 3}))
    _record(night(tmp_path, rid(2), {"x86_64.t": [None] * 3}))
    probe = night(tmp_path, rid(2, "z"), {"x86_64.t": [PANIC]})  # after night 2
    doc = json.loads((probe / "run.json").read_text())
    (probe / "run.json").write_text(json.dumps({**doc, "compare_key": "bisect:x", "label": "b"}))
    _record(probe)
    (bug,) = _bugs(tmp_path)
    assert bug.quiet_nights == 1, bug
    _record(night(tmp_path, rid(3), {"x86_64.t": [None] * 3}))
    (bug,) = _bugs(tmp_path)
    assert bug.state == "fixed", bug
    assert bug.closed_reason is not None and f"since {rid(1)};" in bug.closed_reason


def test_first_use_imports_the_recorded_runs(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for src in sorted(DATA.iterdir()):
        shutil.copytree(src, root / src.name)
    # The newest run is the one that finishes now; the two before it are imported first.
    known = _record(root / "20261123-130506-run-x86_64-01bd")
    assert known.bugs() == []  # that run passed
    titles = {b.title: b for b in _bugs(root)}
    assert set(titles) == {"kernel panic: sysrq triggered crash", "kto: test failed with status 3"}
    assert titles["kto: test failed with status 3"].arches == ["arm64"]
    assert _rows(root, "SELECT COUNT(*) FROM runs") == [(3,)]
    assert (root / "bugs.html").is_file()


def _at(finding: dict[str, object], first: int, last: int) -> dict[str, object]:
    return {**finding, "first_line": first, "last_line": last}


def test_reports_far_apart_in_one_job_are_separate_bugs(tmp_path: Path) -> None:
    # Seed 003's chain as a console prints it (WARNING at line 300, its consequences 39 lines
    # on), then, 20 minutes of stress later, an unrelated panic: two problems, not one.
    job = [
        _at(SEED003[0], 300, 338),
        _at(SEED003[1], 339, 339),
        _at(SEED003[2], 340, 340),
        _at(PANIC[0], 5200, 5230),
    ]
    _record(night(tmp_path, rid(1), {"x86_64.t": [job]}))
    titles = {b.title: b for b in _bugs(tmp_path)}
    assert set(titles) == {MMDROP, PANIC[0]["title"]}
    roles = dict(_rows(tmp_path, "SELECT title, role FROM titles"))
    assert roles[RSS] == roles[PGTABLES] == "together"


def test_a_new_title_of_a_known_bug_is_in_its_history(tmp_path: Path) -> None:
    _record(night(tmp_path, rid(1), {"x86_64.t": [[_at(SEED003[0], 300, 338)]]}))
    _record(
        night(
            tmp_path, rid(2), {"x86_64.t": [[_at(SEED003[0], 300, 338), _at(SEED003[1], 339, 339)]]}
        )
    )
    assert len(_bugs(tmp_path)) == 1
    events = _rows(tmp_path, "SELECT action, reason, run_id FROM events ORDER BY id")
    assert events[-1] == ("title", f"{RSS!r} came with it (console line 339)", rid(2))
    # Its own bug is never merged by coming together: two open bugs stay two.
    _record(night(tmp_path, rid(3), {"x86_64.u": [[_at(PANIC[0], 10, 20)]]}))
    _record(
        night(
            tmp_path, rid(4), {"x86_64.t": [[_at(SEED003[0], 300, 338), _at(PANIC[0], 339, 350)]]}
        )
    )
    assert {b.title: b.incidents for b in _bugs(tmp_path)} == {MMDROP: 4, PANIC[0]["title"]: 2}
