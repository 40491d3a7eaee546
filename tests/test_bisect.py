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
from orchestrator.bisect.search import Outcome, Search, find_culprit, run_search
from orchestrator.errors import UserError
from orchestrator.job.runner import JobResult
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict

from .conftest import git
from .fakejob import record_job


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
    res = find_culprit(16, _step(40), max_runs=40)  # the "culprit" is past bad: bad is clean
    # a quarter of the budget (at least 10) at bad before giving up
    assert res.culprit is None and "does not show the target in 10 runs" in res.reason
    assert res.runs == 10 and {i for i, _ in res.steps} == {16}
    res = find_culprit(16, _step(40), max_runs=80)
    assert res.culprit is None and res.runs == 20


def test_good_is_run_only_when_the_posterior_needs_it() -> None:
    # A clean run anywhere before the culprit clears good too ("the target was there at
    # good already" is one more hypothesis): good is not run for a culprit far from it...
    res = find_culprit(64, _step(50), confidence=0.995)
    assert res.culprit == 50 and 0 not in {i for i, _ in res.steps}
    # ...and is, when only good can tell "the first commit" from "already there".
    res = find_culprit(64, _step(1), confidence=0.995)
    assert res.culprit == 1 and 0 in {i for i, _ in res.steps}


def test_the_target_at_good_refuses_the_range() -> None:
    res = find_culprit(16, _step(0))  # every commit shows it, good included
    assert res.culprit is None and "good commit shows the target" in res.reason


def test_an_infrastructure_error_is_run_again_once_then_skipped() -> None:
    seen: list[int] = []

    def run(i: int) -> Outcome:
        seen.append(i)
        if i == 8:  # QEMU dies on every boot of this commit
            return Outcome(infra=True)
        if i == 3 and seen.count(3) == 1:  # once only
            return Outcome(infra=True)
        return Outcome(bad=i >= 6)

    res = find_culprit(16, run)
    assert res.culprit == 6, res
    at = [i for i, _ in res.steps]
    first8 = at.index(8)
    assert at[first8 + 1] == 8 and at.count(8) == 2  # the retry comes next, then no more
    first3 = at.index(3)
    assert at[first3 + 1] == 3 and res.steps[first3 + 1][1] == Outcome()  # the retry judges
    assert res.search is not None and res.search.skipped == {8}


