"""Source paths as a kernel developer writes them (`kernel/fork.c`), and their lines' text.

The debug info names files as the compiler saw them: absolute under the source tree (kbuild
with O=), under the build directory (generated headers), or relative to it. Stripping
those prefixes gives the tree-relative path every kernel tool (get_maintainer.pl, git, a
reply mail) uses.

The text of a line comes from the commit the kernel was built from (`git show
<commit>:<path>`, once per file), not from the worktree: a worktree is reused by the next
build of another series and may no longer hold the code that ran. Without a commit (a plain
directory) the file is read as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.git import Git

GIT_TIMEOUT = 30.0


def relative_path(path: str, prefixes: list[Path]) -> str:
    """`path` relative to the first prefix it is under; a relative path loses `./`, `../`."""
    norm = os.path.normpath(path)
    for prefix in prefixes:
        root = os.path.normpath(str(prefix))
        if norm == root:
            continue
        if norm.startswith(root.rstrip("/") + "/"):
            return norm[len(root.rstrip("/")) + 1 :]
    if not os.path.isabs(norm):
        parts = [p for p in norm.split("/") if p not in ("..", ".")]
        return "/".join(parts)
    return norm


class SourceLines:
    """Lines of the tree's files at one commit (or as on disk), each file read once."""

    def __init__(self, root: Path | None, commit: str | None = None) -> None:
        self.root = root
        self.commit = commit
        self._files: dict[str, list[str] | None] = {}

    def _load(self, path: str) -> list[str] | None:
        if self.root is None or os.path.isabs(path) or ".." in path.split("/"):
            return None
        if self.commit and (self.root / ".git").exists():
            # Read-only, independent of the worktree's state; a missing object is an answer.
            try:
                res = Git(self.root)(
                    "show", f"{self.commit}:{path}", check=False, timeout=GIT_TIMEOUT
                )
            except (KtoError, UnicodeDecodeError):
                return None
            if res.returncode != 0:
                return None
            return res.stdout.split("\n")
        try:
            return (self.root / path).read_text(errors="replace").split("\n")
        except OSError:
            return None

    def line(self, path: str | None, number: int | None) -> str | None:
        """The text of line `number` (1-based) of `path`, right-stripped; None if unknown."""
        if path is None or number is None or number < 1:
            return None
        if path not in self._files:
            self._files[path] = self._load(path)
        lines = self._files[path]
        if lines is None or number > len(lines):
            return None
        return lines[number - 1].rstrip()
