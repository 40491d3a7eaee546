"""The frame parser on the three arches' trace formats and on syzkaller's report corpus."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from orchestrator.parser import parse_text
from orchestrator.symbolize.decode import _frame_dict, guilty_frame
from orchestrator.symbolize.report_frames import parse_frames, parse_line
from tests.parser import parser_snippets as snip

CORPUS = Path(__file__).resolve().parents[1] / "data" / "syzkaller" / "linux-reports.jsonl.gz"


def _summary(report: str) -> list[tuple[str, str | None, bool]]:
    return [(f.kind, f.symbol, f.precise) for f in parse_frames(report)]


def test_x86_64_warning() -> None:
    frames = parse_frames(snip.X86_WARNING)
    assert [(f.kind, f.symbol, f.precise) for f in frames][:3] == [
        ("warn", "__mmdrop+0x9f/0xb0", True),
        ("rip", "__mmdrop+0x9f/0xb0", True),
        ("trace", "takedown_cpu+0xd0/0xd0", False),
    ]
    assert not frames[2].reliable  # "? takedown_cpu": a stack-scan guess
    assert [f.function for f in frames[3:]] == [
        "finish_cpu",
        "cpuhp_invoke_callback",
        "_cpu_down",
        "cpu_down",
        "kthread",
        "ret_from_fork",
    ]
    assert all(f.reliable and not f.precise for f in frames[3:])


def test_arm64_pc_lr_and_the_repeated_pc() -> None:
    assert _summary(snip.ARM64_NULL_DEREF) == [
        ("pc", "__mmdrop+0x14/0x80", True),
        ("lr", "finish_cpu+0x5c/0x80", False),
        # arm64's first trace entry is the faulting pc again: precise too.
        ("trace", "__mmdrop+0x14/0x80", True),
        ("trace", "finish_cpu+0x5c/0x80", False),
        ("trace", "cpuhp_invoke_callback+0x150/0x5a0", False),
        ("trace", "kthread+0x10c/0x120", False),
        ("trace", "ret_from_fork+0x10/0x20", False),
    ]


def test_sparc64_tpc_i7_trace_and_caller() -> None:
    frames = parse_frames(snip.SPARC64_NULL_DEREF)
    assert [(f.kind, f.symbol) for f in frames] == [
        ("tpc", "__mmdrop+0x14/0x80"),
        ("i7", "finish_cpu+0x34/0x60"),
        ("trace", "finish_cpu+0x34/0x60"),
        ("trace", "cpuhp_invoke_callback+0x108/0x4a0"),
        ("trace", "ret_from_fork+0x1c/0x2c"),
        ("caller", "finish_cpu+0x34/0x60"),
    ]
    assert frames[2].address == 0x47D0F4 and frames[0].precise and not frames[1].precise


def test_sparc64_trace_ends_at_a_zero_address() -> None:
    frames = parse_frames(snip.SPARC64_WARNING)
    assert frames[-1].function == "ret_from_fork"  # "[0000000000000000] 0x0" is no frame


def test_modules_suffixes_and_bare_addresses() -> None:
    f = parse_line(0, " kvm_mmu_notifier_release+0x2f/0x60 [kvm]")
    assert f and (f.function, f.module, f.offset, f.size) == (
        "kvm_mmu_notifier_release",
        "kvm",
        0x2F,
        0x60,
    )
    f = parse_line(0, " nmi_cpu_backtrace.cold+0x30/0x70")
    assert f and f.function == "nmi_cpu_backtrace.cold"
    f = parse_line(0, " [<ffffffff81234567>] do_exit+0x1a/0x40")  # old x86 format
    assert f and f.address == 0xFFFFFFFF81234567 and f.function == "do_exit"
    f = parse_line(0, " [<ffffffff81234567>]")
    assert f and f.function is None and f.address == 0xFFFFFFFF81234567
    f = parse_line(0, "RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30")
    assert f and f.kind == "rip" and f.precise and f.function == "__memset"
    assert parse_line(0, "Code: 48 8b 45 68 <0f> 0b") is None
    assert parse_line(0, "RAX: ffff8e84c2339c00 RBX: ffff8e84df5572e0") is None
    assert parse_line(0, " <TASK>") is None


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    for rec in records:
        if rec.get("log_b64"):
            rec["log"] = base64.b64decode(rec["log_b64"]).decode("utf-8", "replace")
    return records


def test_the_guilty_function_is_a_parsed_frame_in_the_corpus(corpus: list[dict]) -> None:
    """For every first finding of syzkaller's corpus with a guilty function, the frame
    parser finds that function's frame in the report (the frame decode.py resolves)."""
    checked, missing = 0, []
    for rec in corpus:
        findings = parse_text(rec["log"])
        if not findings or findings[0].function in (None, "corrupted"):
            continue
        f = findings[0]
        checked += 1
        frames = [_frame_dict(fr, None, None, []) for fr in parse_frames(f.report)]
        if guilty_frame(f.function, frames) is None:
            missing.append((rec["id"], f.title))
    assert checked > 240
    # Measured: 252/254; the two others are titles named after a non-frame word
    # ("Dentry still in use in unmount") or a function printed outside the trace.
    assert len(missing) <= 2, missing


def test_every_frame_of_a_corpus_trace_is_parsed(corpus: list[dict]) -> None:
    """Each `func+0x../0x..` line of a report's call trace is one frame, none dropped."""
    for rec in corpus[:80]:
        for f in parse_text(rec["log"])[:1]:
            lines = f.report.split("\n")
            frames = {fr.line for fr in parse_frames(f.report)}
            for i, line in enumerate(lines):
                stripped = line.strip()
                if stripped.startswith(("Code:", "Modules linked in:")):
                    continue
                if "+0x" in stripped and "/0x" in stripped and not stripped.startswith("?"):
                    assert i in frames, (rec["id"], line)
