"""Which builds kto trusts: one decision per build, made here and nowhere else.

A build runs someone's Makefiles, scripts and host tools as kto's user (root, in CI). It is
trusted only when everything it compiles is already a commit of a tree the user declared
trusted: a tree named in kernels/trees.yaml (unless `trusted: false`) or `--tree PATH
--trusted`, at a ref of that tree, with no series or with a git range of that tree.
Everything else is untrusted and built in the sandbox (build/tuxmake_run.py): a series from
an mbox or a patch directory, any ref or range of a tree nobody declared trusted, every
bisect probe of such a range (each is a JobSpec that comes through here). A driver may
decide for itself (JobSpec.sandbox True/False); the matrix, Dask and bisect leave it here.

What ran in the sandbox lives in the untrusted domain: its own build directories, compiler
cache and cache keys, so nothing it leaves behind is ever read by a trusted build. A trusted
artifact may serve an untrusted request (it is the same code, built by kto itself).

`--no-sandbox` builds without the sandbox (and then in the trusted domain: such a build can
write anywhere kto can, so separating its caches would protect nothing); the build record
says so, and for a series from a mail it is refused unless the user adds
`--i-trust-this-series`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import KtoError, MissingDependency, UserError

TRUSTED = "trusted"
UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class Trust:
    """How one build runs: in the sandbox or not, which cache domain, and why."""

    sandbox: bool
    reason: str
    vouched: bool = False  # --i-trust-this-series
    # The tree itself (its base commit, before any series): decoding runs the base
    # commit's scripts/get_maintainer.pl only from a trusted tree.
    tree_trusted: bool = False

    @property
    def domain(self) -> str:
        return UNTRUSTED if self.sandbox else TRUSTED

    def to_record(self) -> dict[str, object]:
        return {
            "sandbox": self.sandbox,
            "domain": self.domain,
            "reason": self.reason,
            "i_trust_this_series": self.vouched,
            "tree_trusted": self.tree_trusted,
        }


def untrusted_because(tree_name: str, tree_trusted: bool, series_kind: str) -> str | None:
    """Why this build's code is not already trusted code, or None if it is."""
    if series_kind == "mbox":
        return "the series comes from a mail (an mbox)"
    if series_kind == "dir":
        return "the series is a directory of patch files"
    if not tree_trusted:
        what = "a git range in" if series_kind == "git-range" else "a commit of"
        return (
            f"{what} tree {tree_name}, which is not declared trusted "
            "(kernels/trees.yaml, or --tree PATH --trusted)"
        )
    return None


def decide(
    tree_name: str,
    tree_trusted: bool,
    series_kind: str,
    sandbox: bool | None,
    i_trust_this_series: bool = False,
) -> Trust:
    """The policy. `sandbox`: what the user or the driver asked (None: decide here)."""
    why = untrusted_because(tree_name, tree_trusted, series_kind)
    tree = {"tree_trusted": tree_trusted}
    if sandbox is None:
        if why is None:
            return Trust(False, "commits of a trusted tree", **tree)
        return Trust(True, why, **tree)
    if sandbox:
        return Trust(True, why or "--sandbox (asked for by the user or the driver)", **tree)
    if why is None:
        return Trust(False, "--no-sandbox; commits of a trusted tree", **tree)
    if series_kind == "mbox" and not i_trust_this_series:
        raise UserError(
            "--no-sandbox: refused for a series from a mail (it would run its Makefiles "
            "and scripts as this user, with the host's network)",
            hint="build it in the sandbox (drop --no-sandbox), or add --i-trust-this-series "
            "once you have read the series",
        )
    return Trust(False, f"--no-sandbox, although {why}", vouched=i_trust_this_series, **tree)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def require_sandbox() -> None:
    """Fail (exit 6, naming what to install or enable) when the sandbox cannot be built:
    an untrusted build never falls back to building without it."""
    import shutil

    if shutil.which("bwrap") is None:
        raise MissingDependency("`bwrap` (the build sandbox for untrusted series)", "bubblewrap")
    if os.geteuid() == 0:
        # As root the sandbox drops to an unprivileged uid with setpriv (util-linux).
        if shutil.which("setpriv") is None:
            raise MissingDependency("`setpriv` (drops the sandbox's privileges)", "util-linux")
        return
    # Not root: bubblewrap needs unprivileged user namespaces.
    limits = {
        "/proc/sys/user/max_user_namespaces": "user.max_user_namespaces",
        "/proc/sys/kernel/unprivileged_userns_clone": "kernel.unprivileged_userns_clone",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": None,
    }
    for path, key in limits.items():
        value = _read_int(path)
        if key and value == 0:
            raise SandboxUnavailable(
                f"user namespaces are disabled ({key} = 0): the build sandbox needs them",
                hint=f"enable them: sysctl -w {key}=1 (or run kto as root)",
            )
        if key is None and value == 1:
            raise SandboxUnavailable(
                "AppArmor forbids unprivileged user namespaces, which the build sandbox needs",
                hint="sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run kto as root",
            )


class SandboxUnavailable(MissingDependency):
    """The host cannot build the sandbox (exit 6, like a missing tool)."""

    def __init__(self, message: str, hint: str) -> None:
        KtoError.__init__(self, message, hint)
        self.package = ""
