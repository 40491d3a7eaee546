"""Every git call kto makes goes through here; failures raise with git's stderr.

kto runs git as root in trees whose content (and, for a user's tree, whose configuration)
it did not write. Git runs commands named in configuration: core.fsmonitor on every index
refresh, hooks, filter/diff/merge drivers chosen by a .gitattributes the series itself may
add, pagers, editors, credential and signing programs. None of them may run from kto's
calls: each call passes `-c` overrides that switch them off (a command-line value beats
every configuration file), plus, for the drivers (named by the repository, so not known in
advance), an empty command for every driver the repository's configuration defines. The
system configuration is not read at all (GIT_CONFIG_NOSYSTEM).
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.proc import Result, run

# Single-valued keys that name a program git would run, and what kto sets them to.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.sshCommand", "false"),
    ("core.gitProxy", ""),
    ("core.askPass", ""),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("credential.helper", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gpg.program", "false"),
    ("protocol.allow", "never"),
    ("uploadpack.packObjectsHook", ""),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("safe.bareRepository", "explicit"),
)
# Commands that print diffs: diff.external and textconv drivers are switched off by option
# (an empty diff.external is a command git tries to run).
_DIFF_COMMANDS = frozenset({"diff", "show", "log", "format-patch", "diff-tree", "whatchanged"})
# Per-driver keys (`<section>.<driver>.<key>`) that hold a command.
_DRIVER_KEY = re.compile(
    r"^(filter\.(.+)\.(clean|smudge|process)|diff\.(.+)\.(command|textconv)"
    r"|merge\.(.+)\.(driver)|difftool\.(.+)\.(cmd)|mergetool\.(.+)\.(cmd))$",
    re.I,
)
_ENV = {
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "GIT_SSH_COMMAND": "false",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_PROTOCOL_FROM_USER": "0",
}


def _overrides(extra: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for key, value in (*SAFE_CONFIG, *extra):
        out += ["-c", f"{key}={value}"]
    return out


class Git:
    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)

    def driver_overrides(self) -> list[tuple[str, str]]:
        """An empty command for every filter/diff/merge driver the repository's (or an
        included) configuration defines: a .gitattributes can select any of them by name.
        `git config --list` itself runs no configured command."""
        res = run(
            ["git", *_overrides([]), "config", "--list", "--null", "--includes"],
            cwd=self.repo,
            check=False,
            env=_ENV,
        )
        found: list[tuple[str, str]] = []
        for entry in res.stdout.split("\0"):
            key = entry.split("\n", 1)[0]
            if _DRIVER_KEY.match(key) and (key, "") not in found:
                found.append((key, ""))
        return found

    def argv(self, *args: str) -> list[str]:
        """The git command line of a kto call: fixed identity, every command-running key
        overridden (see the module docstring)."""
        return [
            "git",
            "-c",
            "user.name=kto",
            "-c",
            "user.email=kto@localhost",
            "-c",
            "advice.detachedHead=false",
            *_overrides(self.driver_overrides()),
            *args[:1],
            *(["--no-ext-diff", "--no-textconv"] if args[:1] and args[0] in _DIFF_COMMANDS else []),
            *args[1:],
        ]

    def __call__(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        argv = self.argv(*args)
        return run(argv, cwd=self.repo, check=check, input=input, env=_ENV, timeout=timeout)

    def out(self, *args: str) -> str:
        return self(*args).stdout.strip()

    def is_repo(self) -> bool:
        if not self.repo.is_dir():
            return False
        res = self("rev-parse", "--git-dir", check=False)
        return res.returncode == 0

    def is_clean(self) -> bool:
        return self.out("status", "--porcelain", "--untracked-files=no") == ""


def git_safe_env() -> dict[str, str]:
    """The overrides as environment (GIT_CONFIG_COUNT/KEY_n/VALUE_n, git >= 2.31), for a git
    that kto does not start itself (get_maintainer.pl's `git ls-files`): the same keys
    switched off as on kto's own calls."""
    env = dict(_ENV)
    env["GIT_CONFIG_COUNT"] = str(len(SAFE_CONFIG))
    for i, (key, value) in enumerate(SAFE_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def user_config(key: str) -> str | None:
    """`git config --get KEY` where kto was started (user.name, user.email for mails and
    triage), through the same overrides: the directory may be any tree."""
    from orchestrator.errors import KtoError

    # Not Git.__call__: its fixed identity (user.name=kto) is what this asks about. Reading
    # configuration runs nothing a repository names; the overrides still go first.
    argv = ["git", *_overrides([]), "config", "--get", key]
    try:
        res = run(argv, cwd=Path.cwd(), check=False, env=_ENV, timeout=10)
    except KtoError:
        return None
    return (res.stdout.strip() or None) if res.returncode == 0 else None
