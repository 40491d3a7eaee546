"""Hostile series for the attack tests: a patch to the tree's top-level Makefile whose
block runs an attack at parse time ($(shell ...)), prints what it achieved and stops the
build with $(error ...). Each test builds it for real, the way `kto build --patches DIR`
does for a mailed series, and then checks the host, not the build's word."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.build.trees import Tree

REPO = Path(__file__).resolve().parents[2]
TREE = "debian-6.1"
RESULT = "kto attack result:"


def tree() -> Tree:
    from orchestrator.build.trees import resolve_tree

    return resolve_tree(TREE)


def series(tmp_path: Path, block: str, name: str = "attack") -> Path:
    """A one-patch series directory whose Makefile runs `block` (make syntax) and then
    fails the build with `kto attack result: $(KTO_RESULT)`."""
    t = tree()
    from orchestrator.git import Git

    original = Git(t.repo).out("show", f"{t.base_commit}:Makefile") + "\n"
    lines = original.splitlines(keepends=True)
    stop = f"$(error {RESULT} $(KTO_RESULT))\n"
    # A unique line per series: a new series hash, so no cached artifact answers it.
    tag = f"# kto attack test {name} {uuid.uuid4().hex}\n"
    added = block.rstrip("\n").splitlines(keepends=True)
    patched = [*lines[:6], tag, *added[:-1], added[-1] + "\n", stop, *lines[6:]]
    diff = "".join(difflib.unified_diff(lines, patched, "a/Makefile", "b/Makefile"))
    d = tmp_path / name
    d.mkdir()
    (d / "0001-attack.patch").write_text(
        "From: Mallory <mallory@example.org>\n"
        f"Subject: [PATCH] kbuild: {name}\n\n"
        "A hostile patch for kto's attack tests.\n---\n"
        "diff --git a/Makefile b/Makefile\n" + diff
    )
    return d


def build(
    patches: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    """`kto build` of the series, as the user would run it (no --sandbox: the policy)."""
    argv = [sys.executable, "-m", "orchestrator.cli", "build", "--tree", TREE]
    argv += ["--arch", "x86_64", "--patches", str(patches), "-q", *args]
    return subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def said(res: subprocess.CompletedProcess[str]) -> str:
    """What the hostile Makefile reported (the line of its $(error ...))."""
    for line in res.stderr.splitlines():
        if RESULT in line:
            return line.split(RESULT, 1)[1].strip().removesuffix(".  Stop.").strip()
    raise AssertionError(f"the hostile Makefile never ran (exit {res.returncode}):\n"
                         + res.stderr[-3000:])  # fmt: skip