def test_a_search_resumed_from_its_history_takes_the_same_decisions() -> None:
    # What `--resume` relies on: a Search rebuilt from the runs kept so far asks for
    # exactly the runs the uninterrupted one asked for next.
    full = find_culprit(40, _step(23, p=0.5, u=0.1, seed=5), max_runs=80)
    for cut in (1, 7, len(full.steps) // 2, len(full.steps) - 1):
        s = Search(40)
        for i, o in full.steps[:cut]:
            s.add(i, o)
        rest = iter(full.steps[cut:])

        def probe(picks: list[int], rest=rest) -> list[tuple[int, Outcome]]:
            out = [next(rest) for _ in picks]
            assert [i for i, _ in out] == picks, (picks, out)
            return out

        res = run_search(s, probe, 0.95, 80)
        assert res.steps == full.steps and res.culprit == full.culprit, cut


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
        i = commits.index(str(spec.ref))
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
        build = {"cache_hit": not first, "compiled_s": 10.0 if first else 0.0}
        return record_job(spec, job_dir, v, build=build, durations={"guest": 2.5})

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


# -- the driver on scripted outcomes: flaky, unrelated findings, build breaks, QEMU deaths --
TARGET = "WARNING in __mmdrop"
KINDS = ("bad", "good", "unrelated", "miss", "error")


def _script(culprit: int, p: float = 0.6, seed: int = 1, miss: int = 12, once: int = 10):
    """What run `repeat` of commit i shows, the same every time it is asked: the target
    with probability p from the culprit on, another finding in 15 % of the runs; commit
    `miss` never builds, the first boot of `once` and every boot of commit 9 die (QEMU)."""

    def kind(i: int, repeat: int) -> str:
        if i == miss:
            return "miss"
        if (i, repeat) == (once, 0) or i == 9:
            return "error"
        rng = random.Random(f"{seed}-{i}-{repeat}")
        if rng.random() < 0.15:
            return "unrelated"
        return "bad" if i >= culprit and rng.random() < p else "good"

    return kind


def _scripted_jobs(monkeypatch: pytest.MonkeyPatch, commits: list[str], kind, calls: list):
    """driver.run_job (and the matrix executor, for parallel probes) replaced by jobs that
    show what `kind` says, written the way a real job writes them."""
    from orchestrator.matrix import driver as matrix_driver

    def fake_run_job(spec: JobSpec, job_dir: Path, **_kw) -> JobResult:
        calls.append((spec.ref, spec.repeat))
        what = kind(commits.index(str(spec.ref)), spec.repeat)
        job_dir.mkdir(parents=True, exist_ok=True)
        if what in ("bad", "unrelated"):
            title = TARGET if what == "bad" else "BUG: KASAN: use-after-free in tty_release"
            f = {"kind": "warning" if what == "bad" else "kasan", "title": title}
            v = Verdict(Status.FAIL, "kernel reported a finding", title, [f])
        elif what == "miss":
            v = Verdict(Status.MISS, "build failed: mm/mmu_notifier.o")
        elif what == "error":
            v = Verdict(Status.ERROR, "boot failed: QEMU died")
        else:
            v = Verdict(Status.PASS, "test passed")
        return record_job(spec, job_dir, v)

    def execute(run_dir, jobs, budget, scheduler):
        for j in jobs:
            driver.run_job(j.spec, run_dir / j.folder)

    monkeypatch.setattr(driver, "run_job", fake_run_job)
    monkeypatch.setattr(matrix_driver, "execute", execute)


OUTCOME = {
    "bad": Outcome(bad=True),
    "good": Outcome(),
    "unrelated": Outcome(unrelated=True),
    "miss": Outcome(skip=True),
    "error": Outcome(infra=True),
}


def _start(repo: Path, commits: list[str], parallel: int = 1, max_runs: int = 80):
    base = JobSpec(arch="x86_64", tree=str(repo), test="hotplug")
    target = driver.Target(titles=(TARGET,))
    return driver.start(
        str(repo), commits[0], commits[-1], base, target, 0.995, max_runs, parallel=parallel
    )


def _kept(run_dir: Path) -> list[tuple[int, Outcome]]:
    st = driver.State.load(run_dir)
    return [(st.commits.index(r["commit"]), Outcome.from_dict(r["outcome"])) for r in st.runs]


@pytest.mark.parametrize("parallel", [1, 3])
def test_the_driver_and_the_simulator_take_the_same_decisions(
    parallel: int, tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """bench/bisect_sim.py measures find_culprit; `kto bisect` runs real jobs. Fed the same
    outcomes (flaky target, unrelated findings, a commit that does not build, QEMU deaths),
    both run the same commits in the same order and name the same culprit, as sure."""
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 16)
    kind = _script(culprit=11)
    calls: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, kind, calls)
    run_dir, state = _start(tiny_repo, commits, parallel)
    rc = driver.run_bisect(run_dir, state)
    out = capsys.readouterr().out

    repeats: dict[int, int] = {}

    def run(i: int) -> Outcome:
        repeats[i] = repeats.get(i, 0) + 1
        return OUTCOME[kind(i, repeats[i] - 1)]

    sim = find_culprit(16, run, confidence=0.995, max_runs=80, parallel=parallel)
    assert _kept(run_dir) == sim.steps
    assert sim.culprit == 11 and rc == 0 and f"first bad commit ({sim.confidence:.1%}" in out
    doc = json.loads((run_dir / "run.json").read_text())["bisect"]
    assert doc["culprit"]["sha"] == commits[11] and doc["confidence"] == sim.confidence
    # the script did reach every kind of outcome: 9 died twice, 12 did not build
    assert {o.word() for _, o in sim.steps} == {"bad", "good", "unrelated", "skip", "infra"}
    assert sim.search is not None and sim.search.skipped == {9, 12}


@pytest.mark.parametrize("parallel", [1, 3])
def test_unrelated_findings_build_breaks_and_infrastructure_errors(
    parallel: int, tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 16)
    calls: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, _script(culprit=11), calls)
    run_dir, state = _start(tiny_repo, commits, parallel)
    assert driver.run_bisect(run_dir, state) == 0
    out, err = capsys.readouterr()
    kept = _kept(run_dir)
    at = [i for i, _ in kept]
    # Another finding votes neither way: the fail:runs line counts the target's runs only.
    for i in sorted(set(at) - {9, 12}):
        runs = [o for j, o in kept if j == i]
        votes = [o for o in runs if o.votes]
        line = f"fail:runs {sum(o.bad for o in votes)}:{len(votes)}"
        line += f" (+{len(runs) - len(votes)} without a verdict)" if len(votes) < len(runs) else ""
        assert f"{i:3d} {commits[i][:12]}  {line}" in out, (i, out)
    assert any(o.unrelated for _, o in kept)
    # A commit that does not build is run once and skipped; git bisect hears it too.
    assert at.count(12) == 1 and kept[at.index(12)][1].skip
    from orchestrator.build.trees import resolve_tree

    log = git(resolve_tree(str(tiny_repo)).worktree, "bisect", "log")
    assert f"git bisect skip {commits[12]}" in log
    # QEMU dying: run again in the next round (before any other pick), once; dying twice in a
    # row is a skip, never tried again.
    first = at.index(10)
    assert kept[first][1].infra and at[first + 1 :].index(10) < parallel
    assert [o for j, o in kept if j == 10][1].votes
    assert at.count(9) == 2 and all(o.infra for j, o in kept if j == 9)
    folders = [r["folder"] for r in driver.State.load(run_dir).runs]
    assert [f for f in folders if f.startswith("009-")] == [
        f"009-{commits[9][:12]}-r0",
        f"009-{commits[9][:12]}-r1",
    ]
    assert f"{commits[9][:12]} infra (boot failed: QEMU died); twice in a row: skipped" in err


