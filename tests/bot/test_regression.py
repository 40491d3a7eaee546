"""The bot's auto-bisect planning and its night loop, on real recorded jobs in a real store:
which NEW bug is bisected, between which commits, once per bug, within the budget."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.bot import regression
from orchestrator.bugs.outcomes import bisections
from orchestrator.bugs.store import open_store
from orchestrator.errors import UserError
from orchestrator.matrix.driver import MatrixResult
from orchestrator.matrix.history import classify
from orchestrator.results.mailtext import Identity
from orchestrator.results.reports import finish_run

from ..bugs.nights import MMDROP, PANIC, SEED003, night, rid

A, B, C = "a" * 40, "b" * 40, "c" * 40


def _at(run: Path, commit: str, previous_kernel: bool = False) -> Path:
    """Every job of the night built from `commit` (the tree's head that night)."""
    for job_json in run.glob("*/job.json"):
        rec = json.loads(job_json.read_text())
        rec.setdefault("build", {}).setdefault("inputs", {})["base_commit"] = commit
        if previous_kernel:
            rec["previous_kernel"] = {"run": "earlier"}
        job_json.write_text(json.dumps(rec))
    return run


def _night(root: Path, day: int, commit: str, cells: dict[str, Any]) -> MatrixResult:
    run = _at(night(root, rid(day), cells), commit)
    report = finish_run(run, {}, "finished", classify=classify)
    return MatrixResult(run, report, report.night)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    r = tmp_path / "results"
    r.mkdir()
    monkeypatch.setenv("KTO_RESULTS", str(r))
    return r


def _bug(result: MatrixResult) -> int:
    [bug] = regression.new_bugs(result)
    return bug


def test_a_new_bug_is_planned_from_the_last_passing_night_to_tonight(root: Path) -> None:
    _night(root, 1, A, {"x86_64.rcutorture": [None, None]})
    _night(root, 2, B, {"x86_64.rcutorture": [None]})
    r3 = _night(root, 3, C, {"x86_64.rcutorture": [SEED003, None]})
    bug = _bug(r3)
    with open_store(root) as store:
        plan = regression.plan_for_bug(store, bug, r3.run_dir.name)
    assert (plan.good, plan.bad) == (B, C)  # the latest night it passed, not the first
    assert plan.cell == "debian-6.1.none.default.x86_64.rcutorture"
    # the titles as the job printed them, the bug's together-titles included
    assert MMDROP in plan.titles
    assert plan.spec.arch == "x86_64" and plan.spec.test == "rcutorture"


def test_no_move_no_earlier_pass_refuse_with_the_reason(root: Path) -> None:
    r1 = _night(root, 1, A, {"x86_64.rcutorture": [SEED003]})
    with open_store(root) as store, pytest.raises(UserError, match=r"no earlier night .* passed"):
        regression.plan_for_bug(store, _bug(r1), r1.run_dir.name)
    _night(root, 2, A, {"arm64.hotplug": [None]})
    r3 = _night(root, 3, A, {"arm64.hotplug": [PANIC]})
    with open_store(root) as store, pytest.raises(UserError, match="did not move"):
        regression.plan_for_bug(store, _bug(r3), r3.run_dir.name)


def test_a_bisect_probe_run_is_not_a_night(root: Path) -> None:
    """Only nightly runs at the tree's head say where a cell passed: a bisect's own runs at
    old commits are not a "last good night"."""
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    probe = _at(night(root, rid(2, "x"), {"x86_64.rcutorture": [None]}), B)
    doc = json.loads((probe / "run.json").read_text())
    doc["compare_key"] = "bisect:1234"
    (probe / "run.json").write_text(json.dumps(doc))
    finish_run(probe, {})
    r3 = _night(root, 3, C, {"x86_64.rcutorture": [SEED003]})
    with open_store(root) as store:
        plan = regression.plan_for_bug(store, _bug(r3), r3.run_dir.name)
    assert plan.good == A


@dataclass
class FakeResult:
    status: str
    culprit: dict[str, Any] | None
    confidence: float
    flags: list[str] = field(default_factory=list)
    note: str = ""
    exit_code: int = 0


class FakeDriver:
    """driver.start/State.load/bisect: a bisect that takes `runs` runs per call and finds
    `culprit` when it is allowed enough of them."""

    def __init__(self, root: Path, need: int, flags: list[str] | None = None) -> None:
        self.root, self.need, self.flags = root, need, flags or []
        self.started: list[tuple[str, str, tuple[str, ...]]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from orchestrator.bisect import driver

        monkeypatch.setattr(driver, "start", self.start)
        monkeypatch.setattr(driver.State, "load", classmethod(lambda cls, d: self._load(d)))
        monkeypatch.setattr(driver, "bisect", self.bisect)

    def start(self, tree, good, bad, base, target, confidence, max_runs, **_kw):
        from orchestrator.bisect.driver import State

        self.started.append((good, bad, tuple(target.titles)))
        d = self.root / f"20261231-000000-bisect-{len(self.started)}"
        d.mkdir()
        st = State(tree, [good, bad], base.to_dict(), {}, confidence, max_runs)
        (d / "fake.json").write_text(json.dumps({"runs": 0}))
        return d, st

    def _load(self, d: Path):
        from orchestrator.bisect.driver import State

        kept = json.loads((d / "fake.json").read_text())["runs"]
        st = State("t", ["g", "b"], {}, {}, 0.999, 0)
        st.runs = [{}] * kept
        return st

    def bisect(self, run_dir: Path, state, deadline=None):
        kept = json.loads((run_dir / "fake.json").read_text())["runs"]
        allowed = state.max_runs - len(state.runs)
        ran = min(allowed, self.need - kept)
        state.runs = [*state.runs, *[{}] * ran]
        (run_dir / "fake.json").write_text(json.dumps({"runs": kept + ran}))
        if kept + ran < self.need:
            return FakeResult("budget", None, 0.5)
        info = {"sha": B, "subject": "mm: the culprit", "author": "Jane <jane@example.org>"}
        return FakeResult("found", info, 0.9995, self.flags)


def _mails(monkeypatch: pytest.MonkeyPatch, written: list[int]) -> None:
    from orchestrator.bot import culprit_mail

    def culprit(store, b, out_dir, identity, **_kw):
        written.append(b.bug_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"bug-{b.bug_id}-culprit.eml"
        path.write_text("x")
        return path

    def digest(night_dir, store, done, skipped, identity, **_kw):
        path = night_dir / "mail" / "digest.eml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{len(done)} {skipped}")
        return path

    monkeypatch.setattr(culprit_mail, "write_culprit_mail", culprit)
    monkeypatch.setattr(culprit_mail, "write_digest", digest)


def _bot(root: Path, monkeypatch: pytest.MonkeyPatch, need: int) -> FakeDriver:
    fake = FakeDriver(root, need=need)
    fake.install(monkeypatch)
    _mails(monkeypatch, [])
    return fake


def test_a_night_bisects_its_new_bug_once_records_it_and_mails_the_culprit(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeDriver(root, need=16)
    fake.install(monkeypatch)
    written: list[int] = []
    _mails(monkeypatch, written)
    _night(root, 1, A, {"x86_64.rcutorture": [None], "arm64.rcutorture": [None]})
    # One bug in two cells: one bisect, in the cell that reproduces it best (2:2 vs 1:2).
    cells = {"x86_64.rcutorture": [SEED003, SEED003], "arm64.rcutorture": [SEED003, None]}
    r2 = _night(root, 2, B, cells)
    out = regression.bisect_night(r2, budget_runs=80, budget_minutes=60, identity=Identity())
    bug = _bug(r2)
    assert fake.started == [(A, B, fake.started[0][2])] and MMDROP in fake.started[0][2]
    assert out.done[0].cell == "debian-6.1.none.default.x86_64.rcutorture"
    assert [b.status for b in out.done] == ["found"] and written == [bug]
    with open_store(root) as store:
        [rec] = bisections(store.db, bug, "culprit")
        events = [r["action"] for r in store.db.execute("SELECT action FROM events")]
    assert rec.commit == B and rec.confidence == pytest.approx(0.9995) and rec.mail
    assert "bisect-culprit" in events
    assert out.digest and out.digest.is_file()
    text = "\n".join(regression.summary(out))
    assert f"bisect bug #{bug}" in text and "mail:" in text
    # `kto bugs show` says what the bot did
    from orchestrator import cli

    capsys.readouterr()
    assert cli.main(["bugs", "show", str(bug)]) == 0
    shown = capsys.readouterr().out
    assert f"bisected:   culprit {B[:12]} (mm: the culprit), 99.95%" in shown, shown
    assert "; mail " in shown
    # The next night shows the same bug again: no second bisect of it.
    r3 = _night(root, 3, B, {"x86_64.rcutorture": [SEED003]})
    again = regression.bisect_night(r3, budget_runs=80, budget_minutes=60, identity=Identity())
    assert len(fake.started) == 1 and not again.done


def test_a_flagged_culprit_is_recorded_and_not_mailed(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeDriver(root, need=4, flags=["a merge commit"]).install(monkeypatch)
    written: list[int] = []
    _mails(monkeypatch, written)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003]})
    out = regression.bisect_night(r2, budget_runs=80, budget_minutes=60, identity=Identity())
    assert out.done[0].flags == ["a merge commit"] and written == []
    assert "not mailed" in "\n".join(regression.summary(out))


def test_the_budget_cuts_a_bisect_short_and_the_next_night_goes_on(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _bot(root, monkeypatch, need=20)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003]})
    out = regression.bisect_night(r2, budget_runs=12, budget_minutes=60, identity=Identity())
    assert [b.status for b in out.done] == ["interrupted"]
    assert "budget spent" in "\n".join(regression.summary(out))
    r3 = _night(root, 3, B, {"x86_64.rcutorture": [None]})
    assert regression.has_unfinished(root)
    out = regression.bisect_night(r3, budget_runs=12, budget_minutes=60, identity=Identity())
    assert [b.status for b in out.done] == ["found"] and len(fake.started) == 1
    assert not regression.has_unfinished(root)


