"""A vmlinux's function symbols (name -> address, size), from the cross toolchain's nm.

A report prints `func+0xoff/0xsize`, not addresses (and an address would be wrong under
KASLR): the address to decode is the symbol's link address plus the offset. One nm run per
vmlinux, remembered per file (path, size, mtime): every finding of a job, and every job of
a matrix sharing a kernel, reuses it.

Static functions can share a name (two `cleanup` in two files); the report's /0xsize picks
the right one, as the kernel's own kallsyms printed it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.proc import run
from orchestrator.symbolize import confine

NM_TIMEOUT = 120.0
_FUNCTION_TYPES = frozenset("tTwW")


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int | None


@dataclass
class SymbolTable:
    by_name: dict[str, list[Symbol]] = field(default_factory=dict)

    def lookup(self, name: str, size: int | None = None) -> Symbol | None:
        """The function `name`; with several of that name, the one of `size`."""
        candidates = self.by_name.get(name) or []
        if size is not None:
            for sym in candidates:
                if sym.size == size:
                    return sym
        return candidates[0] if candidates else None

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_name.values())


def parse_nm(text: str) -> SymbolTable:
    """`nm -S --defined-only` output: `addr [size] type name` lines; functions only."""
    table = SymbolTable()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            addr, size, kind, name = parts
        elif len(parts) == 3:
            addr, kind, name = parts
            size = None
        else:
            continue
        if kind not in _FUNCTION_TYPES:
            continue
        try:
            sym = Symbol(name, int(addr, 16), int(size, 16) if size else None)
        except ValueError:
            continue
        table.by_name.setdefault(name, []).append(sym)
    return table


_CACHE: dict[tuple[str, str, int, int], SymbolTable] = {}


def load_symbols(vmlinux: Path, nm: str) -> SymbolTable:
    """The function symbols of `vmlinux` read with the `nm` tool given (cached in-process)."""
    st = os.stat(vmlinux)
    key = (nm, os.path.realpath(vmlinux), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        with confine.image(vmlinux) as (name, fds):
            argv = confine.argv([nm, "-S", "--defined-only", name])
            out = run(argv, timeout=NM_TIMEOUT, pass_fds=fds).stdout
        _CACHE.clear()  # one kernel at a time is what a job needs; keep memory bounded
        _CACHE[key] = parse_nm(out)
    return _CACHE[key]
