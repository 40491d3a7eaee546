#!/usr/bin/env python3
"""Parser throughput and memory.

1. All logs of syzkaller's corpus (tests/data/syzkaller/linux-reports.jsonl.gz)
   parsed in-process (goal: <= 2 s in total).
2. A synthetic console of --size-mb MiB (default 1024) streamed through
   parse_file: time and peak RSS (goal: < 200 MB). The file is written to a
   temporary directory and removed afterwards.

    .venv/bin/python bench/parse.py --size-mb 64
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.parser import parse_file, parse_text  # noqa: E402

CORPUS = REPO / "tests" / "data" / "syzkaller" / "linux-reports.jsonl.gz"

_BOOT = [
    "smpboot: CPU 1 is now offline",
    "smpboot: Booting Node 0 Processor 1 APIC 0x1",
    "rcu-torture: rtc: (____ptrval____) ver: 361 tfle: 0 rta: 362 rtaf: 0 rtf: 351 rtmbe: 0",
    "rcu-torture: Reader Pipe:  618361 19 0 0 0 0 0 0 0 0 0",
    "EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.",
    "random: crng init done",
]
_REPORT = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 175 at kernel/fork.c:686 __mmdrop+0x9f/0xb0
Modules linked in:
CPU: 0 PID: 175 Comm: torture_onoff Not tainted 6.1.0 #23
RIP: 0010:__mmdrop+0x9f/0xb0
Call Trace:
 <TASK>
 finish_cpu+0x2e/0x40
 cpuhp_invoke_callback+0xf6/0x3f0
 kthread+0xf9/0x130
 ret_from_fork+0x22/0x30
 </TASK>
---[ end trace 0000000000000000 ]---
""".splitlines()


def bench_corpus() -> None:
    if not CORPUS.exists():
        print(f"corpus: skipped ({CORPUS} not found)")
        return
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f.read().splitlines()]
    # log_b64: the upstream bytes when they were not UTF-8 (see the corpus README)
    logs = [
        base64.b64decode(r["log_b64"]).decode("utf-8", "replace") if r.get("log_b64") else r["log"]
        for r in records
    ]
    size = sum(len(log) for log in logs)
    start = time.perf_counter()
    found = sum(1 for log in logs if parse_text(log))
    elapsed = time.perf_counter() - start
    print(
        f"corpus: {len(logs)} logs, {size / 2**20:.2f} MiB, {found} with findings, "
        f"{elapsed:.2f} s in-process ({elapsed / len(logs) * 1000:.1f} ms/log)"
    )


def write_synthetic(path: Path, size_mb: int) -> int:
    """A console of boot/stress chatter with a WARNING report every ~10 000 lines."""
    target = size_mb << 20
    written = lines = reports = 0
    t = 0.0
    with path.open("w") as f:
        block = []
        for i in range(10_000):
            t += 0.000731
            block.append(f"[{t:12.6f}] {_BOOT[i % len(_BOOT)]}\n")
        block_text = "".join(block)
        report_text = "".join(f"[{t:12.6f}] {line}\n" for line in _REPORT)
        while written < target:
            f.write(block_text)
            f.write(report_text)
            written += len(block_text) + len(report_text)
            lines += 10_000 + len(_REPORT)
            reports += 1
    return reports


def bench_stream(size_mb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kto-bench-") as tmp:
        path = Path(tmp) / "console.log"
        reports = write_synthetic(path, size_mb)
        size = path.stat().st_size
        start = time.perf_counter()
        findings = parse_file(path)
        elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    ok = "ok" if len(findings) == reports else f"MISMATCH: expected {reports}"
    print(
        f"stream: {size / 2**20:.0f} MiB synthetic log, {len(findings)} findings ({ok}), "
        f"{elapsed:.1f} s ({size / 2**20 / elapsed:.1f} MiB/s), peak RSS {peak_kb / 1024:.0f} MB"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="synthetic log size (MiB)")
    ap.add_argument("--skip-corpus", action="store_true")
    args = ap.parse_args()
    if not args.skip_corpus:
        bench_corpus()
    if args.size_mb > 0:
        bench_stream(args.size_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