def _resume(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: int, cut: int,
    forget_one: bool = False,
) -> None:  # fmt: skip
    """An uninterrupted bisect, then the same one interrupted at its cut-th job and resumed:
    the resumed session must run exactly the jobs the first session had not kept, in the
    uninterrupted order, and end with the same runs. `forget_one`: a broken resume that
    loses the last kept run (and so runs it again): the checks must catch it."""
    commits = _history(tiny_repo, 16)
    kind = _script(culprit=6, p=0.5, seed=3, miss=4, once=3)
    full: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, kind, full)
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "whole"))
    run_dir, state = _start(tiny_repo, commits, parallel)
    driver.run_bisect(run_dir, state)
    whole = _kept(run_dir)
    assert len(full) > cut + 5

    calls: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, kind, calls)
    job = driver.run_job

    def interrupted(spec: JobSpec, job_dir: Path, **kw) -> JobResult:
        if len(calls) == cut:
            raise KeyboardInterrupt
        return job(spec, job_dir, **kw)

    monkeypatch.setattr(driver, "run_job", interrupted)
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "cut"))
    run_dir, state = _start(tiny_repo, commits, parallel)
    with pytest.raises(KeyboardInterrupt):
        driver.run_bisect(run_dir, state)
    assert calls == full[:cut]
    kept = _kept(run_dir)
    # kept: every job of the rounds that ended; a round the interrupt cut is not kept
    assert kept == whole[: len(kept)] and cut - parallel < len(kept) <= cut

    monkeypatch.setattr(driver, "run_job", job)
    if forget_one:
        load = driver.State.load

        def forgetful(run_dir: Path) -> driver.State:
            st = load(run_dir)
            st.runs.pop()
            return st

        monkeypatch.setattr(driver.State, "load", forgetful)
    before = len(calls)
    driver.run_bisect(run_dir, driver.State.load(run_dir))
    assert calls[before:] == full[len(kept) :], "the resumed session ran other jobs"
    assert _kept(run_dir) == whole


# cut 7: between an infrastructure error and its retry (single) or before the retry round
@pytest.mark.parametrize(("parallel", "cut"), [(1, 3), (1, 7), (1, 12), (3, 7), (3, 11)])
def test_a_resumed_bisect_runs_exactly_the_jobs_not_kept(
    parallel: int, cut: int, tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resume(tiny_repo, tmp_path, monkeypatch, parallel, cut)


def test_the_resume_check_catches_a_resume_that_runs_a_kept_job_again(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AssertionError, match="the resumed session ran other jobs"):
        _resume(tiny_repo, tmp_path, monkeypatch, 1, 9, forget_one=True)


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

    def fake_execute(run_dir, jobs, budget, scheduler):
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
        i = commits.index(str(spec.ref))
        if 0 < i < len(commits) - 1 and not broke:
            broke.append(str(spec.ref))
            return record_job(spec, job_dir, Verdict(Status.ERROR, "boot failed: QEMU died"))
        return judged(spec, job_dir, **kw)

    monkeypatch.setattr(driver, "run_job", first_probe_of_a_middle_commit_errors)

    def execute(run_dir, jobs, budget, scheduler):
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
    assert every[first]["outcome"] == {
        "bad": False,
        "unrelated": False,
        "skip": False,
        "infra": True,
    }
    # Retried in the same round, before the search moves on: the round's other probes
    # are judged, then the retry, in a folder of its own.
    retry = next(r for r in every[first + 1 :] if r["commit"] == broke[0])
    assert not retry["outcome"]["unrelated"] and retry["folder"].endswith("-r1"), every
    assert every.index(retry) <= first + parallel, every


# -- a wall-time deadline: the unattended caller's budget ----------------------------------
def test_a_deadline_in_the_past_stops_before_any_probe(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import time

    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 8)
    calls: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, _script(culprit=5, p=1.0, miss=-1, once=-1), calls)
    run_dir, state = _start(tiny_repo, commits)
    res = driver.bisect(run_dir, state, deadline=time.time() - 1)
    assert calls == [] and res.status == "budget" and res.culprit is None
    assert res.exit_code == 3 and res.run_dir == run_dir and "--resume" in res.note
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "budget" and doc["bisect"]["status"] == "budget"
    assert driver.State.load(run_dir).runs == [] and capsys.readouterr().out == ""
    # the CLI's printout of the same: the budget, never a culprit
    assert driver.run_bisect(run_dir, driver.State.load(run_dir), time.time() - 1) == 3
    assert "stopped: wall-time budget ran out after 0 runs" in capsys.readouterr().out


