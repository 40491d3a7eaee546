"""The parts of a bubblewrap command line that every confined process of kto shares: the
untrusted build (build/tuxmake_run.py) and the decoder of its kernel (symbolize/confine.py).

Both see the host read-only with HIDDEN emptied, live in their own network, IPC, pid and UTS
namespaces, drop to an unprivileged uid with no capabilities (when kto is root), and then
sit in a user namespace that may create no further ones.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.proc import require_tool

HIDDEN = ("/root", "/home", "/run", "/tmp", "/var/tmp")  # empty in a jail
# A pid namespace: when bwrap goes (its parent killed), the kernel kills everything in it;
# without one, what the jail started outlives it in its new session.
NAMESPACES = (
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
)


def hidden() -> list[str]:
    """The HIDDEN dirs this host has (a symlink, such as /var/run, is left alone)."""
    return [h for h in HIDDEN if Path(h).is_dir() and not Path(h).is_symlink()]


def base(bwrap: str, hidden: list[str], tmpfs_size: int) -> list[str]:
    """bwrap with the host read-only and each of `hidden` an empty tmpfs."""
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for h in hidden:
        argv += ["--perms", "0755", "--size", str(tmpfs_size), "--tmpfs", h]
    return argv


def ways_in(paths: list[Path], hidden: list[str]) -> list[str]:
    """The dirs on the way to paths bound back under a hidden dir, made passable for the
    jail's uid (bubblewrap would make them 0700, root's)."""
    out: list[str] = []
    made: set[Path] = set()
    for p in paths:
        for anc in reversed(p.parents):
            under = [h for h in hidden if anc != Path(h) and anc.is_relative_to(h)]
            if under and anc not in made:
                made.add(anc)
                out += ["--perms", "0755", "--dir", str(anc)]
    return out


def drop_to(uid: int) -> list[str]:
    """setpriv to `uid`: no groups, no capabilities, no_new_privs."""
    setpriv = require_tool("setpriv", "util-linux")
    argv = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return [*argv, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def no_more_userns(bwrap: str) -> list[str]:
    """Run as the uid it is started as, in a user namespace that may make no further ones:
    no namespace root to become, none of the kernel's user-namespace surface."""
    argv = [bwrap, "--unshare-user", "--disable-userns", "--dev-bind", "/", "/"]
    return [*argv, "--die-with-parent"]
