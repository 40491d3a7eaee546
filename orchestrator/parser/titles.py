"""Report titles: pick the title format, fill it, normalise the result.

Normalisation makes titles stable across runs (syzkaller-compatible):
addresses -> ADDR, numbers -> NUM, ``file.c:123`` -> ``file.c:LINE``,
``func+0x1f/0x20`` -> ``func``, executor ids dropped, 120 bytes at most.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from orchestrator.parser import frames
from orchestrator.parser.report_types import OopsType, TitleFormat

_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.ASCII), r)
    for p, r in (
        (r"syz-executor\.?[0-9]+((/|:)[0-9]+)?", "syz-executor"),
        (r"syzkaller[0-9]+((/|:)[0-9]+)?", "syzkaller"),
        (r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}", r"\1ADDR"),
        (r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", "IP"),
        (r"(\.\w+)(:[0-9]+)+", r"\1:LINE"),
        (r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+", r"\1"),
        (r"CPU#[0-9]+", "CPU"),
        (r"(\W)(\d+)(\W|$)", r"\1NUM\3"),
        (r"(\d+){7,}", "NUM"),
    )
)
MAX_TITLE_BYTES = 120
_TIMESTAMP_IN_TITLE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
_FRAME_OF_TITLE = re.compile(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)")


def normalise(title: str) -> str:
    for pattern, repl in _REPLACEMENTS:
        while True:
            new = pattern.sub(repl, title)
            if new == title:
                break
            title = new
    return sanitise(title)


def sanitise(title: str) -> str:
    """Tabs to spaces, control/non-ASCII bytes dropped, spaces collapsed, 120 bytes."""
    out = []
    prev = " "
    for byte in title.encode("utf-8", "replace")[:MAX_TITLE_BYTES]:
        ch = chr(byte)
        if ch == "\t":
            ch = " "
        elif byte < 0x20 or byte >= 0x7F:
            continue
        if ch == " " and prev == " ":
            continue
        out.append(ch)
        prev = ch
    return "".join(out).strip()


def title_frame(title: str) -> str | None:
    """The function a title names ("WARNING in __mmdrop" -> "__mmdrop")."""
    m = _FRAME_OF_TITLE.match(title)
    return m.group(1) if m else None


@dataclass
class Description:
    title: str
    alt_titles: list[str] = field(default_factory=list)
    corrupted_reason: str = ""
    fmt: TitleFormat | None = None


@cache
def _compiled(fmt: TitleFormat) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    title_re = frames.compile_pattern(fmt.title)
    report_re = frames.compile_pattern(fmt.report) if fmt.report else None
    return title_re, report_re


def describe(text: str, oops: OopsType) -> Description:
    """Title of the report ``text`` (which starts at the line that matched ``oops``)."""
    start = len(text)
    desc: Description | None = None
    matched_title = False
    for fmt in oops.formats:
        title_re, report_re = _compiled(fmt)
        m = title_re.search(text)
        if m is None or m.start() > start:
            continue
        if m.start() == start and desc is not None:
            continue
        if m.start() < start:
            desc = None
            start = m.start()
        matched_title = True
        if report_re is not None:
            m = report_re.search(text)
            if m is None:
                continue
        args = ["", *(g or "" for g in m.groups())]
        reason = ""
        if fmt.stack is not None:
            found, ok = frames.guilty_frames(fmt.stack, text[m.start() :])
            if not ok:
                reason = "extracted no frames"
            args.extend(f if f is not None else "corrupted" for f in found)
        args.extend([""] * 4)  # a format may name more groups than a short match has
        title = fmt.fmt.format(*args)
        alts = [a.format(*args) for a in fmt.alt]
        desc = Description(title, [a for a in dict.fromkeys(alts) if a != title], reason, fmt)
    if desc is None:
        # The header matched but no format did: the header line is the title.
        pos = text.find(oops.header)
        end = text.find("\n", pos)
        line = text[pos : end if end >= 0 else len(text)]
        reason = "matched title but not report regexp" if matched_title else ""
        return Description(line, [], reason, None)
    if not desc.corrupted_reason and desc.fmt is not None and desc.fmt.corrupted:
        desc.corrupted_reason = "report format is marked as corrupted"
    return desc


def corruption(title: str, report: str, fmt: TitleFormat | None) -> str:
    """Why a well-titled report still looks truncated or intermixed ("" if it does not)."""
    if _TIMESTAMP_IN_TITLE.search(title):
        return "title matches corrupted regexp"
    if fmt is None or fmt.no_stack_trace:
        return ""
    has_trace = False
    for key in frames.STACK_STARTS:
        m = key.search(report)
        if m is None:
            continue
        following = report[m.start() :].split("\n", 17)
        if len(following) < 4:
            return "call trace is missed"
        found = False
        for line in following[1:16]:
            if frames.is_stack_start(line):
                break
            if "(stack is not available)" in line or frames.is_frame_line(line):
                has_trace = found = True
                break
        if key is not frames.RISCV_STACK_START and not found:
            return "no frames in a stack trace"
    if not has_trace:
        return "no stack trace in report"
    return ""