@pytest.mark.parametrize(("parallel", "cut"), [(1, 6), (3, 5)])
def test_a_deadline_mid_way_stops_and_a_resume_finishes_the_same(
    parallel: int, cut: int, tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = _history(tiny_repo, 16)
    kind = _script(culprit=6, p=0.5, seed=3, miss=4, once=3)
    full: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, kind, full)
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "whole"))
    run_dir, state = _start(tiny_repo, commits, parallel)
    whole_res = driver.bisect(run_dir, state)
    whole = _kept(run_dir)
    assert whole_res.status == "found" and len(full) > cut + 5

    calls: list[tuple[str, int]] = []
    _scripted_jobs(monkeypatch, commits, kind, calls)
    # the clock: one second a job, the deadline at the cut-th job's end
    monkeypatch.setattr(driver, "_now", lambda: float(len(calls)))
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "cut"))
    run_dir, state = _start(tiny_repo, commits, parallel)
    res = driver.bisect(run_dir, state, deadline=float(cut))
    assert res.status == "budget" and res.culprit is None
    # the round under way when the deadline passed ends; no round starts after it
    assert cut <= len(calls) < cut + parallel and calls == full[: len(calls)]
    assert _kept(run_dir) == whole[: len(calls)]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "budget"

    before = len(calls)
    later = driver.bisect(run_dir, driver.State.load(run_dir), deadline=float(len(full) + 99))
    assert calls[before:] == full[before:], "the resumed session ran other jobs"
    assert _kept(run_dir) == whole
    assert later.status == "found" and later.culprit == whole_res.culprit
    assert later.confidence == whole_res.confidence and later.exit_code == whole_res.exit_code
    assert json.loads((run_dir / "run.json").read_text())["bisect"]["status"] == "found"


def test_a_run_that_shows_only_what_its_cell_expects_is_clean_for_the_target() -> None:
    """A bisect in a matrix cell with `expect:` (a seeded bug it must catch): XFAIL without
    the target is a clean run, XFAIL's expected finding plus the target is bad."""
    target = driver.Target(titles=(TARGET,))
    spec = JobSpec(arch="x86_64", test="hotplug")
    seeded = {"kind": "warning", "title": "mmu_notifier: created two mmu_notifier's"}
    xfail = Verdict(Status.XFAIL, "caught as expected", seeded["title"], [seeded])
    assert target.judge(JobResult(spec, xfail, Path("."), {})) == Outcome()
    both = [seeded, {"kind": "warning", "title": TARGET}]
    fail = Verdict(Status.FAIL, "kernel reported warning", TARGET, both)
    assert target.judge(JobResult(spec, fail, Path("."), {})).bad


def test_the_target_under_an_alternative_title_is_the_target() -> None:
    """Inlining differs across the range: the same WARNING is titled after its caller at
    some commits; the parser's alternative titles still name the target."""
    target = driver.Target(titles=(TARGET,))
    spec = JobSpec(arch="x86_64", test="hotplug")
    f = {"kind": "warning", "title": "WARNING in mmput", "alt_titles": [TARGET]}
    v = Verdict(Status.FAIL, "kernel reported warning", f["title"], [f])
    assert target.judge(JobResult(spec, v, Path("."), {})).bad


def test_a_bisect_another_kto_is_running_is_busy_and_left_alone(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night's bot resuming a bisect a `kto bisect --bug N` still runs: refused as busy,
    before any probe, and the state is untouched."""
    from orchestrator.locks import file_lock

    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    commits = _history(tiny_repo, 8)
    calls: list[str] = []
    _fake_jobs(monkeypatch, commits, culprit=5, calls=calls)
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40
    )
    held = file_lock(run_dir / "bisect.lock", "held by the other kto")
    with held, pytest.raises(driver.Busy, match="in use by kto pid"):
        driver.bisect(run_dir, state)
    assert calls == [] and driver.State.load(run_dir).runs == []
    assert driver.bisect(run_dir, state).status == "found"  # free again: it runs
