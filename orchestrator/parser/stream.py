"""ConsoleParser: a line-at-a-time state machine turning a console into Findings.

Memory is bounded: the parser keeps the last ``PREFIX_WINDOW`` lines (for the
lines printed just before a report) and the lines of the reports still open,
each capped at ``max_report_lines``.

Report boundaries follow syzkaller's rules: a report starts on a start marker
(see report_types), collects the lines of its own context (caller id
``[ T123]`` when printed), drops unreliable ``? func`` frames, and ends at the
next report start of the same context, at a panic/lockdep splat that follows a
long enough report (panic_on_warn echoes), after ``max_report_lines`` or at
the end of the log.
"""

from __future__ import annotations

import re
from collections import deque

from orchestrator.parser import line_rules, titles
from orchestrator.parser.findings import Finding
from orchestrator.parser.kinds import kind_of
from orchestrator.parser.lines import (
    CONSOLE,
    MAX_LINE_CHARS,
    ConsoleLine,
    QuoteState,
    clean,
    split_context,
    strip_host_prefix,
)
from orchestrator.parser.patterns import CustomPattern
from orchestrator.parser.report_types import (
    INFO_WITH_STACK,
    OOPS_TYPES,
    REPORT_START_IGNORES,
    OopsType,
)

PREFIX_WINDOW = 50  # lines kept before a report (5 used, 50 with caller ids)
DEFAULT_MAX_REPORT_LINES = 2000
MAX_OPEN_REPORTS = 8  # reports collected at the same time (interleaved tasks)
IDLE_LINES = 500  # a report that got no line for this many log lines is complete

_HEADERS = re.compile("|".join(re.escape(o.header) for o in OOPS_TYPES))
_SUPPRESSIONS = {o.header: [re.compile(s) for s in o.suppressions] for o in OOPS_TYPES}
_LINE_RULES = [
    (kind, title, needle, re.compile(rx)) for kind, title, needle, rx in line_rules.LINE_RULES
]
# Literal needles first: one cheap search per line, regexes only on a hit.
_LINE_NEEDLES = re.compile("|".join(re.escape(r[2]) for r in line_rules.LINE_RULES))
_CPU_PID_COMM = re.compile(
    r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)(?: (Not tainted|Tainted: ([A-Z ]+)))?"
)
_CPU_PID = re.compile(r"CPU: (\d+) PID: (\d+)")
_TASK = re.compile(r"task (\S+?):(\d+)\b")
_PANIC = "Kernel panic - not syncing"
_LOCKDEP_ECHO = "WARNING: possible circular locking dependency detected"


class _Report:
    __slots__ = (
        "context",
        "cpu_traceback",
        "first_line",
        "last_line",
        "lines",
        "min_lines",
        "oops",
        "panicked",
        "prefix",
        "text_lines",
    )

    def __init__(self, oops: OopsType, line: ConsoleLine, prefix: list[str]) -> None:
        self.oops = oops
        self.context = line.context
        self.first_line = line.number
        self.last_line = line.number
        self.prefix = prefix
        self.lines: list[str] = [line.stripped]
        self.text_lines = 1
        self.cpu_traceback = False
        self.panicked = _PANIC in line.stripped
        # KMSAN reports are short; a panic after 16 lines is already an echo.
        self.min_lines = 16 if "BUG: KMSAN:" in line.text else 22

    def owns(self, line: ConsoleLine) -> bool:
        if line.context == self.context:
            return True
        return self.cpu_traceback and line.context.startswith("C")


def _match_oops(text: str) -> OopsType | None:
    if _HEADERS.search(text) is None:
        return None
    for oops in OOPS_TYPES:
        if oops.header in text and not any(s.search(text) for s in _SUPPRESSIONS[oops.header]):
            return oops
    return None


