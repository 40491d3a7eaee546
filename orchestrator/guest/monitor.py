"""Judging a workload: every console line fed to a WorkloadMonitor (required lines, result
lines, metrics), then evaluate() turns the generic verdict (job/verdict.py) plus what the
monitor saw into the workload's verdict. Pure: no processes, no files."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from orchestrator.guest import protocol as gp
from orchestrator.guest.metrics import METRIC_PARSERS, number
from orchestrator.guest.testspec import GuestTest
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.verdict import Status, Verdict


def parse_result_line(line: str) -> tuple[str, dict[str, str]] | None:
    """`<<KTO>> result NAME status=PASS key=value key="a b"` -> (NAME, {status: PASS, ...})."""
    m = gp.RESULT_RE.search(line)
    if not m:
        return None
    try:
        words = shlex.split(m.group(2))
    except ValueError:
        words = m.group(2).split()
    fields = dict(w.split("=", 1) for w in words if "=" in w)
    return m.group(1), fields


@dataclass
class WorkloadMonitor:
    """Fed every console line: required lines seen, workload result lines, metrics."""

    test: GuestTest
    duration: int | None = None
    seen: set[str] = field(default_factory=set)
    results: dict[str, dict[str, str]] = field(default_factory=dict)
    parsers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._required = [(r.regex, re.compile(r.regex)) for r in self.test.criteria.required]
        self.parsers = {m: METRIC_PARSERS[m]() for m in self.test.metrics}

    def feed(self, line: str) -> None:
        for regex, compiled in self._required:
            if regex not in self.seen and compiled.search(line):
                self.seen.add(regex)
        if gp.MARKER in line:
            res = parse_result_line(line)
            if res:
                self.results[res[0]] = res[1]
            return
        for p in self.parsers.values():
            p.feed(line)

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: p.metrics(self.duration) for n, p in self.parsers.items()}
        for name, fields in self.results.items():
            out[name] = {k: number(v) for k, v in fields.items()}
        return out


def evaluate(
    test: GuestTest, base: Verdict, outcome: ConsoleOutcome, mon: WorkloadMonitor
) -> Verdict:
    """The workload's verdict from the generic one (verdict.judge) and what `mon` saw.

    Findings and infrastructure problems (kills, QEMU deaths) keep the generic verdict. A
    kernel-ended test (end: kernel) needs no test-end marker. Then: a required console line
    missing -> FAIL; a result line with status=FAIL -> FAIL; all results SKIP -> SKIP; a
    result line that never came while run.sh exited 0 -> ERROR (a broken test, not the kernel).
    """
    if base.findings or outcome.killed or outcome.qemu_signal:
        return base
    if outcome.qemu_exit not in (0, None):
        return base
    if test.end == "test" and outcome.test_rc is None:
        return base
    if not outcome.boot_ok and test.end == "kernel":
        return base
    for r in test.criteria.required:
        if r.regex not in mon.seen:
            return Verdict(Status.FAIL, f"no console line matched {r.regex!r}", r.missing)
    failed = [(n, f) for n, f in mon.results.items() if f.get("status") == "FAIL"]
    if failed:
        name, fields = failed[0]
        reason = fields.get("reason", "failed")
        return Verdict(
            Status.FAIL, f"workload {name} reported FAIL: {reason}", f"kto: {name}: {reason}"
        )
    if outcome.test_rc not in (0, None):
        return base
    missing = [n for n in test.criteria.results if n not in mon.results]
    if missing:
        return Verdict(
            Status.ERROR,
            f"workload(s) {', '.join(missing)} printed no result line ({gp.RESULT} ...); "
            "the guest test is broken",
        )
    expected = test.criteria.results
    skipped = [n for n in expected if mon.results[n].get("status") == "SKIP"]
    if expected and len(skipped) == len(expected):
        reasons = "; ".join(f"{n}: {mon.results[n].get('reason', '?')}" for n in skipped)
        return Verdict(Status.SKIP, reasons)
    if skipped:
        notes = ", ".join(f"{n} skipped ({mon.results[n].get('reason', '?')})" for n in skipped)
        return Verdict(
            Status.PASS, f"{base.reason if base.status is Status.PASS else 'ok'}; {notes}"
        )
    if base.status is Status.ERROR and test.end == "kernel":
        return Verdict(Status.PASS, "the kernel ended the test; required lines seen, no findings")
    return base
