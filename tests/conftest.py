from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # everything the tests read lives in the checkout


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """A real git repo with mm/mmu_notifier.c and a Makefile, one commit on main."""
    repo = tmp_path / "linux"
    (repo / "mm").mkdir(parents=True)
    (repo / "mm" / "mmu_notifier.c").write_text("".join(f"int line{i};\n" for i in range(1, 40)))
    (repo / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    # Unit tests never touch the real cache; integration tests use it on purpose (warm builds).
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("KTO_CACHE", str(tmp_path_factory.mktemp("kto-cache")))
    # No test writes into the checkout's results/: a developer's bug store would import the
    # suite's runs (a stuck guest's stacks, seeded bugs) as bugs of their own. A test that
    # wants a results root of its own sets KTO_RESULTS after this.
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path_factory.mktemp("results")))
