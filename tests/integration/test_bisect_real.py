"""A real bisect: 4 commits on top of debian-6.1, one of which (the 3rd) puts a WARN into
the CPU-offline path; `kto bisect` with the hotplug test must name it, with real builds
(incremental in the tree's build dir) and real boots, on arm64: its incremental
builds and TCG boots take about half the time of x86_64's. The flaky variant (slow: about 30
runs) warns in about half the boots only, and must still be named, with its confidence. Both
run with the CLI's defaults for --confidence and --max-runs (bench/bisect_real.py runs the
same history for its numbers)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from .kto_cli import REPO

pytestmark = pytest.mark.integration

BRANCH = "kto-test/bisect"
SERIES = REPO / "kernels" / "series"
CULPRIT = 3  # of the 4 commits


def _history(series: str = "broken-offline-warn") -> tuple[str, list[str]]:
    """main + 4 commits on BRANCH, the 3rd from `series` (re-created each time, under the
    tree lock). Four are enough to need two bisect steps; each more costs a build and boots."""
    from orchestrator.build.trees import resolve_tree, tree_lock
    from orchestrator.git import Git

    tree = resolve_tree("debian-6.1")
    git = Git(tree.worktree)
    # Fixed dates and committer: the same history has the same commits every time, so a
    # warm host has their kernels built already (each new commit was an incremental build,
    # about a minute of the test).
    fixed = {
        "GIT_AUTHOR_DATE": "2026-12-01T12:00:00+00:00",
        "GIT_COMMITTER_DATE": "2026-12-01T12:00:00+00:00",
        "GIT_COMMITTER_NAME": "kto test",
        "GIT_COMMITTER_EMAIL": "kto-test@example.org",
    }
    with tree_lock(tree), mock.patch.dict(os.environ, fixed):
        base = tree.base_commit
        git("checkout", "-q", "-B", BRANCH, base)
        for i in range(1, 5):
            if i == CULPRIT:
                patch = next((SERIES / series).glob("*.patch"))
                git("am", "-q", str(patch))
                continue
            note = tree.worktree / "Documentation" / "kto-bisect-test.txt"
            with note.open("a") as fh:
                fh.write(f"step {i}\n")
            git("add", str(note))
            git("commit", "-q", "-m", f"Documentation: kto bisect test step {i}")
        commits = git.out("rev-list", "--reverse", f"{base}..{BRANCH}").splitlines()
        git("checkout", "-q", "--detach", base)
    return base, commits


def _bisect(tmp_path: Path, good: str, bad: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KTO_RESULTS": str(tmp_path / "results")}
    args = ["--tree", "debian-6.1", "--good", good, "--bad", bad, "--arch", "arm64"]
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "bisect", *args, "--test", "hotplug",
         "--duration", "2", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip


def test_bisect_finds_the_commit_that_breaks_cpu_offline(tmp_path: Path) -> None:
    base, commits = _history()
    res = _bisect(tmp_path, base, commits[-1], "--verify-revert")
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    culprit = commits[CULPRIT - 1]
    assert "first bad commit" in res.stdout and culprit[:12] in res.stdout, res.stdout
    assert "cpu/hotplug: warn on the first CPU offline" in res.stdout
    # the culprit reverted on top of bad: the WARN is gone in every run
    assert "revert on bad confirmed: the target is gone (fail:runs 0:" in res.stdout, res.stdout
    run = (tmp_path / "results" / "latest").resolve()
    doc = json.loads((run / "run.json").read_text())
    assert doc["bisect"]["culprit"]["sha"] == culprit and doc["bisect"]["confidence"] >= 0.999
    state = json.loads((run / "bisect.json").read_text())
    assert state["target"]["titles"] == ["WARNING in takedown_cpu"]
    assert len({r["commit"] for r in state["runs"]}) <= 2 + 2  # good, bad, log2(4) steps


@pytest.mark.slow
def test_bisect_finds_a_flaky_commit_and_says_how_sure(tmp_path: Path) -> None:
    base, commits = _history("broken-offline-flaky")
    culprit = commits[CULPRIT - 1]
    # The coin may come up "warn" in every run at or after the culprit (4 runs: 1 in 16);
    # the bisect is then right but no flaky run was seen, so it runs once more (1 in 256).
    for attempt in range(2):
        res = _bisect(tmp_path / f"try{attempt}", base, commits[-1])
        assert res.returncode == 0, res.stdout + res.stderr[-4000:]
        m = re.search(r"first bad commit \((\d+\.\d)% confidence\): (\w+) ", res.stdout)
        assert m and m.group(2) == culprit[:12] and float(m.group(1)) >= 99.9, res.stdout
        run = (tmp_path / f"try{attempt}" / "results" / "latest").resolve()
        state = json.loads((run / "bisect.json").read_text())
        assert state["target"]["titles"] == ["WARNING in takedown_cpu"]
        at = state["commits"].index  # 0 good .. 4 bad
        after = [r["outcome"] for r in state["runs"] if at(r["commit"]) >= CULPRIT]
        before = [r["outcome"] for r in state["runs"] if at(r["commit"]) < CULPRIT]
        assert not any(o["bad"] for o in before), res.stdout  # never a bad run before it
        if any(not o["bad"] for o in after):
            break
    # the coin shows: clean runs at bad commits too
    assert any(not o["bad"] for o in after) and any(o["bad"] for o in after), res.stdout
    print(res.stdout)  # the fail:runs table and the cost line, for the record