class ConsoleParser:
    """Feed console lines one at a time; collect findings as reports complete."""

    def __init__(
        self,
        custom_patterns: list[str | CustomPattern] | tuple[str | CustomPattern, ...] = (),
        max_report_lines: int = DEFAULT_MAX_REPORT_LINES,
    ) -> None:
        self._custom = [
            (p if isinstance(p, CustomPattern) else CustomPattern(p)) for p in custom_patterns
        ]
        self._custom_res = [re.compile(p.regex) for p in self._custom]
        self._max_lines = max_report_lines
        self._number = 0
        self._quotes = QuoteState()
        self._window: deque[tuple[int, str]] = deque(maxlen=PREFIX_WINDOW)
        self._open: list[_Report] = []
        self.findings: list[Finding] = []

    # -- public API -------------------------------------------------------
    def feed(self, line: str) -> list[Finding]:
        """Consume one console line; return the findings it completed."""
        self._number += 1
        done: list[Finding] = []
        text = strip_host_prefix(clean(line))
        for piece in self._quotes.unquote(text):
            self._line(self._number, piece, done)
        return done

    @property
    def reporting(self) -> bool:
        """A report has started and is not closed yet."""
        return bool(self._open)

    def flush(self) -> list[Finding]:
        """Close the open reports now: a live console that went quiet in the middle of one
        (a deadlock report, then nothing) will not say more. Later lines start afresh."""
        return self.finish()

    def finish(self) -> list[Finding]:
        """End of log: close every open report."""
        done: list[Finding] = []
        for report in list(self._open):
            self._close(report, done)
        return done

    # -- internals --------------------------------------------------------
    def _line(self, number: int, text: str, done: list[Finding]) -> None:
        if self._custom_res:
            self._match_custom(number, text, done)
        if _LINE_NEEDLES.search(text):
            self._match_line_rules(number, text, done)
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS]
        oops = _match_oops(text)
        if oops is None and not self._open:
            self._window.append((number, text))
            return
        if self._open and number - self._open[0].last_line > IDLE_LINES:
            for report in [r for r in self._open if number - r.last_line > IDLE_LINES]:
                self._close(report, done)
        line = split_context(number, text)
        if oops is not None:
            self._start_marker(oops, line, done)
        else:
            if any(m in text for m in INFO_WITH_STACK):
                # Another message with its own stack: console reports end here.
                for report in list(self._open):
                    if report.context in ("", CONSOLE):
                        self._close(report, done)
            for report in list(self._open):
                if report.owns(line):
                    self._add(report, line, done)
        self._window.append((number, text))

    def _start_marker(self, oops: OopsType, line: ConsoleLine, done: list[Finding]) -> None:
        owners = [r for r in self._open if r.owns(line)]
        if owners and any(ign in line.text for ign in REPORT_START_IGNORES):
            for report in owners:
                self._add(report, line, done)
            return
        # A new report ends the open reports of an unknown context (no caller
        # id: the lines that follow may belong to anything). With caller ids, a
        # report goes on collecting its task's lines; the new one overlaps it.
        for report in list(self._open):
            if report.context in ("", CONSOLE):
                self._close(report, done)
            elif report.context == line.context:
                self._add(report, line, done)
        if len(self._open) >= MAX_OPEN_REPORTS:
            self._close(self._open[0], done)
        self._open.append(_Report(oops, line, self._prefix(line)))

    def _prefix(self, line: ConsoleLine) -> list[str]:
        limit = 50 if line.context.startswith("T") else 5
        out: list[str] = []
        for number, text in reversed(self._window):
            if len(out) == limit:
                break
            prev = split_context(number, text)
            if prev.context == line.context and prev.stripped and not prev.questionable:
                out.append(prev.stripped)
        out.reverse()
        return out

    def _add(self, report: _Report, line: ConsoleLine, done: list[Finding]) -> None:
        if line.questionable:
            return
        report.text_lines += 1
        stripped = line.stripped
        if "Disabling lock debugging due to kernel taint" in stripped:
            return
        if "Sending NMI from CPU" in stripped:
            report.cpu_traceback = True
        elif (_PANIC in stripped or _LOCKDEP_ECHO in stripped) and (
            report.text_lines > report.min_lines
        ):
            # The echo of a report (panic_on_warn, lockdep on the oops path): done.
            report.panicked = report.panicked or _PANIC in stripped
            self._close(report, done)
            return
        if _PANIC in stripped:
            report.panicked = True
        report.lines.append(stripped)
        report.last_line = line.number
        if len(report.lines) >= self._max_lines:
            self._close(report, done)
        elif stripped.startswith("---[ end "):
            # "---[ end trace ... ]---": a live console need not wait for more
            # lines, unless the report is still unusable without them.
            finding = _finding(report)
            if not finding.corrupted:
                self._close(report, done, finding)

    def _close(self, report: _Report, done: list[Finding], finding: Finding | None = None) -> None:
        self._open.remove(report)
        finding = finding or _finding(report)
        done.append(finding)
        self._record(finding)

    def _record(self, finding: Finding) -> None:
        # Keep self.findings ordered by where each report starts.
        i = len(self.findings)
        while i > 0 and self.findings[i - 1].first_line > finding.first_line:
            i -= 1
        self.findings.insert(i, finding)

    def _match_custom(self, number: int, text: str, done: list[Finding]) -> None:
        for pattern, regex in zip(self._custom, self._custom_res, strict=True):
            m = regex.search(text)
            if m:
                title = pattern.name or titles.normalise(m.group(0))
                self._emit_line_finding(pattern.kind, title, number, text, done)

    def _match_line_rules(self, number: int, text: str, done: list[Finding]) -> None:
        for kind, title, needle, regex in _LINE_RULES:
            m = regex.search(text) if needle in text else None
            if m:
                self._emit_line_finding(kind, title.format(**m.groupdict()), number, text, done)
                return

    def _emit_line_finding(
        self, kind: str, title: str, number: int, text: str, done: list[Finding]
    ) -> None:
        finding = Finding(kind=kind, title=title, first_line=number, last_line=number, report=text)
        _fill_task_info(finding, [split_context(number, text).stripped])
        done.append(finding)
        self._record(finding)


