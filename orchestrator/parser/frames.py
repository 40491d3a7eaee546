"""Stack-frame extraction for x86_64, arm64, arm, powerpc and sparc64 traces.

Frame lines this understands (after the console prefix is removed):
  x86_64   `` __mmdrop+0x9f/0xb0`` (``? `` frames are unreliable and dropped earlier)
           ``RIP: 0010:__mmdrop+0x9f/0xb0``
  arm64    ``  __mmdrop+0x9f/0xb0`` after ``Call trace:``, ``pc : __mmdrop+0x9f/0xb0``
  arm      ``[<c0123>] (foo) from [<c0456>] (bar+0x10/0x20)``
  sparc64  `` [000000000046b5c8] __mmdrop+0x9f/0xb0``, ``TPC: <__mmdrop+0x9f/0xb0>``
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache

from orchestrator.parser import frame_rules
from orchestrator.parser.report_types import STACK, StackSpec

_PLACEHOLDERS = {
    "%PC%": r"\[<?(?:0x)?[0-9a-f]+>?\]",
    "%FUNC%": r"([a-zA-Z0-9_]+)(?:\.|\+)",
    "%SRC%": r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)",
}
_RIP = (
    r"(?:(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:%PC% +){0,2}%FUNC%|(?:[0-9]+:)?0x[0-9a-f]+"
    r"|(?:[0-9]+:)?%PC% +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))|TPC: <%FUNC%)"
)
_CALLTRACE = r"(?:Call (?:T|t)race:)|(?:Backtrace:)"


def expand(pattern: str) -> str:
    pattern = pattern.replace("%RIP%", _RIP).replace("%CALLTRACE%", _CALLTRACE)
    for key, value in _PLACEHOLDERS.items():
        pattern = pattern.replace(key, value)
    return pattern


@cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(expand(pattern))


STACK_STARTS = tuple(
    re.compile(p)
    for p in (
        r"Call (?:T|t)race",
        r"Allocated:",
        r"Allocated by task [0-9]+:",
        r"Freed:",
        r"Freed by task [0-9]+:",
        r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:",  # not "stack backtrace:"
        r"Backtrace:",
        r"Uninit was stored to memory at",
        r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}",  # riscv
    )
)
RISCV_STACK_START = STACK_STARTS[-1]
_STACK_START_ANY = re.compile("|".join(p.pattern for p in STACK_STARTS))
FRAME_RES = (
    re.compile(expand(r"^ *(?:%PC% ){0,2}%FUNC%")),
    re.compile(expand(r"^ *%PC% \(([a-zA-Z0-9_.]+)\) from %PC% \(%FUNC%")),
)
# Fault-injection stacks get mixed into reports; seeing one makes the report corrupted.
_CORRUPTED_LINE = re.compile(
    expand(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x")
)
_STALL_ANCHORS = re.compile("|".join(frame_rules.STALL_ANCHORS))


def is_frame_line(line: str) -> bool:
    return any(r.search(line) for r in FRAME_RES)


def is_stack_start(line: str) -> bool:
    return _STACK_START_ANY.search(line) is not None


@cache
def _skip_re(extra: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(frame_rules.COMMON_SKIP + extra))


def canonical(frame: str) -> str:
    """Shortest name left after removing one syscall-wrapper prefix."""
    best = frame
    for prefix in frame_rules.STRIP_FRAME_PREFIXES:
        if frame.startswith(prefix) and len(frame) - len(prefix) < len(best):
            best = frame[len(prefix) :]
    return best


def _first(frames: Sequence[str]) -> int:
    return 0 if frames else -1


def _stall(frames: Sequence[str]) -> int:
    """Index of the frame just above the first dispatcher (syscall entry, work runner...)."""
    prev = 0
    for i, frame in enumerate(frames):
        if _STALL_ANCHORS.search(frame):
            return i if "smp_call_function" in frame else prev
        prev = i
    return -1


def _hang(frames: Sequence[str]) -> int:
    for i, frame in enumerate(frames):
        for anchor, _ in frame_rules.HANG_ANCHORS:
            if anchor in frame:
                return i
    for i, frame in enumerate(frames):
        if not any(s in frame for s in frame_rules.HANG_SKIP):
            return i
    return -1


def _hang_name(frame: str) -> str:
    for anchor, replacement in frame_rules.HANG_ANCHORS:
        if anchor in frame:
            return replacement or frame
    return frame


EXTRACTORS: dict[str, Callable[[Sequence[str]], int]] = {
    "first": _first,
    "stall": _stall,
    "hang": _hang,
}


def _pick(raw: list[str], extractor: str) -> str | None:
    if not raw:
        return None
    frames = [canonical(f) for f in raw]
    idx = EXTRACTORS[extractor](frames)
    if idx < 0:
        return None
    frame = frames[idx]
    if extractor == "stall" and "smp_call_function" in frame:
        frame = "smp_call_function"
    if extractor == "hang":
        frame = _hang_name(frame)
    return frame


def _append(raw: list[str], match: re.Match[str], skip: re.Pattern[str]) -> None:
    for group in match.groups():
        if group is not None and not skip.search(group):
            raw.append(group)


def _run_parts(
    lines: list[str], parts: Sequence[str], skip: re.Pattern[str], extractor: str
) -> tuple[list[str | None], bool]:
    """Walk ``parts`` over ``lines``; one guilty frame per parsed stack section."""
    results: list[str | None] = []
    raw: list[str] = []
    ok = True
    traces = 0
    pos = 0
    n = len(lines)
    idx = 0
    while True:
        if idx == len(parts) or (parts[idx] == STACK and traces > 0):
            frame = _pick(raw, extractor)
            if frame is None:
                ok = False
            results.append(frame)
            raw = []
        if idx == len(parts):
            break
        part = parts[idx]
        if part == STACK:
            traces += 1
            nxt = compile_pattern(parts[idx + 1]) if idx + 1 < len(parts) else None
            while pos < n:
                line = lines[pos]
                pos += 1
                if _CORRUPTED_LINE.search(line):
                    ok = False
                    break
                if _STACK_START_ANY.search(line):
                    break
                if nxt is not None:
                    m = nxt.search(line)
                    if m:
                        _append(raw, m, skip)
                        idx += 1
                        break
                for frame_re in FRAME_RES:
                    m = frame_re.search(line)
                    if m:
                        _append(raw, m, skip)
                        break
        else:
            part_re = compile_pattern(part)
            while pos < n:
                line = lines[pos]
                pos += 1
                if _CORRUPTED_LINE.search(line):
                    ok = False
                    break
                m = part_re.search(line)
                if m:
                    _append(raw, m, skip)
                    break
        idx += 1
    return results, ok


def guilty_frames(spec: StackSpec, text: str) -> tuple[list[str | None], bool]:
    """Guilty frame(s) of ``text`` (a report from its title line on) per ``spec``.

    Returns the frames (None where none was found) and whether extraction succeeded.
    """
    skip = _skip_re(spec.skip)
    lines = text.split("\n")
    frames, ok = _run_parts(lines, spec.parts, skip, spec.extractor)
    if ok or not spec.parts2:
        return frames, ok
    return _run_parts(lines, spec.parts2, skip, spec.extractor)
