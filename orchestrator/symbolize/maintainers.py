"""Who to tell about a file: the tree's own scripts/get_maintainer.pl and MAINTAINERS.

    perl scripts/get_maintainer.pl --no-git --no-git-fallback --no-rolestats --roles -f FILE

run from the tree root (the script insists on being in a kernel tree): `--no-git` and
`--no-git-fallback` keep it to MAINTAINERS (no history walk: fast, and the same answer on a
shallow or fresh repository), `--roles` without stats tells maintainers and reviewers
(`(maintainer:MEMORY MANAGEMENT)`) from lists (`(open list:...)`).

The script comes from the trusted base commit when one is given (`git show`): a series
under test may change scripts/get_maintainer.pl, and kto does not run a patch's Perl on the
host outside the sandbox. MAINTAINERS itself is read from the worktree: a series that adds
a MAINTAINERS entry for its own files is right about them.
"""

from __future__ import annotations

import email.utils
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import KtoError
from orchestrator.git import Git, git_safe_env
from orchestrator.proc import run

TIMEOUT = 30.0
SCRIPT = "scripts/get_maintainer.pl"
FLAGS = ("--no-git", "--no-git-fallback", "--no-rolestats", "--roles")
_ROLE = re.compile(r"^(?P<who>.*?)\s+\((?P<role>[^()]*)\)\s*$")


@dataclass
class Maintainers:
    file: str
    people: list[str] = field(default_factory=list)  # "Name <addr>": maintainers, reviewers
    lists: list[str] = field(default_factory=list)  # mailing list addresses
    note: str | None = None  # why there is no answer (no MAINTAINERS, the script failed)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "people": self.people, "lists": self.lists, "note": self.note}


def parse_output(text: str, file: str) -> Maintainers:
    out = Maintainers(file)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or "@" not in line:
            continue
        m = _ROLE.match(line)
        who, role = (m.group("who"), m.group("role")) if m else (line, "")
        name, addr = email.utils.parseaddr(who)
        if not addr:
            continue
        entry = email.utils.formataddr((name, addr)) if name else addr
        target = out.lists if "list" in role.lower() else out.people
        if entry not in target:
            target.append(entry)
    return out


def _script_from(tree: Path, commit: str | None, tmp: Path) -> Path | None:
    """The script to run: the trusted base commit's copy, never the worktree's (a series
    under test may have changed or added it); None when there is no trusted commit."""
    if not commit or not (tree / ".git").exists():
        return None
    try:
        res = Git(tree)("show", f"{commit}:{SCRIPT}", check=False)
    except KtoError:
        return None
    if res.returncode != 0:
        return None
    script = tmp / "get_maintainer.pl"
    script.write_text(res.stdout)
    return script


# What get_maintainer.pl would read as options or run git in: left out of its view.
HIDDEN = frozenset({".git", ".get_maintainer.conf", ".get_maintainer.ignore", ".scripts"})


def _view(tree: Path, view: Path) -> Path:
    """The tree's top level as links (MAINTAINERS, the sources, .mailmap), minus HIDDEN."""
    view.mkdir()
    for entry in tree.iterdir():
        if entry.name not in HIDDEN:
            (view / entry.name).symlink_to(entry)
    return view


def find_maintainers(
    tree: Path | None, file: str, commit: str | None = None, timeout: float = TIMEOUT
) -> Maintainers:
    """Maintainers and lists of `file` (tree-relative), or a note saying why there are none."""
    if tree is None or not tree.is_dir():
        return Maintainers(file, note="no source tree recorded: maintainers not looked up")
    if not (tree / "MAINTAINERS").is_file():
        return Maintainers(file, note=f"{tree} has no MAINTAINERS file: maintainers not looked up")
    if not (tree / file).is_file():
        return Maintainers(file, note=f"{file} is not in {tree}: maintainers not looked up")
    with tempfile.TemporaryDirectory(prefix="kto-maint-") as tmp:
        script = _script_from(tree, commit, Path(tmp))
        if script is None:
            return Maintainers(
                file,
                note=f"no {SCRIPT} of a trusted base commit in {tree}: maintainers not looked up",
            )
        argv = ["perl", str(script), *FLAGS, "-f", file]
        try:
            # The series' files stay data: the script reads its options from a
            # .get_maintainer.conf in the current dir, $HOME or .scripts (a series could add
            # one: --self-test runs wget on MAINTAINERS' links through a shell), and runs
            # `git ls-files` there. So it runs in a view of the tree without those and
            # without .git, with kto's git overrides in the environment all the same.
            view = _view(tree, Path(tmp) / "tree")
            env = {**git_safe_env(), "HOME": tmp}
            res = run(argv, cwd=view, check=False, timeout=timeout, env=env)
        except KtoError as exc:
            return Maintainers(file, note=f"get_maintainer.pl: {exc.message.splitlines()[0]}")
    if res.returncode != 0:
        why = (res.stderr or res.stdout).strip().splitlines()
        return Maintainers(
            file, note=f"get_maintainer.pl exit {res.returncode}: {why[0] if why else ''}"
        )
    found = parse_output(res.stdout, file)
    if not found.people and not found.lists:
        found.note = f"MAINTAINERS names nobody for {file}"
    return found
