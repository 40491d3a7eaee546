"""Golden tests: recorded consoles in golden/, expected findings beside them.

golden/<name>.log             the console log (or mail) as recorded
golden/<name>.patterns        optional custom patterns, one regex per line
golden/<name>.expected.json   expected {"findings": [...]} (without report text)

KTO_REGEN_GOLDEN=1 pytest tests/parser rewrites the expected files; review the diff.
The clean-*.log consoles are real clean runs (x86 boot/hotplug/rcutorture/nested
KVM, arm64 boot/rcutorture, sparc64 boot): they must yield no finding at all.
The mail-*.log files are mails written for these tests in the shapes real ones
reach kto in (see tests/data/mails/README.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.parser import parse_file

GOLDEN = Path(__file__).parent / "golden"
LOGS = sorted(GOLDEN.glob("*.log"))


def _result(log: Path) -> dict:
    patterns_file = log.with_suffix(".patterns")
    patterns = patterns_file.read_text().splitlines() if patterns_file.exists() else []
    findings = []
    for f in parse_file(log, patterns):
        d = f.to_dict()
        d.pop("report")  # kept out of the golden files: long, and covered by unit tests
        findings.append(d)
    return {"findings": findings}


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_golden(log: Path) -> None:
    expected_file = log.with_suffix(".expected.json")
    got = _result(log)
    if os.environ.get("KTO_REGEN_GOLDEN") == "1":
        expected_file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert expected_file.exists(), f"no {expected_file.name}; run with KTO_REGEN_GOLDEN=1"
    assert got == json.loads(expected_file.read_text())


@pytest.mark.parametrize("log", [p for p in LOGS if p.name.startswith("clean-")], ids=str)
def test_clean_consoles_have_no_findings(log: Path) -> None:
    assert parse_file(log) == []


def test_quoted_log_with_lost_newlines() -> None:
    """rcutorture/hotplug splat quoted in a reply whose newlines were lost, a reply
    interjected in the call trace."""
    findings = parse_file(GOLDEN / "mail-quoted-rcutorture.log")
    assert [(f.kind, f.title) for f in findings] == [
        ("warning", "WARNING in __mmdrop"),
        ("bad_rss", "BUG: Bad rss-counter state"),
        ("bad_pgtables", "BUG: non-zero pgtables_bytes on freeing mm"),
    ]
    warning = findings[0]
    assert warning.function == "__mmdrop"
    assert (warning.cpu, warning.pid, warning.comm, warning.taint) == (1, 233, "torture_onoff", "")
    # The mail client wrapped this line (" > " inside it); the report has it whole.
    assert "WARNING: CPU: 1 PID: 233 at kernel/fork.c:802 __mmdrop+0xb6/0xd0" in warning.report
    assert "finish_cpu+0x3a/0x50" in warning.report
    assert "? takedown_cpu" not in warning.report  # unreliable frames are dropped
    assert "MM_ANONPAGES val:1" in findings[1].report


def test_custom_pattern_in_quoted_printable_mail() -> None:
    pattern = r"\S+ \(\d+\) created two mmu_notifier's with invalidate_range_end\(\)"
    findings = parse_file(GOLDEN / "mail-qp-mmu-notifier.log", [pattern])
    assert [(f.kind, f.title) for f in findings] == [
        ("custom", "qemu-kvm (NUM) created two mmu_notifier's with invalidate_range_end()")
    ]
    assert parse_file(GOLDEN / "mail-qp-mmu-notifier.log") == []


def test_mail_without_kernel_report() -> None:
    # The mail describes a cpus_read_lock deadlock with a Trace32-style call stack
    # ("-004|cpus_read_lock()") but quotes no console report: nothing to find.
    text = (GOLDEN / "mail-no-report.log").read_text()
    assert "-004|cpus_read_lock()" in text and "finish_cpu()" in text
    assert parse_file(GOLDEN / "mail-no-report.log") == []
