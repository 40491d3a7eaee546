"""Fix bisection (`kto bisect --fix`): the first commit where a finding is gone, on a real
tiny git history with fake jobs, by the same flake-aware search."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pytest

from orchestrator.bisect import driver
from orchestrator.bisect.search import Outcome, find_culprit
from orchestrator.commands import bisect as bisect_command
from orchestrator.errors import UserError
from orchestrator.job.runner import JobResult
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict

from .conftest import git
from .fakejob import record_job
from .test_bisect import TARGET, _history


def _kind(fixed_at: int, p: float, seed: int = 0):
    """Does run `repeat` of history commit i show the target? Before the fix, with
    probability p; from the fix on, never. The same answer every time it is asked."""

    def shows(i: int, repeat: int) -> bool:
        return i < fixed_at and random.Random(f"{seed}-{i}-{repeat}").random() < p

    return shows


def _jobs(monkeypatch: pytest.MonkeyPatch, history: list[str], shows, calls: list) -> None:
    def fake_run_job(spec: JobSpec, job_dir: Path, **_kw) -> JobResult:
        calls.append((spec.ref, spec.repeat))
        job_dir.mkdir(parents=True, exist_ok=True)
        if shows(history.index(str(spec.ref)), spec.repeat):
            f = {"kind": "warning", "title": TARGET}
            v = Verdict(Status.FAIL, "kernel reported warning", TARGET, [f])
        else:
            v = Verdict(Status.PASS, "test passed")
        return record_job(spec, job_dir, v)

    monkeypatch.setattr(driver, "run_job", fake_run_job)


def _cli(repo: Path, *argv: str) -> int:
    p = argparse.ArgumentParser()
    bisect_command.add_arguments(p)
    args = p.parse_args(["--tree", str(repo), "--test", "hotplug", *argv])
    args.guest_command = []  # what cli.main sets: the words after `--`
    return bisect_command.run(args)


def _run_dir(tmp_path: Path) -> Path:
    return (tmp_path / "results" / "latest").resolve()


def test_a_deterministic_fix_is_named(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    history = _history(tiny_repo, 12)  # [base, step 1, ..., step 12]
    calls: list = []
    _jobs(monkeypatch, history, _kind(fixed_at=7, p=1.0), calls)
    # --bad: the older end, where the target shows; --good: the newer, where it is gone
    rc = _cli(
        tiny_repo, "--fix", "--bad", history[0], "--good", history[-1], "--confidence", "0.99"
    )
    out = capsys.readouterr().out
    m = re.search(r"first fixed commit \((\d+\.\d)% confidence\): (\w+) mm: step 7\n", out)
    assert rc == 0 and m and float(m.group(1)) >= 99 and m.group(2) == history[7][:12], out
    run_dir = _run_dir(tmp_path)
    doc = json.loads((run_dir / "run.json").read_text())["bisect"]
    assert doc["fix"] is True and doc["culprit"]["sha"] == history[7], doc
    assert doc["culprit"]["parents"] == [history[6]]
    state = driver.State.load(run_dir)
    assert state.fix and state.commits == history[::-1]
    assert state.target["titles"] == [TARGET]  # the default target: what the old end shows
    # a deterministic bug: log2 builds between the ends, as for a culprit
    assert len({c for c, _ in calls} - {history[0], history[-1]}) <= 4
    from orchestrator.build.trees import resolve_tree

    log = git(resolve_tree(str(tiny_repo)).worktree, "bisect", "log")
    assert f"# first fixed commit: [{history[7]}]" in log, log


def test_a_flaky_bugs_fix_is_named_with_the_models_confidence(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    history = _history(tiny_repo, 16)
    shows = _kind(fixed_at=9, p=0.5, seed=4)
    calls: list = []
    _jobs(monkeypatch, history, shows, calls)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    target = driver.Target(titles=(TARGET,))
    run_dir, state = driver.start(
        str(tiny_repo), history[-1], history[0], base, target, 0.995, 80, fix=True
    )
    res = driver.bisect(run_dir, state)
    assert res.status == "found" and res.fix and res.exit_code == 0
    assert res.culprit is not None and res.culprit["sha"] == history[9]
    # the model's confidence: the search over the reversed range, fed the same runs, puts
    # the same mass on "the last commit still showing it" (history 8, index 16 - 8)
    repeats: dict[int, int] = {}

    def run(j: int) -> Outcome:
        i = 16 - j  # search index -> history index
        repeats[i] = repeats.get(i, 0) + 1
        return Outcome(bad=shows(i, repeats[i] - 1))

    sim = find_culprit(16, run, confidence=0.995, max_runs=80)
    assert sim.culprit == 16 - 8 and res.confidence == sim.confidence >= 0.995
    assert [(history[16 - j], o) for j, o in sim.steps] == [
        (r["commit"], Outcome.from_dict(r["outcome"])) for r in driver.State.load(run_dir).runs
    ]
    assert any(not o.bad for j, o in sim.steps if 16 - j < 9), "the bug did not flake"
    assert driver.run_bisect(run_dir, driver.State.load(run_dir)) == 0
    assert f"first fixed commit ({res.confidence:.1%} confidence): {history[9][:12]}" in (
        capsys.readouterr().out
    )


def test_a_range_that_is_not_fixed_is_refused(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    history = _history(tiny_repo, 6)
    _jobs(monkeypatch, history, _kind(fixed_at=99, p=1.0), [])  # shows everywhere
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), history[-1], history[0], base, driver.Target(), 0.95, 40, fix=True
    )
    res = driver.bisect(run_dir, state)
    assert res.status == "refused" and res.culprit is None and res.exit_code == 3
    assert "good commit shows the target too: not fixed in this range" in res.note


def test_bad_must_be_an_ancestor_of_good(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    history = _history(tiny_repo, 4)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    t = driver.Target()
    # the ends the way round a culprit bisection has them: refused, naming the rule
    with pytest.raises(UserError, match=r"--bad .* is not an ancestor of --good") as exc:
        driver.start(str(tiny_repo), history[0], history[-1], base, t, 0.95, 40, fix=True)
    assert "older" in (exc.value.hint or "")
    # two branches: neither end is the other's ancestor
    git(tiny_repo, "checkout", "-qb", "side", history[1])
    (tiny_repo / "mm" / "side.c").write_text("int side;\n")
    git(tiny_repo, "add", "mm/side.c")
    git(tiny_repo, "commit", "-qm", "side")
    side = git(tiny_repo, "rev-parse", "HEAD")
    with pytest.raises(UserError, match="not an ancestor"):
        driver.start(str(tiny_repo), side, history[2], base, t, 0.95, 40, fix=True)
    with pytest.raises(UserError, match="--verify-revert does not apply to --fix"):
        driver.start(
            str(tiny_repo), history[-1], history[0], base, t, 0.95, 40,
            verify_revert=True, fix=True,
        )  # fmt: skip
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_an_old_state_without_fix_resumes_as_a_culprit_bisect(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    history = _history(tiny_repo, 10)
    calls: list = []
    # a cause bisection's history: the target from commit 6 on
    _jobs(monkeypatch, history, lambda i, _r: i >= 6, calls)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), history[0], history[-1], base, driver.Target(), 0.95, 40
    )
    monkeypatch.setattr(driver, "_now", lambda: float(len(calls)))
    assert driver.bisect(run_dir, state, deadline=3.0).status == "budget"
    # bisect.json as an older kto wrote it: no "fix"
    doc = json.loads((run_dir / "bisect.json").read_text())
    del doc["fix"]
    (run_dir / "bisect.json").write_text(json.dumps(doc))
    kept = len(calls)
    assert driver.run_bisect(run_dir, driver.State.load(run_dir)) == 0
    out = capsys.readouterr().out
    assert "first bad commit (" in out and f"{history[6][:12]} mm: step 6" in out, out
    assert calls[kept:] and not set(calls[kept:]) & set(calls[:kept])
    assert json.loads((run_dir / "run.json").read_text())["bisect"]["fix"] is False