def test_a_bug_last_night_s_kernel_shows_too_is_not_bisected(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _bot(root, monkeypatch, need=4)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    run = _at(night(root, rid(2), {"x86_64.rcutorture": [SEED003]}), B)
    # The confirmation booted last night's kernel again: it shows the bug as well.
    again = _at(night(root / "tmp", rid(2), {"x86_64.rcutorture": [SEED003]}), A, True)
    for job in again.iterdir():
        if job.is_dir():
            job.rename(run / f"{job.name}-last")
    report = finish_run(run, {}, "finished", classify=classify)
    result = MatrixResult(run, report, report.night)
    out = regression.bisect_night(result, budget_runs=80, budget_minutes=60, identity=Identity())
    assert not fake.started and "last night's kernel shows it too" in out.skipped[0][1]


def test_a_bug_gone_quiet_gets_its_fix_bisected_and_is_fixed_by_that_commit(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator import cli
    from orchestrator.bugs.query import get

    fake = FakeDriver(root, need=4)
    fake.install(monkeypatch)
    monkeypatch.setattr("orchestrator.bisect.driver.print_result", lambda st, res: 0)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003]})
    bug = _bug(r2)
    with open_store(root) as store, pytest.raises(UserError, match=r"no night .* passed after"):
        regression.plan_fix_for_bug(store, bug)
    _night(root, 3, C, {"x86_64.rcutorture": [None]})
    with open_store(root) as store:
        plan = regression.plan_fix_for_bug(store, bug)
    assert (plan.kind, plan.bad, plan.good) == ("fix", B, C)  # bad: the older end
    assert cli.main(["bisect", "--bug", str(bug), "--fix"]) == 0
    assert fake.started[-1][:2] == (C, B)  # driver.start(good=newer, bad=older, fix=True)
    assert f"bug #{bug} marked fixed by {B[:12]}" in capsys.readouterr().out
    with open_store(root) as store:
        row = get(store.db, bug)
        [rec] = bisections(store.db, bug, "fix")
    assert row.state == "fixed" and row.fixed_commit == B and rec.status == "found"
    html = (root / "bugs.html").read_text()  # rewritten by the bot, not only by a night
    assert "<td>fix bisect</td>" in html and "mm: the culprit" in html


