"""`kto test BUG --patches FIX`: a fix tested against a bug of a real store (nights of a
real recorded job with real parser findings, tests/bugs/nights.py), with run_job faked:
a run with the fix and a run without it show what each test scripts. No kernel boots."""

from __future__ import annotations

import email.parser
import email.policy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.bot import fixtest
from orchestrator.bugs import query
from orchestrator.bugs.outcomes import fix_tests
from orchestrator.bugs.record import record_run
from orchestrator.bugs.store import open_store
from orchestrator.bugs.triage import Rate
from orchestrator.errors import UserError
from orchestrator.job.runner import JobResult
from orchestrator.records.model import load_run
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict
from orchestrator.results.mailtext import Identity

from ..bugs.nights import SEED003, Repeat, night, rid
from ..fakejob import record_job

CELL = "debian-6.1.none.default.x86_64.rcutorture-onoff"
COMMIT = "22c59337993006cf14b97356d39926eaa6c31378"  # the recorded job's build
ME = Identity("Tess Ter", "tess@example.org")
AUTHOR = "Fix Author <fixer@example.org>"
# What a fake run shows: "bug", "clean", "error", "miss", "other"
Script = Callable[[JobSpec, int], str]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results root with bug #1, WARNING in __mmdrop (+ its rss-counter and pgtables
    consequences), 3:10 in CELL: about 33 %, 11 runs for 95 %."""
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    repeats: list[Repeat] = [SEED003 if r in (0, 4, 9) else None for r in range(10)]
    record_run(load_run(night(root, rid(1), {"x86_64.rcutorture-onoff": repeats})))
    with open_store(root) as store:
        (bug,) = query.list_bugs(store.db)
        assert (bug.id, str(query.detail(store.db, 1).cells[0].rate)) == (1, "3:10")
    return root


def fix_dir(tmp_path: Path) -> Path:
    """A two-patch fix as format-patch writes it: the reply answers the last one."""
    d = tmp_path / "fix"
    d.mkdir()
    for n in (1, 2):
        (d / f"000{n}-fix.patch").write_text(
            f"From 1234567890abcdef Mon Sep 17 00:00:00 2001\n"
            f"From: {AUTHOR}\n"
            f"Date: Mon, 7 Dec 2026 10:00:00 +0000\n"
            f"Subject: [PATCH {n}/2] mm: keep mm alive across CPU offline ({n})\n"
            f"Message-Id: <fix-{n}@example.org>\n\n"
            "The reason.\n\n"
            f"Signed-off-by: {AUTHOR}\n"
            "---\n"
            " kernel/fork.c | 1 +\n"
            " 1 file changed, 1 insertion(+)\n\n"
            "diff --git a/kernel/fork.c b/kernel/fork.c\n"
            "--- a/kernel/fork.c\n"
            "+++ b/kernel/fork.c\n"
            "@@ -1,1 +1,2 @@\n"
            " int a;\n"
            f"+int fix{n};\n"
            "-- \n2.39.5\n\n"
        )
    return d


def fake_jobs(monkeypatch: pytest.MonkeyPatch, script: Script) -> list[JobSpec]:
    """fixtest.run_job replaced by jobs that show what `script(spec, n)` says (n: the
    run's index on its side), written the way a real job writes them."""
    calls: list[JobSpec] = []

    def fake_run_job(
        spec: JobSpec, job_dir: Path, *, extra: dict[str, Any] | None = None, **_kw: Any
    ) -> JobResult:
        calls.append(spec)
        n = sum(1 for c in calls if bool(c.patches) == bool(spec.patches)) - 1
        what = script(spec, n)
        if what == "bug":
            # as the parser prints it: normalised, it is the bug's title
            f = {**SEED003[0], "title": "WARNING in __mmdrop+0x3d/0xca"}
            v = Verdict(Status.FAIL, "kernel reported warning", f["title"], [f])
        elif what == "other":
            f = {"kind": "kasan", "title": "BUG: KASAN: use-after-free in tty_release"}
            v = Verdict(Status.FAIL, "kernel reported kasan", f["title"], [f])
        elif what == "error":
            v = Verdict(Status.ERROR, "boot failed: QEMU died")
        elif what == "miss":
            v = Verdict(Status.MISS, "does not apply: patch 1/2 in kernel/fork.c")
        else:
            v = Verdict(Status.PASS, "test passed")
        build = {"inputs": {"tree": spec.tree, "base_commit": spec.ref}}
        return record_job(spec, job_dir, v, **(extra or {}), job=spec.to_dict(), build=build)

    monkeypatch.setattr(fixtest, "run_job", fake_run_job)
    return calls


def with_fix(fix: str, without: str = "bug", at: int | None = None) -> Script:
    """`fix` on every run with the fix (or only on run `at`, clean before), `without` on
    every run without it."""

    def script(spec: JobSpec, n: int) -> str:
        if not spec.patches:
            return without
        if at is None or n == at:
            return fix
        return "clean"

    return script


def run_test(root: Path, fix: Path, mail: bool = False) -> fixtest.FixTest:
    with open_store(root) as store:
        return fixtest.test_fix(
            store, 1, str(fix), confidence=0.95, max_runs=30, cell=None, identity=ME, mail=mail
        )  # fmt: skip


def test_the_runs_follow_the_rate_and_its_uncertainty() -> None:
    # 1 - E[(1-p)^n] >= confidence, p ~ Beta(1 + fails, 1 + runs - fails)
    assert fixtest.runs_needed(Rate(3, 10), 0.95, 30) == 11
    assert fixtest.confidence_of(Rate(3, 10), 11) == pytest.approx(0.9549, abs=1e-4)
    # 3:3 is not a sure thing: one clean run after it is 80 %, not the point estimate's 100 %
    assert fixtest.confidence_of(Rate(3, 3), 1) == pytest.approx(0.8)
    assert fixtest.runs_needed(Rate(3, 3), 0.95, 30) == 3
    # many runs: close to the point estimate's 1-(1-0.3)^n (9 runs at 30 %)
    assert fixtest.runs_needed(Rate(300, 1000), 0.95, 30) == 9
    assert fixtest.runs_needed(Rate(5, 100), 0.95, 100) > 59  # a rare bug: more than 59
    assert fixtest.runs_needed(Rate(5, 100), 0.95, 30) == 30
    assert fixtest.runs_needed(Rate(0, 5), 0.95, 30) == 30


def test_gone_runs_n_with_the_fix_then_the_control_until_it_shows(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_jobs(monkeypatch, with_fix("clean", without="bug"))
    rc = cli.main(["test", "#1", "--patches", str(fix_dir(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "gone: 0 of 11 runs; at about 33 % per run (3:10 before) that is 95 % confidence" in out
    assert "fail:runs 0:11" in out and "fail:runs 1:1" in out
    assert [bool(c.patches) for c in calls] == [True] * 11 + [False]
    assert {c.ref for c in calls} == {COMMIT}  # the incident's commit, pinned
    assert all(c.patches == str((tmp_path / "fix").resolve()) for c in calls[:11])
    with open_store(root) as store:
        (t,) = fix_tests(store.db, 1)
        assert (t.verdict, t.fails, t.runs, t.control_fails, t.control_runs) == (
            "gone",
            0,
            11,
            1,
            1,
        )
        assert t.confidence == pytest.approx(Rate(3, 10).chance_seen(11))
        (ev,) = [e for e in query.detail(store.db, 1).events if e["action"] == "fix-tested"]
        assert ev["run_id"] == t.run_id and "gone (0:11 with the fix, 1:1 without)" in ev["reason"]
        # the store saw the runs: the control in the bug's cell, the fix runs in a cell of
        # their own (clean runs of a patched kernel are not quiet runs of the bug's cell)
        cells = {c.cell: str(c.rate) for c in query.detail(store.db, 1).cells}
        assert cells == {CELL: "4:11"}
        fix_cell = store.db.execute(
            "SELECT cell, COUNT(*) FROM jobs WHERE run_id = ? AND cell != ? GROUP BY cell",
            (t.run_id, CELL),
        ).fetchall()
        assert len(fix_cell) == 1 and ".fix-" in fix_cell[0][0] and fix_cell[0][1] == 11
    run = root / t.run_id
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert (run / "junit.xml").is_file()


def test_present_stops_at_the_first_run_that_shows_the_bug(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_jobs(monkeypatch, with_fix("bug", at=2))
    t = run_test(root, fix_dir(tmp_path))
    assert (t.verdict, t.fails, t.runs, t.control_runs) == ("present", 1, 3, 0)
    assert len(calls) == 3  # no more runs with the fix, and no control
    with open_store(root) as store:
        assert "present: the bug showed with the fix in run 3" in fixtest.sentence_of(store, t)
    from orchestrator.records import exits

    assert exits.of_fix_test(t.verdict) == 1


def test_a_consequence_title_is_the_bug_too(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rss-counter report alone (a "together" title of bug #1) shows the bug.
    fake_jobs(monkeypatch, with_fix("bug"))

    def only_rss(spec: JobSpec, job_dir: Path, **kw: Any) -> JobResult:
        r = inner(spec, job_dir, **kw)
        rss = SEED003[1]
        r.verdict.findings = [rss]
        r.verdict.title = rss["title"]
        return r

    inner = fixtest.run_job
    monkeypatch.setattr(fixtest, "run_job", only_rss)
    t = run_test(root, fix_dir(tmp_path))
    assert (t.verdict, t.fails, t.runs) == ("present", 1, 1)


def test_inconclusive_when_the_control_never_reproduces(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_jobs(monkeypatch, with_fix("clean", without="clean"))
    t = run_test(root, fix_dir(tmp_path))
    assert (t.verdict, t.fails, t.runs, t.control_fails, t.control_runs) == (
        "inconclusive", 0, 11, 0, 11,
    )  # fmt: skip
    assert len(calls) == 22 and t.confidence is None
    with open_store(root) as store:
        assert "did not show without it either (0 of 11)" in fixtest.sentence_of(store, t)


def test_error_when_infrastructure_errors_leave_too_few_runs(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = with_fix("error")
    calls = fake_jobs(monkeypatch, lambda s, n: "clean" if s.patches and n == 0 else script(s, n))
    rc = cli.main(["test", "1", "--patches", str(fix_dir(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 3, out
    assert "error: 3 infrastructure errors; 1 of 11 runs judged with the fix" in out
    assert len(calls) == 4  # one clean run, then three QEMU deaths in a row
    with open_store(root) as store:
        (t,) = fix_tests(store.db, 1)
        assert (t.verdict, t.runs, t.control_runs) == ("error", 1, 0)


def test_a_fix_that_does_not_apply_says_so(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_jobs(monkeypatch, with_fix("miss"))
    t = run_test(root, fix_dir(tmp_path))
    assert t.verdict == "error" and len(calls) == 1
    with open_store(root) as store:
        said = fixtest.sentence_of(store, t)
    assert (
        said == "error: the fix does not apply or build: does not apply: patch 1/2 in kernel/fork.c"
    )


def test_interrupted_still_records_what_ran(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(spec: JobSpec, n: int) -> str:
        if n == 3:
            raise KeyboardInterrupt
        return "clean"

    fake_jobs(monkeypatch, script)
    with pytest.raises(KeyboardInterrupt):
        run_test(root, fix_dir(tmp_path))
    with open_store(root) as store:
        (t,) = fix_tests(store.db, 1)
        assert (t.verdict, t.runs) == ("error", 3)
        ran = store.db.execute("SELECT COUNT(*) FROM jobs WHERE run_id = ?", (t.run_id,))
        assert ran.fetchone()[0] == 3  # the store saw the runs before the interrupt
    doc = json.loads((root / t.run_id / "run.json").read_text())
    assert doc["status"] == "interrupted"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["test", "42", "--patches", "{fix}"], "no bug #42 in the store (bugs are #1 to #1)"),
        (["test", "1", "--patches", "{tmp}/nothing.mbox"], "nothing.mbox: no such file"),
        (["test", "1", "--patches", "{fix}", "--cell", "x.y"], "--cell x.y: bug #1 was not seen"),
        (["test", "1", "--patches", "{fix}", "--confidence", "1.5"], "--confidence 1.5"),
    ],
)
def test_bad_input_is_exit_2_with_a_clear_message(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    calls = fake_jobs(monkeypatch, with_fix("clean"))
    fix = fix_dir(tmp_path)
    argv = [a.format(fix=fix, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    assert said in capsys.readouterr().err
    assert not calls
    assert not list(root.glob("*-test-bug1-*"))  # refused before any run directory


def test_a_cell_with_its_own_series_gets_the_fix_on_top(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bug showed in a cell that tests a series (the seeds' cells do): the fix runs
    # build that series and then the fix; the control builds the series alone. Before,
    # such a bug was refused ("not supported yet").
    fix = fix_dir(tmp_path)
    own = tmp_path / "own-series"
    own.mkdir()
    (own / "0001-own.patch").write_text(
        (fix / "0001-fix.patch")
        .read_text()
        .replace("[PATCH 1/2] mm: keep mm alive across CPU offline (1)", "[PATCH] cpu: the series")
        .replace("fix1", "own1")
    )
    for job in (root / rid(1)).glob("*-r*"):
        doc = json.loads((job / "job.json").read_text())
        doc["job"]["patches"] = str(own)
        doc["cell"]["series"] = "own"
        (job / "job.json").write_text(json.dumps(doc))
    calls = fake_jobs(monkeypatch, lambda spec, _n: "bug" if spec.patches == str(own) else "clean")
    t = run_test(root, fix)
    assert t.verdict == "gone", t
    stacked = root / t.run_id / "series"
    fixed = [c for c in calls if c.patches == str(stacked)]
    assert len(fixed) == t.runs == 11 and t.control_runs >= 1
    assert len(calls) == t.runs + t.control_runs  # nothing else ran
    from orchestrator.build.patches import load_dir

    assert sorted(f.name for f in stacked.glob("*.patch"))[0] == "0001-cpu-the-series.patch"
    assert [p.subject for p in load_dir(stacked)] == [
        "[PATCH] cpu: the series",
        "[PATCH 1/2] mm: keep mm alive across CPU offline (1)",
        "[PATCH 2/2] mm: keep mm alive across CPU offline (2)",
    ]
    run = load_run(root / t.run_id)
    assert len(run.jobs) == len(calls)  # the series folder is not a job (no MISS)
    series = {j.record["cell"]["series"] for j in run.jobs}
    digest = fixtest.load_fix(str(fix)).digest
    assert series == {"own", f"own+fix-{digest}"}


def test_a_cell_whose_series_is_gone_is_refused_before_any_run(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job in (root / rid(1)).glob("*-r*"):
        doc = json.loads((job / "job.json").read_text())
        doc["job"]["patches"] = str(tmp_path / "removed-series")
        (job / "job.json").write_text(json.dumps(doc))
    calls = fake_jobs(monkeypatch, with_fix("clean"))
    with pytest.raises(UserError, match=r"the cell's own series .*removed-series"):
        run_test(root, fix_dir(tmp_path))
    assert not calls
    assert not list(root.glob("*-test-bug1-*"))  # no run directory left behind


def test_the_reply_threads_under_the_fix_and_holds_no_patch(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_jobs(monkeypatch, with_fix("clean", without="bug"))
    t = run_test(root, fix_dir(tmp_path), mail=True)
    assert t.mail and Path(t.mail).parent == root / t.run_id / "mail"
    with open_store(root) as store:
        assert fix_tests(store.db, 1)[0].mail == t.mail
    raw = Path(t.mail).read_bytes()
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert msg["In-Reply-To"] == "<fix-2@example.org>"  # the last patch of the series
    assert msg["References"] == "<fix-1@example.org> <fix-2@example.org>"
    assert msg["Subject"] == "Re: [PATCH 2/2] mm: keep mm alive across CPU offline (2)"
    assert msg["To"] == AUTHOR and "tess@example.org" in msg["From"]
    body = msg.get_body().get_content()  # type: ignore[union-attr]
    assert (
        "gone: 0 of 11 runs; at about 33 % per run (3:10 before) that is 95 % confidence."
        in " ".join(body.split())
    )
    assert "0:11 (fail:runs)" in body and "1:1 (same cell and commit)" in body
    assert CELL in body and COMMIT in body
    assert f"--ref {COMMIT} --patches {(tmp_path / 'fix').resolve()}" in body
    assert "Tested-by: kto <tess@example.org>" in body.splitlines()
    mi = subprocess.run(
        ["git", "mailinfo", str(tmp_path / "m"), str(tmp_path / "p")],
        input=raw,
        capture_output=True,
        check=True,
    )
    assert b"Subject: mm: keep mm alive across CPU offline (2)" in mi.stdout
    assert (tmp_path / "p").read_bytes() == b""  # no patch in the reply


def test_no_tested_by_unless_gone(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_jobs(monkeypatch, with_fix("bug"))
    t = run_test(root, fix_dir(tmp_path), mail=True)
    assert t.verdict == "present" and t.mail
    assert b"Tested-by:" not in Path(t.mail).read_bytes()


def test_gone_needs_the_confidence_asked_even_when_the_runs_are_capped() -> None:
    """A 1:30 bug capped at 30 runs reaches about 75 %: that is no green "gone"."""
    fix, control = fixtest.Phase("fix", 30), fixtest.Phase("control", 30)
    fix.runs, control.runs, control.fails = 30, 5, 1
    verdict, sentence = fixtest.verdict_of(fix, control, Rate(1, 30), 0.95)
    assert verdict == "inconclusive" and "under the 95 % asked" in sentence, sentence
    assert fixtest.verdict_of(fix, control, Rate(10, 30), 0.95)[0] == "gone"
