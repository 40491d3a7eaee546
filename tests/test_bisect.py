"""Bisect: the flake-aware search on fake steps, and the driver on a real tiny git history."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.bisect import driver
from orchestrator.bisect.search import Outcome, find_culprit
from orchestrator.errors import UserError
from orchestrator.job.runner import JobResult
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict

from .conftest import git


def _step(culprit: int, p: float = 1.0, u: float = 0.0, seed: int = 0, skip=()):
    rng = random.Random(seed)

    def run(i: int) -> Outcome:
        if i in skip:
            return Outcome(skip=True)
        if rng.random() < u:
            return Outcome(unrelated=True)
        return Outcome(bad=i >= culprit and rng.random() < p)

    return run


@pytest.mark.parametrize("n", [2, 5, 16, 37, 64])
def test_deterministic_bug_costs_log2_builds(n: int) -> None:
    # Every culprit position: at most ceil(log2 n) kernels built between good and bad (the
    # confirming runs are boots of kernels already built); with the two ends, log2 n + 2.
    for culprit in range(1, n + 1):
        res = find_culprit(n, _step(culprit))
        assert res.culprit == culprit and res.confidence >= 0.95, culprit
        middle = {i for i, _ in res.steps} - {0, n}
        assert len(middle) <= math.ceil(math.log2(n)), (culprit, sorted(middle))


def test_flaky_bug_is_found_with_its_confidence() -> None:
    hits = sum(find_culprit(32, _step(11, p=0.5, seed=s)).culprit == 11 for s in range(30))
    assert hits >= 27  # ~95 % asked for


def test_unrelated_crashes_vote_neither_way() -> None:
    res = find_culprit(32, _step(20, u=0.3, seed=3))
    assert res.culprit == 20
    assert any(o.unrelated for _, o in res.steps)


def test_bad_that_never_reproduces_is_refused() -> None:
    res = find_culprit(16, _step(40))  # the "culprit" is past bad: bad is clean
    assert res.culprit is None and "does not reproduce" in res.reason


def test_build_breaks_are_skipped_and_a_skip_only_range_says_so() -> None:
    res = find_culprit(16, _step(9, skip={8}))
    assert 8 not in {i for i, o in res.steps if not o.skip}
    assert res.culprit in (8, 9)  # 8 cannot be told apart from 9 when 8 never builds
    only = find_culprit(4, _step(2, skip={1, 2, 3}))
    assert only.confidence < 0.95 and "confidence" in only.reason


# -- the driver on a real git history, with a fake job ------------------------------------
def _history(repo: Path, n: int) -> list[str]:
    for i in range(1, n + 1):
        # a last line of one space: a diff of it ends in a context line git must keep
        (repo / "mm" / "mmu_notifier.c").write_text(f"int step{i};\n \n")
        git(repo, "commit", "-qam", f"mm: step {i}\n\nLink: https://lore.example.org/{i}")
    return git(repo, "rev-list", "--reverse", "HEAD").splitlines()


def _fake_jobs(
    monkeypatch: pytest.MonkeyPatch,
    commits: list[str],
    culprit: int,
    calls: list,
    revert_fixes: bool = True,
    repo: Path | None = None,
):
    def fake_run_job(spec: JobSpec, job_dir: Path, **_kw) -> JobResult:
        calls.append(spec.ref)
        i = commits.index(spec.ref)
        job_dir.mkdir(parents=True, exist_ok=True)
        if spec.patches:  # the culprit reverted on top of bad
            assert i == len(commits) - 1
            patch_file = next(Path(spec.patches).glob("*.patch"))
            patch = patch_file.read_text()
            assert 'Subject: [PATCH] Revert "mm: step' in patch and "+int step" in patch
            # a patch git applies: onto the culprit's own tree it takes the culprit back
            sha = patch.split("This reverts commit ")[1].split()[0]
            tree = job_dir / "culprit-tree"
            tree.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(repo), "archive", sha], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            subprocess.run(["git", "apply", "--check", str(patch_file)], cwd=tree, check=True)
        if i >= culprit and (not spec.patches or not revert_fixes):
            f = {"kind": "warning", "title": "WARNING in __mmdrop"}
            v = Verdict(Status.FAIL, "kernel reported warning", f["title"], [f])
        else:
            v = Verdict(Status.PASS, "test passed")
        first = calls.count(spec.ref) == 1  # later runs of a commit boot its cached kernel
        rec = {
            "arch": spec.arch,
            "test": spec.test,
            "status": str(v.status),
            "verdict": v.to_dict(),
            "build": {"cache_hit": not first, "compiled_s": 10.0 if first else 0.0},
            "durations": {"guest": 2.5},
        }
        (job_dir / "job.json").write_text(json.dumps(rec))
        (job_dir / "findings.json").write_text(json.dumps({"findings": v.findings}))
        (job_dir / "console.log").write_text("")
        return JobResult(spec, v, job_dir, rec)

    monkeypatch.setattr(driver, "run_job", fake_run_job)


def test_driver_finds_the_commit_and_keeps_git_bisect_state(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 12)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=7, calls=calls)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug", duration=10)
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40
    )
    assert driver.run_bisect(run_dir, state) == 0
    out = capsys.readouterr().out
    m = re.search(r"first bad commit \((\d+\.\d)% confidence\): (\w+) mm: step 7", out)
    assert m and float(m.group(1)) >= 95 and m.group(2) == commits[7][:12], out
    assert "Link: https://lore.example.org/7" in out and "fail:runs" in out
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["bisect"]["culprit"]["sha"] == commits[7]
    spent, tested = doc["bisect_cost"], len(set(calls))
    assert spent["runs"] == spent["boots"] == len(calls) == spent["steps"], spent
    assert spent["compiled"] == spent["commits_tested"] == tested
    assert spent["compile_s"] == 10.0 * tested
    assert f"{len(calls)} runs ({len(calls)} boots) over {tested} commits" in out
    assert state.target["titles"] == ["WARNING in __mmdrop"]  # the default target: BAD's
    from orchestrator.build.trees import resolve_tree

    log = git(resolve_tree(str(tiny_repo)).worktree, "bisect", "log")
    assert f"# first bad commit: [{commits[7]}]" in log
    assert (run_dir / "junit.xml").is_file()


@pytest.mark.parametrize("fixes", [True, False])
def test_verify_revert_runs_bad_without_the_culprit(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, fixes: bool
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 8)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=5, calls=calls, revert_fixes=fixes, repo=tiny_repo)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40,
        verify_revert=True,
    )  # fmt: skip
    rc = driver.run_bisect(run_dir, state)
    out = capsys.readouterr().out
    revert = json.loads((run_dir / "run.json").read_text())["bisect"]["revert"]
    runs = driver.State.load(run_dir).revert_runs
    assert len(runs) >= 2 and all(r["folder"].startswith("revert-") for r in runs)
    if fixes:
        assert rc == 0 and revert.startswith("revert on bad confirmed: the target is gone")
        assert f"fail:runs 0:{len(runs)}" in out
    else:
        assert rc == 1 and "NOT confirmed" in revert and f"{len(runs)}:{len(runs)}" in revert


def test_driver_resumes_without_rerunning(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 12)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=4, calls=calls)
    real = driver.run_job

    def interrupted(spec, job_dir, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(spec, job_dir, **kw)

    monkeypatch.setattr(driver, "run_job", interrupted)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40
    )
    with pytest.raises(KeyboardInterrupt):
        driver.run_bisect(run_dir, state)
    done = len(driver.State.load(run_dir).runs)
    assert done == 3
    monkeypatch.setattr(driver, "run_job", real)
    before = len(calls)
    assert driver.run_bisect(run_dir, driver.State.load(run_dir)) == 0
    resumed = calls[before:]
    assert len(driver.State.load(run_dir).runs) == done + len(resumed)


def test_bad_ranges_are_refused(tiny_repo: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 3)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo))
    t = driver.Target()
    with pytest.raises(UserError, match="same commit"):
        driver.start(str(tiny_repo), commits[1], commits[1], base, t, 0.95, 40)
    with pytest.raises(UserError, match="not an ancestor"):
        driver.start(str(tiny_repo), commits[-1], commits[0], base, t, 0.95, 40)
    with pytest.raises(UserError, match="not a commit"):
        driver.start(str(tiny_repo), "nope", commits[0], base, t, 0.95, 40)


def test_parallel_probes_go_through_the_matrix_executor(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from orchestrator.matrix import driver as matrix_driver

    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 16)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=11, calls=calls)
    batches: list[list[str]] = []

    def fake_execute(run_dir, jobs, budget, scheduler):  # type: ignore[no-untyped-def]
        assert scheduler == "tcp://127.0.0.1:1" and all(j.cell is None for j in jobs)
        batches.append([j.spec.ref for j in jobs])
        for j in jobs:
            driver.run_job(j.spec, run_dir / j.folder)

    monkeypatch.setattr(matrix_driver, "execute", fake_execute)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40,
        parallel=3, scheduler="tcp://127.0.0.1:1",
    )  # fmt: skip
    assert driver.run_bisect(run_dir, state) == 0
    assert commits[11][:12] in capsys.readouterr().out
    assert batches and max(len(b) for b in batches) == 3
    # with a scheduler every probe goes to the cluster, the single ones too (good and bad)
    assert sum(len(b) for b in batches) == len(calls), (batches, calls)
    # 3 probes a round: the 15 commits between are cut in 4 parts, then the 3 left
    middle = {c for b in batches for c in b} - {commits[0], commits[-1]}
    assert len(middle) <= 6
    spent = json.loads((run_dir / "run.json").read_text())["bisect_cost"]
    # a batch is one step: fewer rounds than runs
    assert spent["steps"] == spent["runs"] - sum(len(b) - 1 for b in batches), spent


@pytest.mark.parametrize("parallel", [1, 3])
def test_an_infrastructure_error_is_retried_once_on_every_path(
    parallel: int, tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One probe path or several at once through the matrix's executor: an ERROR (QEMU
    died: nothing said about the kernel) votes neither way and the commit runs again."""
    from orchestrator.matrix import driver as matrix_driver

    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 12)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=6, calls=calls)
    judged = driver.run_job
    broke: list[str] = []

    def first_probe_of_a_middle_commit_errors(spec: JobSpec, job_dir: Path, **kw) -> JobResult:
        i = commits.index(spec.ref)
        if 0 < i < len(commits) - 1 and not broke:
            broke.append(spec.ref)
            job_dir.mkdir(parents=True, exist_ok=True)
            v = Verdict(Status.ERROR, "boot failed: QEMU died")
            rec = {"arch": spec.arch, "test": spec.test, "status": "ERROR", "verdict": v.to_dict()}
            (job_dir / "job.json").write_text(json.dumps(rec))
            return JobResult(spec, v, job_dir, rec)
        return judged(spec, job_dir, **kw)

    monkeypatch.setattr(driver, "run_job", first_probe_of_a_middle_commit_errors)

    def execute(run_dir, jobs, budget, scheduler):  # type: ignore[no-untyped-def]
        for j in jobs:
            driver.run_job(j.spec, run_dir / j.folder)

    monkeypatch.setattr(matrix_driver, "execute", execute)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40,
        parallel=parallel,
    )  # fmt: skip
    assert driver.run_bisect(run_dir, state) == 0
    every = driver.State.load(run_dir).runs
    first = next(n for n, r in enumerate(every) if r["commit"] == broke[0])
    assert every[first]["outcome"] == {"bad": False, "unrelated": True, "skip": False}
    # Retried in the same round, before the search moves on: the round's other probes
    # are judged, then the retry, in a folder of its own.
    retry = next(r for r in every[first + 1 :] if r["commit"] == broke[0])
    assert not retry["outcome"]["unrelated"] and retry["folder"].endswith("-r1"), every
    assert every.index(retry) <= first + parallel, every
