"""nm and addr2line, confined: they parse a vmlinux that an untrusted series' build wrote.

kto runs as root, and binutils' ELF and DWARF readers are big C parsers: a kernel image made
to exploit one of them must not hand its series root. As root the tools run

- in bubblewrap's new namespaces (no network, own pid/IPC/UTS), with the host's file system
  read-only and a private /tmp: nothing to plant anywhere kto or a later build looks;
- as an unprivileged uid of their own (KTO_DECODE_UID: not the build sandbox's, whose
  compiler cache they must not touch, nor QEMU's), with no capabilities and no_new_privs;
- with root's home, /home, /run and the temp dirs empty, a clean environment, a process
  limit, and a user namespace that may make no further ones (as the build sandbox);
- reading the image through a descriptor kto opened (/proc/self/fd/N), as the build dirs
  under root's home are not theirs to walk. An image not readable by others is copied first,
  into a file with no name.

Not root: the tools run as the user, as they would by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import InfraError, UserError
from orchestrator.proc import require_tool

DECODE_UID = 64323  # KTO_DECODE_UID
HIDDEN = ("/root", "/home", "/run", "/tmp", "/var/tmp")  # empty in the box
NPROC = 64  # processes of the decode uid at once: the tools need one each
PATH = "/usr/local/bin:/usr/bin:/bin"


def decode_uid() -> int | None:
    """The uid the tools run as when kto is root; None when kto is not."""
    if os.geteuid() != 0:
        return None
    raw = os.environ.get("KTO_DECODE_UID", str(DECODE_UID))
    if not raw.isdigit() or int(raw) == 0:
        raise UserError(
            f"KTO_DECODE_UID={raw}: not a uid other than root's",
            hint=f"unset it (default {DECODE_UID}) or give a uid nothing else on the host uses",
        )
    return int(raw)


@contextlib.contextmanager
def image(path: Path) -> Iterator[tuple[str, tuple[int, ...]]]:
    """The name the confined tool opens `path` by, and the descriptors it must inherit."""
    if decode_uid() is None:
        yield str(path), ()
        return
    with contextlib.ExitStack() as stack:
        fd = os.open(path, os.O_RDONLY)
        stack.callback(os.close, fd)
        if not os.fstat(fd).st_mode & stat.S_IROTH:
            # /proc/self/fd/N is opened again, with the file's own permission check: the
            # tool gets a copy of what kto opened, in a file with no name (no one else
            # can open it) beside the image (on disk, not in a RAM /tmp).
            try:
                copy = os.open(path.parent, os.O_TMPFILE | os.O_RDWR, 0o644)
                stack.callback(os.close, copy)
                os.fchmod(copy, 0o644)
                with open(fd, "rb", closefd=False) as src, open(copy, "wb", closefd=False) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except OSError as exc:
                raise InfraError(f"cannot copy {path} for the decoder: {exc}") from exc
            fd = copy
        yield f"/proc/self/fd/{fd}", (fd,)


def _bind_back(box: list[str], path: str) -> None:
    """`path` under a hidden dir is bound back, read-only, with dirs the uid may pass on
    the way to it (bubblewrap would make them root's 0700)."""
    p = Path(path)
    top = next((h for h in HIDDEN if p.is_relative_to(h)), None)
    if top is None:
        return
    for anc in reversed(p.parents):
        if anc.is_relative_to(top) and anc != Path(top):
            box += ["--perms", "0755", "--dir", str(anc)]
    box += ["--ro-bind", path, path]


def argv(tool_argv: list[str]) -> list[str]:
    """`tool_argv` wrapped so that it runs confined (unchanged when kto is not root)."""
    uid = decode_uid()
    if uid is None:
        return tool_argv
    bwrap = require_tool("bwrap", "bubblewrap")
    setpriv = require_tool("setpriv", "util-linux")
    prlimit = require_tool("prlimit", "util-linux")
    tool = os.path.realpath(require_tool(tool_argv[0]))
    box = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for h in HIDDEN:
        if Path(h).is_dir() and not Path(h).is_symlink():
            box += ["--perms", "0755", "--size", str(16 << 20), "--tmpfs", h]
    _bind_back(box, tool)
    box += ["--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts"]
    box += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/"]
    # Root's environment is not the tool's business (its output reaches reports and mails).
    box += ["--clearenv", "--setenv", "PATH", PATH, "--setenv", "LC_ALL", "C"]
    drop = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    limits = [prlimit, f"--nproc={NPROC}", "--core=0", "--"]
    # As that uid, a user namespace that may make no further ones: no namespace root to
    # become, none of the kernel's user-namespace surface (as the build sandbox does).
    nest = [bwrap, "--unshare-user", "--disable-userns", "--dev-bind", "/", "/"]
    nest += ["--die-with-parent"]
    return [*box, "--", *drop, "--", *limits, *nest, "--", tool, *tool_argv[1:]]