def test_bisect_bug_refuses_a_range_given_by_hand(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator import cli

    assert cli.main(["bisect", "--bug", "1", "--good", A, "--title", "x"]) == 2
    err = capsys.readouterr().err
    assert "--bug takes its tree, range and titles from the bug store: drop --good, --title" in err


def test_one_bug_whose_bisect_fails_does_not_stop_the_night_s_others(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.bisect import driver

    fake = _bot(root, monkeypatch, need=4)
    real = fake.bisect

    def bisect(run_dir: Path, state: Any, deadline: float | None = None) -> Any:
        if len(fake.started) == 1:
            raise UserError("'deadbeef' is not a commit of the tree")
        return real(run_dir, state, deadline)

    monkeypatch.setattr(driver, "bisect", bisect)
    _night(root, 1, A, {"x86_64.rcutorture": [None], "x86_64.hotplug": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003], "x86_64.hotplug": [PANIC]})
    out = regression.bisect_night(r2, budget_runs=80, budget_minutes=60, identity=Identity())
    assert len(out.done) == 1 and out.done[0].status == "found"
    assert "bisect failed: 'deadbeef' is not a commit" in out.skipped[0][1]
    assert not regression.has_unfinished(root)  # the failed one is not resumed every night


def test_a_bisect_s_probes_leave_the_bug_s_rate_and_cells_alone(root: Path) -> None:
    """Probes at old commits are mostly clean by design: counted as the bug's runs, the bot
    demo's 3:3 bug read "8:16, flaky (≈50 %)" with the bisect's pseudo-cell among its cells."""
    from orchestrator.bugs.query import detail

    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003, SEED003]})
    bug = _bug(r2)
    probes = _at(night(root, rid(3, "b"), {"x86_64.rcutorture": [SEED003, None, None, None]}), A)
    doc = json.loads((probes / "run.json").read_text())
    (probes / "run.json").write_text(json.dumps({**doc, "compare_key": "bisect:1234"}))
    finish_run(probes, {})
    with open_store(root) as store:
        d = detail(store.db, bug)
    assert str(d.bug.rate) == "2:2"
    assert [c.cell for c in d.cells] == ["debian-6.1.none.default.x86_64.rcutorture"]
    assert {i.job for i in d.incidents if i.run_id == probes.name}  # still incidents
    assert d.best is not None and d.best.run_id == r2.run_dir.name  # the night's report


