"""Implausible culprits: each flag on a real tiny git history, for its kind of commit, and
none for a plain code change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.bisect import driver, plausible
from orchestrator.git import Git

from .conftest import git

FILE = "mm/mmu_notifier.c"


def _commit(repo: Path, files: dict[str, str], msg: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        git(repo, "add", name)
    git(repo, "commit", "-qm", msg)
    return git(repo, "rev-parse", "HEAD")


def _state(runs: list[dict] | None = None) -> driver.State:
    return driver.State("t", [], {"arch": "x86_64"}, {}, 0.999, 80, runs=runs or [])


def _flags(
    repo: Path, sha: str, arch: str = "x86_64", confidence: float = 0.999, state=None
) -> list[str]:
    g = Git(repo)
    info = plausible.commit_info(g, sha)
    return plausible.flags(
        g, info, repo, state or _state(), arch=arch, floor=0.95, confidence=confidence
    )


def _edit(repo: Path, old: str, new: str) -> str:
    return (repo / FILE).read_text().replace(old, new)


C_SOURCE = """\
/*
 * mmu_notifier: the header comment
 */
int line1;
int *p;
char *s = "/* not a comment */";
/* one line */
int line2; // trailing
"""


@pytest.fixture
def repo(tiny_repo: Path) -> Path:
    _commit(tiny_repo, {FILE: C_SOURCE, "arch/sparc/kernel/irq.c": "int irq;\n"}, "C source")
    return tiny_repo


def test_a_plain_code_change_has_no_flag(repo: Path) -> None:
    sha = _commit(repo, {FILE: _edit(repo, "int line1;", "int line1 = 1;")}, "mm: set line1")
    assert _flags(repo, sha) == []
    # code that starts like a comment's continuation line (` * `) is still code
    sha = _commit(repo, {FILE: _edit(repo, "int *p;", "int *p;\n\t*p = 2;")}, "mm: store")
    assert _flags(repo, sha) == []
    # a `/*` in a string literal opens no comment
    sha = _commit(repo, {FILE: _edit(repo, "not a comment", "still not")}, "mm: string")
    assert _flags(repo, sha) == []
    # the probed arch's own files, and generic files that only look arch-ish
    sha = _commit(repo, {"arch/x86/kernel/cpu.c": "int cpu;\n", "arch/Kconfig": "x\n"}, "x86")
    assert _flags(repo, sha) == []


def test_a_documentation_only_change(repo: Path) -> None:
    sha = _commit(
        repo,
        {"Documentation/mm/notifier.rst": "Notifiers\n", "MAINTAINERS": "M: someone\n"},
        "docs: mmu notifiers",
    )
    (flag,) = _flags(repo, sha)
    assert flag.startswith("changes only documentation:"), flag


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int line1;", "int line1; /* why */"),  # a comment after code
        (" * mmu_notifier: the header comment", " * mmu_notifier: reworded\n * more"),
        ("int line2; // trailing", "int line2;    // other\n\n"),  # and blank lines
        ("/* one line */", "/*\n   continued without a star\n */"),  # inside a block
    ],
)
def test_a_comment_only_change(repo: Path, old: str, new: str) -> None:
    sha = _commit(repo, {FILE: _edit(repo, old, new)}, "mm: comments")
    (flag,) = _flags(repo, sha)
    assert flag.startswith("changes only comments and blank lines in C:"), flag


def test_another_archs_files_only(repo: Path) -> None:
    sha = _commit(repo, {"arch/sparc/kernel/irq.c": "int irq = 1;\n"}, "sparc: irq")
    (flag,) = _flags(repo, sha)
    assert "arch/sparc/ (a x86_64 kernel builds arch/x86/)" in flag, flag
    assert _flags(repo, sha, arch="sparc64") == []  # sparc64's kernel is arch/sparc/
    assert _flags(repo, sha, arch="arm64") != []


def test_a_revert_a_merge_and_an_empty_commit(repo: Path) -> None:
    sha = _commit(repo, {FILE: _edit(repo, "int line1;", "int line1 = 1;")}, "mm: set line1")
    git(repo, "revert", "--no-edit", sha)
    assert _flags(repo, git(repo, "rev-parse", "HEAD")) == [
        "a revert: the bug may be what the reverted commit fixed"
    ]
    git(repo, "checkout", "-qb", "side", "HEAD~1")
    _commit(repo, {"mm/other.c": "int other;\n"}, "mm: other")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch side", "side")
    assert _flags(repo, git(repo, "rev-parse", "HEAD")) == [
        "a merge commit: the bug may come from either side"
    ]
    git(repo, "commit", "-q", "--allow-empty", "-m", "nothing")
    assert _flags(repo, git(repo, "rev-parse", "HEAD")) == ["the commit changes no file"]


def test_confidence_under_the_floor(repo: Path) -> None:
    sha = _commit(repo, {FILE: _edit(repo, "int line1;", "int line1 = 1;")}, "mm: set line1")
    assert _flags(repo, sha, confidence=0.9) == [
        "confidence 90.0% is under the floor for mailing (95%)"
    ]
    assert _flags(repo, sha, confidence=0.95) == []


@pytest.mark.parametrize("same", [True, False])
def test_an_image_identical_to_its_parents(repo: Path, tmp_path: Path, same: bool) -> None:
    parent = git(repo, "rev-parse", "HEAD")
    sha = _commit(repo, {FILE: _edit(repo, "int line1;", "int line1 = 1;")}, "mm: set line1")
    runs = []
    for n, (commit, digest) in enumerate([(parent, "aa"), (sha, "aa" if same else "bb")]):
        build = tmp_path / f"build{n}"
        build.mkdir()
        (build / "build.json").write_text(json.dumps({"artifacts": {"kernel": {"sha256": digest}}}))
        job = tmp_path / f"job{n}"
        job.mkdir()
        (job / "job.json").write_text(json.dumps({"kernel": str(build / "bzImage")}))
        runs.append({"commit": commit, "folder": job.name, "outcome": {}})
    g = Git(repo)
    got = plausible.flags(
        g, plausible.commit_info(g, sha), tmp_path, _state(runs),
        arch="x86_64", floor=0.95, confidence=0.999,
    )  # fmt: skip
    flag = "the kernel image is byte-identical to its parent's: not this change"
    assert got == ([flag] if same else [])


def test_the_driver_records_and_prints_the_flags(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from orchestrator.records.spec import JobSpec

    from .test_bisect import _fake_jobs

    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    for i in range(1, 7):
        name = "Documentation/notes.rst" if i == 4 else FILE
        _commit(tiny_repo, {name: f"step {i}\n"}, f"step {i}")
    commits = git(tiny_repo, "rev-list", "--reverse", "HEAD").splitlines()
    _fake_jobs(monkeypatch, commits, culprit=4, calls=[])
    base = JobSpec(arch="x86_64", tree=str(tiny_repo), test="hotplug")
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 40
    )
    res = driver.bisect(run_dir, state)
    assert res.status == "found" and res.culprit and res.culprit["sha"] == commits[4]
    assert res.flags == ["changes only documentation: nothing the probed kernel runs"]
    assert json.loads((run_dir / "run.json").read_text())["bisect"]["flags"] == res.flags
    driver.run_bisect(run_dir, driver.State.load(run_dir))  # a finished run, printed again
    assert f"  suspicious: {res.flags[0]}" in capsys.readouterr().out
