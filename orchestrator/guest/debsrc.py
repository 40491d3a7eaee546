"""Static guest binaries cross-built once from a Debian source package, cached by content.

busybox (for arches Debian has no package for) and dropbear (the guest's sshd) are built the
same way: unpack the .dsc with dpkg-source under a per-(tool, arch) lock, run the tool's own
steps, check the result is a static ELF for the arch, keep it under
<cache>/<tool>/<arch>/<key>/<tool> with a build.json, and never build the same key twice.
"""

from __future__ import annotations

import shutil
import struct
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator import atomic, progress
from orchestrator.digest import hexdigest
from orchestrator.errors import InfraError, MissingDependency
from orchestrator.locks import file_lock
from orchestrator.paths import cache_dir
from orchestrator.proc import require_tool, run


def newest_dsc(tool: str, pattern: str, package: str) -> Path:
    """The newest <cache>/<tool>/src/<pattern> (fetched by `make setup`)."""
    found = sorted((cache_dir() / tool / "src").glob(pattern))
    if not found:
        raise MissingDependency(f"the {tool} source package", package)
    return found[-1]


def dsc_version(dsc: Path) -> str:
    for line in dsc.read_text(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return dsc.stem


def check_static_elf(data: bytes, machine: int, what: str) -> None:
    """Raise unless `data` is a static 64-bit ELF executable for e_machine `machine`."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise InfraError(f"{what}: not a 64-bit ELF file")
    endian = "<" if data[5] == 1 else ">"
    (e_machine,) = struct.unpack_from(endian + "H", data, 18)
    if e_machine != machine:
        raise InfraError(f"{what}: ELF machine {e_machine}, expected {machine} (wrong arch)")
    (phoff,) = struct.unpack_from(endian + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP: dynamically linked, would not run in the initramfs
            raise InfraError(f"{what}: dynamically linked, needs a static binary")


def cross_built(
    tool: str,
    arch: str,
    dsc: Path,
    recipe: str,
    elf_machine: int,
    steps: Callable[[Path], Path],
) -> Path:
    """Path of `tool` for `arch` built from `dsc`; `steps(src)` builds in the unpacked source
    and returns the binary. `recipe` (the steps' inputs, as text) is part of the cache key."""
    key = hexdigest(dsc.read_bytes() + b"\0" + recipe.encode())[:12]
    out = cache_dir() / tool / arch / key / tool
    if out.is_file():
        return out
    with file_lock(cache_dir() / "locks" / f"{tool}-{arch}.lock", f"the {arch} {tool} build"):
        if out.is_file():  # another kto process built it while we waited
            return out
        # A fixed build path (we hold the lock): the same source gives the same binary.
        work = out.parent.parent / "build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        timings: dict[str, float] = {}
        try:
            src = work / "src"
            name = f"{tool} for {arch}: cross-build from {dsc.name} (once, cached)"
            with progress.phase(name, timings, key="total"):
                run([require_tool("dpkg-source", "dpkg-dev"), "-x", dsc, src])
                binary = steps(src)
            data = binary.read_bytes()
            check_static_elf(data, elf_machine, str(binary))
            atomic.write_bytes(out, data)
            out.chmod(0o755)
            atomic.write_json(
                out.parent / "build.json",
                {
                    "dsc": dsc.name,
                    "version": dsc_version(dsc),
                    "recipe": recipe,
                    "seconds": timings["total"],
                    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out