def _finding(report: _Report) -> Finding:
    text = "\n".join(report.lines) + "\n"
    desc = titles.describe(text, report.oops)
    title = titles.normalise(desc.title)
    reason = desc.corrupted_reason or titles.corruption(desc.title, text, desc.fmt)
    alts = [a for a in dict.fromkeys(titles.normalise(t) for t in desc.alt_titles) if a != title]
    finding = Finding(
        kind=kind_of(title),
        title=title,
        first_line=report.first_line,
        last_line=report.last_line,
        report="\n".join([*report.prefix, *report.lines]) + "\n",
        function=titles.title_frame(title),
        corrupted=bool(reason),
        corrupted_reason=reason,
        alt_titles=alts,
        panicked=report.panicked,
    )
    _fill_task_info(finding, report.lines)
    return finding


def _fill_task_info(finding: Finding, lines: list[str]) -> None:
    for line in lines:
        if finding.comm is None and "Comm:" in line:
            m = _CPU_PID_COMM.search(line)
            if m:
                finding.cpu, finding.pid, finding.comm = int(m[1]), int(m[2]), m[3]
                if m[4] == "Not tainted":
                    finding.taint = ""
                elif m[5] is not None:
                    finding.taint = m[5].replace(" ", "")  # "G        W" -> "GW"
                return
        if finding.cpu is None and "PID:" in line:
            m = _CPU_PID.search(line)
            if m:
                finding.cpu, finding.pid = int(m[1]), int(m[2])
        if finding.comm is None and "task " in line:
            m = _TASK.search(line)
            if m:
                finding.comm, finding.pid = m[1], int(m[2])
