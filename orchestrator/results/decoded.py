"""A finding's report with its decoded frames, for HTML, JUnit and reply mails (pure).

Reads the `symbolized` section the job wrote into findings.json (orchestrator/symbolize);
an older findings.json without one, or a kernel without debug info, gives the report as
printed. Each decoded frame line gets its file:line, the functions inlined at that address
come before it as `[inline]` lines (innermost first, the way syzbot prints them), and the
source line's text follows after ` | `:

     helper include/linux/mm.h:120 [inline]  | return callee(x) * 3;
     outer+0x5/0xf mm/memory.c:18  | int r = helper(x);
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCE_SEP = "  | "


@dataclass(frozen=True)
class Line:
    text: str  # the report line, or a decoded one
    source: str | None = None  # the source line's text (stripped), when known
    decoded: bool = False  # file:line was added to this line

    def plain(self) -> str:
        return self.text + (f"{SOURCE_SEP}{self.source}" if self.source else "")


def _where(loc: dict[str, Any]) -> str:
    if not loc.get("file"):
        return ""
    return f"{loc['file']}:{loc['line']}" if loc.get("line") else str(loc["file"])


def _src(loc: dict[str, Any]) -> str | None:
    text = loc.get("source")
    return (text.strip() or None) if isinstance(text, str) else None


def symbolized(finding: dict[str, Any]) -> dict[str, Any]:
    sym = finding.get("symbolized")
    return sym if isinstance(sym, dict) else {}


def is_decoded(finding: dict[str, Any]) -> bool:
    return any(f.get("file") for f in symbolized(finding).get("frames") or [])


def decoded_lines(finding: dict[str, Any]) -> list[Line]:
    """The report, line by line, decoded frames annotated."""
    report = str(finding.get("report") or "")
    frames = {
        f.get("report_line"): f
        for f in symbolized(finding).get("frames") or []
        if isinstance(f, dict) and f.get("file")
    }
    out: list[Line] = []
    for i, text in enumerate(report.split("\n")):
        frame = frames.get(i)
        if frame is None:
            out.append(Line(text))
            continue
        indent = text[: len(text) - len(text.lstrip())]
        for inl in frame.get("inlined") or []:
            name = inl.get("function") or "??"
            out.append(Line(f"{indent}{name} {_where(inl)} [inline]", _src(inl), True))
        out.append(Line(f"{text} {_where(frame)}", _src(frame), True))
    return out


def decoded_text(finding: dict[str, Any]) -> str:
    """The decoded report as plain text (the report as printed when nothing was decoded)."""
    if not is_decoded(finding):
        return str(finding.get("report") or "")
    return "\n".join(line.plain() for line in decoded_lines(finding))


def guilty_summary(finding: dict[str, Any]) -> str | None:
    """`__mmdrop at kernel/fork.c:686`, when the guilty frame was decoded."""
    g = symbolized(finding).get("guilty") or {}
    if not g.get("file"):
        return None
    return f"{g.get('function')} at {_where(g)}"


def notes(finding: dict[str, Any]) -> list[str]:
    sym = symbolized(finding)
    out = [str(n) for n in sym.get("notes") or []]
    maint = sym.get("maintainers") or {}
    if maint.get("note"):
        out.append(str(maint["note"]))
    return out


def recipients(finding: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(people, lists) get_maintainer.pl named for the guilty file."""
    maint = symbolized(finding).get("maintainers") or {}
    return list(maint.get("people") or []), list(maint.get("lists") or [])
