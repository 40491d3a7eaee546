"""Every stack frame of a finding's report text, as data (pure: no processes, no files).

Forms understood, after the console prefix is gone (the parser's report text):

  x86_64   `` finish_cpu+0x2e/0x40``, `` ? takedown_cpu+0xd0/0xd0`` (unreliable),
           ``RIP: 0010:__mmdrop+0x9f/0xb0``, old ``[<ffffffff81234567>] func+0x1a/0x40``
  arm64    ``pc : __mmdrop+0x10c/0x130``, ``lr : finish_cpu+0x5c/0x80``, call-trace lines
  sparc64  `` [000000000047d0f4] finish_cpu+0x34/0x60``, ``TPC: <__mmdrop+0x14/0x80>``,
           ``I7: <finish_cpu+0x34/0x60>``, ``Caller[000000000047d0f4]: finish_cpu+0x34/0x60``
  any      ``WARNING: CPU: 0 PID: 1 at kernel/fork.c:686 __mmdrop+0x9f/0xb0``,
           a module frame ``func+0x10/0x20 [kvm]``, a bare address ``[<ffffffff81234567>]``

A frame is *precise* when its address is the instruction that was executing (a faulting pc,
the WARN site) and a *return address* otherwise: a return address points after the call, so
the decoder looks one byte back (see decode.py). A call-trace entry that repeats a precise
frame (arm64 prints the faulting pc again as the first trace entry) is precise as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# name+0xoff/0xsize with an optional " [module]" (the kernel prints "[mod]" or "[mod ...]").
_SYMBOL = re.compile(
    r"(?P<func>[A-Za-z_$][A-Za-z0-9_.$]*)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)"
    r"(?: \[(?P<module>[A-Za-z0-9_-]+)(?: [^\]]*)?\])?"
)
_ADDRESS = re.compile(r"\[<?(?:0x)?(?P<addr>[0-9a-f]{8,16})>?\]")
# Where the address is the executing instruction, not a return address.
_PRECISE = (
    ("rip", re.compile(r"\bRIP: (?:[0-9a-f]{4}:)?")),
    ("ip", re.compile(r"(?:^|\s)(?:NIP|IP):? ")),
    ("pc", re.compile(r"^\s*(?:pc : |PC is at )")),
    ("tpc", re.compile(r"\bTPC: <")),
    ("warn", re.compile(r"^WARNING: .* at \S+:\d+ ")),
)
_RETURN = (
    ("lr", re.compile(r"^\s*(?:lr : |LR is at )")),
    ("i7", re.compile(r"\bI7: <")),
    ("caller", re.compile(r"\bCaller\[")),
)
_UNRELIABLE = re.compile(r"^\s*(?:\[<[0-9a-f]+>\] )?\? ")
# Lines with a symbol+offset that are not frames (nothing to decode there).
_NOT_FRAME = re.compile(r"^(?:Code: |Modules linked in:)")


@dataclass(frozen=True)
class ReportFrame:
    line: int  # 0-based index of the report line
    text: str  # the report line as printed
    kind: str  # trace | rip | ip | pc | tpc | warn | lr | i7 | caller
    function: str | None  # None: a bare address
    offset: int | None
    size: int | None
    module: str | None  # a module frame (not in vmlinux)
    address: int | None  # the address printed on the line, if any
    precise: bool
    reliable: bool = True  # False: an x86 "? func" guess from the stack scan

    @property
    def symbol(self) -> str | None:
        if self.function is None or self.offset is None or self.size is None:
            return None
        return f"{self.function}+{self.offset:#x}/{self.size:#x}"


def _kind(line: str) -> tuple[str, bool]:
    for kind, pattern in _PRECISE:
        if pattern.search(line):
            return kind, True
    for kind, pattern in _RETURN:
        if pattern.search(line):
            return kind, False
    return "trace", False


def parse_line(index: int, line: str) -> ReportFrame | None:
    """The frame printed on one report line, or None."""
    if _NOT_FRAME.search(line):
        return None
    sym = _SYMBOL.search(line)
    addrs = [int(m.group("addr"), 16) for m in _ADDRESS.finditer(line)]
    kind, precise = _kind(line)
    if sym is None:
        # A bare "[<ffffffff81234567>]" trace entry (no symbol printed): decode the address.
        rest = _ADDRESS.sub("", line).strip()
        if not addrs or addrs[-1] == 0 or (rest and not rest.startswith(("0x", "?"))):
            return None
        return ReportFrame(index, line, kind, None, None, None, None, addrs[-1], precise)
    return ReportFrame(
        index,
        line,
        kind,
        sym.group("func"),
        int(sym.group("off"), 16),
        int(sym.group("size"), 16),
        sym.group("module"),
        addrs[-1] if addrs else None,
        precise,
        reliable=_UNRELIABLE.search(line) is None,
    )


def parse_frames(report: str) -> list[ReportFrame]:
    """Every frame of a report, in report order."""
    frames: list[ReportFrame] = []
    precise_symbols: set[str] = set()
    for i, line in enumerate(report.split("\n")):
        frame = parse_line(i, line)
        if frame is None:
            continue
        if frame.precise and frame.symbol:
            precise_symbols.add(frame.symbol)
        elif frame.kind == "trace" and frame.symbol in precise_symbols:
            frame = _with_precise(frame)
        frames.append(frame)
    return frames


def _with_precise(frame: ReportFrame) -> ReportFrame:
    from dataclasses import replace

    return replace(frame, precise=True)
