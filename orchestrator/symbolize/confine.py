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

from orchestrator import jail
from orchestrator.errors import InfraError, UserError
from orchestrator.proc import require_tool

DECODE_UID = 64323  # KTO_DECODE_UID
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


def argv(tool_argv: list[str]) -> list[str]:
    """`tool_argv` wrapped so that it runs confined (unchanged when kto is not root)."""
    uid = decode_uid()
    if uid is None:
        return tool_argv
    bwrap = require_tool("bwrap", "bubblewrap")
    prlimit = require_tool("prlimit", "util-linux")
    tool = os.path.realpath(require_tool(tool_argv[0]))
    hidden = jail.hidden()
    box = jail.base(bwrap, hidden, 16 << 20)
    if any(Path(tool).is_relative_to(h) for h in hidden):  # bound back, read-only
        box += [*jail.ways_in([Path(tool)], hidden), "--ro-bind", tool, tool]
    box += [*jail.NAMESPACES, "--chdir", "/"]
    # Root's environment is not the tool's business (its output reaches reports and mails).
    box += ["--clearenv", "--setenv", "PATH", PATH, "--setenv", "LC_ALL", "C"]
    limits = [prlimit, f"--nproc={NPROC}", "--core=0", "--"]
    return [*box, "--", *jail.drop_to(uid), "--", *limits, *jail.no_more_userns(bwrap), "--",
            tool, *tool_argv[1:]]  # fmt: skip
