"""nm and addr2line, confined: they parse a vmlinux that an untrusted series' build wrote.

kto runs as root, and binutils' ELF and DWARF readers are big C parsers: a kernel image made
to exploit one of them must not hand its series root. As root the tools run

- in bubblewrap's new namespaces (no network, own pid/IPC/UTS), with the host's file system
  read-only and a private /tmp: nothing to plant anywhere kto or a later build looks;
- as an unprivileged uid of their own (KTO_DECODE_UID: not the build sandbox's, whose
  compiler cache they must not touch, nor QEMU's), with no capabilities and no_new_privs;
- reading the image through a descriptor kto opened (/proc/self/fd/N), as the build dirs
  under root's home are not theirs to walk. An image not readable by others is copied first.

Not root: the tools run as the user, as they would by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orchestrator.proc import require_tool

DECODE_UID = 64323  # KTO_DECODE_UID


def decode_uid() -> int | None:
    """The uid the tools run as when kto is root; None when kto is not."""
    if os.geteuid() != 0:
        return None
    try:
        return int(os.environ.get("KTO_DECODE_UID", DECODE_UID))
    except ValueError:
        return DECODE_UID


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
            # /proc/self/fd/N is opened again, with the file's own permission check.
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kto-decode-")))
            tmp.chmod(0o711)
            copy = tmp / path.name
            shutil.copyfile(path, copy)
            copy.chmod(0o644)
            fd = os.open(copy, os.O_RDONLY)
            stack.callback(os.close, fd)
        yield f"/proc/self/fd/{fd}", (fd,)


def argv(tool_argv: list[str]) -> list[str]:
    """`tool_argv` wrapped so that it runs confined (unchanged when kto is not root)."""
    uid = decode_uid()
    if uid is None:
        return tool_argv
    bwrap = require_tool("bwrap", "bubblewrap")
    setpriv = require_tool("setpriv", "util-linux")
    tool = require_tool(tool_argv[0])
    box = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    box += ["--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts"]
    box += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/"]
    drop = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [*box, "--", *drop, "--", tool, *tool_argv[1:]]
