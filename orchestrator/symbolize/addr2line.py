"""Addresses -> file:line with the inlined chain, in one symbolizer process per batch.

The tools come from the arch profile's triplet (`<triplet>-addr2line`, `<triplet>-nm`:
binutils of the cross toolchain kto builds with), with LLVM's arch-independent
`llvm-symbolizer`/`llvm-nm` as the fallback. Every address of a job (all frames of all its
findings) goes to one process on stdin; `-a` (`--print-address`) makes the tool echo each
address first, which delimits the variable number of lines `-i` prints per address
(one function/file:line pair per inlining level, innermost first). Nothing is started per
frame.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.tools import binutils_package
from orchestrator.errors import MissingDependency
from orchestrator.proc import run
from orchestrator.symbolize import confine

SYMBOLIZE_TIMEOUT = 120.0
_ECHO = re.compile(r"^0x([0-9a-f]+)$")
# binutils: "path:12", "path:12 (discriminator 3)", "??:0", "path:?"; LLVM adds ":column".
_LOCATION = re.compile(r"^(?P<file>.*?):(?P<line>\d+|\?)(?::\d+)?(?: \(discriminator \d+\))?$")


@dataclass(frozen=True)
class Location:
    function: str | None  # None: unknown ("??")
    file: str | None  # as the debug info names it (absolute, or relative to the build dir)
    line: int | None


@dataclass(frozen=True)
class Tools:
    symbolizer: str  # path of addr2line or llvm-symbolizer
    nm: str
    llvm: bool  # the symbolizer is llvm-symbolizer (other argv and output style)

    @property
    def name(self) -> str:
        return self.symbolizer.rsplit("/", 1)[-1]


def find_tools(triplet: str) -> Tools:
    """The arch's binutils, else LLVM's; MissingDependency when neither is installed."""
    a2l = shutil.which(f"{triplet}-addr2line")
    nm = shutil.which(f"{triplet}-nm") or shutil.which("llvm-nm")
    if a2l and nm:
        return Tools(a2l, nm, llvm=False)
    llvm = shutil.which("llvm-symbolizer")
    if llvm and nm:
        return Tools(llvm, nm, llvm=True)
    raise MissingDependency(
        f"`{triplet}-addr2line` (or llvm-symbolizer)", binutils_package(triplet)
    )


def _argv(tools: Tools, binary: str) -> list[str]:
    if tools.llvm:
        return [tools.symbolizer, f"--obj={binary}", "--print-address", "--inlining"]
    return [tools.symbolizer, "-a", "-f", "-i", "-e", binary]


def parse_output(text: str) -> dict[int, list[Location]]:
    """addr2line -a -f -i (or llvm-symbolizer --print-address) output, per address."""
    out: dict[int, list[Location]] = {}
    current: list[Location] | None = None
    function: str | None = None
    pending = False  # a function line was read, its file:line comes next
    for line in text.splitlines():
        if not line.strip():
            continue  # LLVM separates addresses with a blank line
        echo = _ECHO.match(line)
        if echo and not pending:
            current = out.setdefault(int(echo.group(1), 16), [])
            continue
        if current is None:
            continue
        if not pending:
            function, pending = (None if line == "??" else line), True
            continue
        pending = False
        m = _LOCATION.match(line)
        file = m.group("file") if m else None
        num = m.group("line") if m else None
        current.append(
            Location(
                function,
                None if file in (None, "??") else file,
                int(num) if num and num.isdigit() and num != "0" else None,
            )
        )
    return out


def symbolize(tools: Tools, binary: str, addresses: Iterable[int]) -> dict[int, list[Location]]:
    """Locations of each address (innermost first; [] when unknown), one process for all."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    stdin = "".join(f"{a:#x}\n" for a in wanted)
    with confine.image(Path(binary)) as (name, fds):
        argv = confine.argv(_argv(tools, name))
        res = run(argv, input=stdin, timeout=SYMBOLIZE_TIMEOUT, pass_fds=fds)
    found = parse_output(res.stdout)
    return {a: [loc for loc in found.get(a, []) if loc.function or loc.file] for a in wanted}
