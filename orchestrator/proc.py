"""The only place that starts short-lived host processes.

Long-running guest sessions (QEMU) are spawned by the console module with pexpect; everything
else (git, make helpers, cpio, compilers) goes through `run`, which raises with stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InfraError, KtoError, MissingDependency


@dataclass(frozen=True)
class Result:
    """A finished host command: argv, exit status, output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(InfraError):
    def __init__(self, result: Result) -> None:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        super().__init__(
            f"command failed (exit {result.returncode}): {shlex.join(result.argv)}\n{tail}"
        )
        self.result = result


def require_tool(name: str, package: str | None = None) -> str:
    """Path of an executable, or MissingDependency naming the Debian package (`package`, else
    the one configs/host/tools.yaml gives for the tool)."""
    # Python tools (b4, tuxmake) live beside the interpreter in the venv, which may not be
    # on PATH when kto is started as .venv/bin/kto.
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        from orchestrator.config.tools import package_for  # reads every arch profile

        raise MissingDependency(f"`{name}`", package or package_for(name))
    return path


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    check: bool = True,
    text: bool = True,
    timeout: float | None = None,
    pass_fds: Sequence[int] = (),
) -> Result:
    args = [str(a) for a in argv]
    args[0] = require_tool(args[0])
    full_env = None
    if env is not None:
        full_env = {**os.environ, **env}
    import subprocess  # not loaded by a command that runs none (kto boot: QEMU is pexpect's)

    try:
        cp = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            pass_fds=pass_fds,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"command timed out after {timeout} s: {shlex.join(args)}") from exc
    res = Result(args, cp.returncode, cp.stdout if text else "", cp.stderr if text else "")
    if check and cp.returncode != 0:
        raise CommandFailed(res)
    return res


def tool_version(name: str, package: str | None = None) -> str:
    """The first line of `name --version`, remembered per binary (path, size, mtime) in the
    cache: every boot and build records the versions of QEMU and the compilers, and starting
    each just to ask costs more than kto's whole per-boot overhead budget."""
    from orchestrator import atomic
    from orchestrator.paths import cache_dir

    path = require_tool(name, package)
    st = os.stat(path)
    key = f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    store = cache_dir() / "tool-versions.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return str(known[key])
    version = run([path, "--version"]).stdout.splitlines()[0].strip()
    known[key] = version
    with contextlib.suppress(KtoError):  # a cache that cannot be written is only slower
        atomic.write_json(store, known, durable=False)
    return version