def test_matrix_bot_options(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator import cli

    assert cli.main(["matrix", "quick", "--bisect-budget", "2"]) == 2
    assert "--bisect-budget 2: at least 3 runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["matrix", "--help"])
    out = capsys.readouterr().out
    assert "--no-bisect" in out and "--bisect-minutes" in out and "docs/bot.md" in out


def test_a_finding_the_cell_expects_is_not_a_bug_to_bisect(root: Path) -> None:
    """`make run`'s seeded bug: caught as expected (XFAIL) is a new bug in the store, but
    no regression, so the bot leaves it alone."""
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    run = _at(night(root, rid(2), {"x86_64.rcutorture": [SEED003]}), B)
    for job_json in run.glob("*/job.json"):
        rec = json.loads(job_json.read_text())
        rec["job"]["expect"] = [f["title"] for f in SEED003]
        rec["status"] = rec["verdict"]["status"] = "XFAIL"
        job_json.write_text(json.dumps(rec))
    report = finish_run(run, {}, "finished", classify=classify)
    result = MatrixResult(run, report, report.night)
    assert report.known is not None and [r.new for r in report.known.bugs()] == [True]
    assert regression.new_bugs(result) == []


def test_a_first_night_s_new_bug_is_not_bisected_and_the_summary_says_why(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _bot(root, monkeypatch, need=4)
    r1 = _night(root, 1, A, {"x86_64.rcutorture": [SEED003]})
    out = regression.bisect_night(r1, budget_runs=80, budget_minutes=60, identity=Identity())
    assert not fake.started and not out.done
    bug = _bug(r1)
    [line, digest] = regression.summary(out)
    assert line == (
        f"  bug #{bug} not bisected: no earlier night of "
        "debian-6.1.none.default.x86_64.rcutorture passed: no good commit to start from"
    )
    assert digest.startswith("  digest: ")


def test_a_bug_the_budget_left_out_is_kept_and_the_next_night_bisects_it(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two NEW bugs, a budget for one: the second is new only tonight, so it is recorded
    (no run yet) and the next night goes on with it."""
    fake = _bot(root, monkeypatch, need=10)
    _night(root, 1, A, {"x86_64.rcutorture": [None], "x86_64.hotplug": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003], "x86_64.hotplug": [PANIC]})
    out = regression.bisect_night(r2, budget_runs=10, budget_minutes=60, identity=Identity())
    assert [b.status for b in out.done] == ["found"]
    assert "budget is spent" in out.skipped[0][1] and regression.has_unfinished(root)
    r3 = _night(root, 3, B, {"x86_64.rcutorture": [None], "x86_64.hotplug": [None]})
    out = regression.bisect_night(r3, budget_runs=10, budget_minutes=60, identity=Identity())
    assert [b.status for b in out.done] == ["found"] and len(fake.started) == 2
    assert not regression.has_unfinished(root)


def test_an_infrastructure_failure_keeps_the_bisect_for_the_next_night(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.bisect import driver
    from orchestrator.errors import InfraError

    fake = _bot(root, monkeypatch, need=4)
    real = fake.bisect

    def broken(run_dir: Path, state: Any, deadline: float | None = None) -> Any:
        raise InfraError("scheduler tcp://10.0.0.1:8786 unreachable")

    monkeypatch.setattr(driver, "bisect", broken)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003]})
    out = regression.bisect_night(r2, budget_runs=80, budget_minutes=60, identity=Identity())
    assert "bisect failed: scheduler" in out.skipped[0][1] and regression.has_unfinished(root)
    monkeypatch.setattr(driver, "bisect", real)
    r3 = _night(root, 3, B, {"x86_64.rcutorture": [None]})
    out = regression.bisect_night(r3, budget_runs=80, budget_minutes=60, identity=Identity())
    assert [b.status for b in out.done] == ["found"] and len(fake.started) == 1


def test_a_bug_there_from_the_first_night_still_gets_its_fix_bisected(root: Path) -> None:
    """A fix range needs no passing night before the bug, only one after it."""
    _night(root, 1, A, {"x86_64.rcutorture": [SEED003]})
    _night(root, 2, B, {"x86_64.rcutorture": [None]})
    with open_store(root) as store:
        plan = regression.plan_fix_for_bug(store, 1)
    assert (plan.kind, plan.bad, plan.good) == ("fix", A, B)


def test_a_bisect_another_kto_holds_is_left_as_it_is(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.bisect import driver

    _bot(root, monkeypatch, need=4)

    def busy(run_dir: Path, state: Any, deadline: float | None = None) -> Any:
        raise driver.Busy("bisect run x is in use by kto pid 4242")

    monkeypatch.setattr(driver, "bisect", busy)
    _night(root, 1, A, {"x86_64.rcutorture": [None]})
    r2 = _night(root, 2, B, {"x86_64.rcutorture": [SEED003]})
    out = regression.bisect_night(r2, budget_runs=80, budget_minutes=60, identity=Identity())
    assert "in use by kto pid 4242" in out.skipped[0][1]
    with open_store(root) as store:
        [rec] = bisections(store.db, _bug(r2), "culprit")
    assert rec.status == "running"  # not refused: the other kto goes on with it
