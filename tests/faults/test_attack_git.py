"""Attack: a series whose Makefile rewrites the tree's git repository (for Debian-source
trees the worktree is the repository itself): core.fsmonitor and a hook in .git, so that
kto's next git call in that tree runs the attacker's command as root. In the sandbox the
tree, its .git included, is read-only; and kto's own git calls (orchestrator/git.py) switch off
every command a repository's configuration can name, so even a repository that does carry
such a configuration runs nothing (the second test).

Before issue 27 a patch directory was built without a sandbox and an mbox's sandbox had the
worktree writable: .git/config was changed, and kto's next `git status`/`git checkout` in
the tree ran core.fsmonitor as root (kto passed only core.hooksPath)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.faults import hostile


def _poison(marker: Path) -> str:
    """Shell that makes a repository run `touch marker` from every git command it can."""
    hook = f"#!/bin/sh\\ntouch {marker}\\n"
    return (
        f"git config core.fsmonitor 'touch {marker}; false' && echo CONFIG; "
        f"git config filter.kto.smudge 'touch {marker}; cat' && "
        f"git config filter.kto.clean 'touch {marker}; cat' && "
        f"git config diff.kto.textconv 'touch {marker}; cat' && "
        f"git config merge.kto.driver 'touch {marker}; false' && "
        f"git config core.pager 'touch {marker}; cat' && echo DRIVERS; "
        f"mkdir -p .git/hooks && printf '{hook}' > .git/hooks/post-checkout && "
        "chmod +x .git/hooks/post-checkout && echo HOOK"
    )


@pytest.mark.integration
def test_a_series_cannot_change_the_repository_kto_runs_git_in(tmp_path: Path) -> None:
    from orchestrator.git import Git

    tree = hostile.tree()
    marker = Path("/var/tmp") / f"kto-attack-{uuid.uuid4().hex}"
    config = tree.repo / ".git" / "config"
    hooks = tree.repo / ".git" / "hooks"
    saved = config.read_bytes()
    hooks_before = sorted(p.name for p in hooks.iterdir()) if hooks.is_dir() else []
    src = "$(realpath $(dir $(lastword $(MAKEFILE_LIST))))"
    block = f"KTO_RESULT := $(shell cd {src} && ({_poison(marker)}) 2>/dev/null; echo tried)\n"
    try:
        res = hostile.build(hostile.series(tmp_path, block, "git-config"))
        got = hostile.said(res)
        assert res.returncode == 5, res.stderr[-2000:]
        assert got == "tried", got
        assert config.read_bytes() == saved, ".git/config was changed from the build"
        after = sorted(p.name for p in hooks.iterdir()) if hooks.is_dir() else []
        assert after == hooks_before, "a hook was added from the build"
        # kto's next git calls in that tree (what the next build does first).
        git = Git(tree.worktree)
        git("status", "--porcelain")
        git("checkout", "-q", "-f", "-B", "kto/work", tree.base_commit)
        assert not marker.exists(), "kto's next git call ran a command from the build"
    finally:
        config.write_bytes(saved)  # the shared tree must not stay poisoned if this failed
        if hooks.is_dir():
            for p in hooks.iterdir():
                if p.name not in hooks_before:
                    p.unlink()
        marker.unlink(missing_ok=True)


def test_kto_git_calls_run_nothing_a_repository_configures(tmp_path: Path) -> None:
    """A repository configured to run a command from fsmonitor, hooks, filter/diff/merge
    drivers (selected by a .gitattributes a series can add) and the pager: every git call
    a build makes (status, checkout, clean, am -3 with a conflict, diff, format-patch)
    runs none of them."""
    from orchestrator.git import Git

    marker = tmp_path / "ran"
    repo = tmp_path / "repo"
    repo.mkdir()
    sh = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]

    def plain(*args: str) -> None:
        subprocess.run([*sh, *args], cwd=repo, check=True, capture_output=True)

    plain("init", "-q", "-b", "main")
    (repo / "f.c").write_text("".join(f"int a{i};\n" for i in range(20)))
    (repo / ".gitattributes").write_text("* filter=kto diff=kto merge=kto\n")
    plain("add", "-A")
    plain("commit", "-q", "-m", "base")
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    (repo / "f.c").write_text("int changed;\n" + (repo / "f.c").read_text())
    plain("commit", "-q", "-am", "change")
    patch = subprocess.run(
        [*sh, "format-patch", "--stdout", "-1"], cwd=repo, capture_output=True, text=True
    ).stdout
    subprocess.run(["sh", "-c", _poison(marker)], cwd=repo, check=True, capture_output=True)
    assert not marker.exists()

    git = Git(repo)
    git("status", "--porcelain")
    git("checkout", "-q", "-f", "-B", "kto/work", base)
    git("clean", "-q", "-fd")
    (repo / "f.c").write_text("int conflict;\n" + (repo / "f.c").read_text())
    git("commit", "-q", "-am", "conflicting")
    (tmp_path / "1.patch").write_text(patch)
    git("am", "-3", str(tmp_path / "1.patch"), check=False)
    git("am", "--abort", check=False)
    git("diff", "HEAD~1")
    git("log", "-p", "-1")
    git("format-patch", "--stdout", "-1")
    git("checkout", "-q", "-f", "main")
    assert not marker.exists(), "a kto git call ran a command the repository configured"
    # The same repository does run it from a plain git call: the test is not vacuous.
    subprocess.run(["git", "status"], cwd=repo, capture_output=True)
    assert marker.exists()
