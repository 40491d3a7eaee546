#!/usr/bin/env python3
"""Boot time per arch via kto vs the same QEMU command run directly.

Prints, per arch: QEMU start -> userspace marker, start -> QEMU exit, for `kto boot`
(in-process, smoke-free `true` command) and for the raw argv kto printed in its record.
Goal: kto overhead <= 5 % (target <= 0.2 s) per boot.

    .venv/bin/python bench/boot.py [--arches x86_64,arm64,sparc64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator import progress
from orchestrator.build.kernel import BuildRequest, build
from orchestrator.guest import protocol as gp
from orchestrator.job.runner import run_job
from orchestrator.job.spec import BootOptions, JobSpec


def raw_boot(argv: list[str]) -> tuple[float, float]:
    start = time.monotonic()
    marker = float("nan")
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if gp.BOOT_OK.encode() in line and marker != marker:
            marker = time.monotonic() - start
    proc.wait()
    return marker, time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arches", default="x86_64,arm64,sparc64")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    progress.set_quiet(True)
    print(
        f"{'arch':8} {'kto->init':>10} {'kto total':>10} {'raw->init':>10} {'raw total':>10} "
        f"{'overhead':>9}"
    )
    for arch in args.arches.split(","):
        # Built once up front (a cache hit after the first run): the timings are boots only.
        kernel = build(BuildRequest(tree="debian-6.1", arch=arch)).dir
        # Default vCPUs: min(2, the machine's maximum), so sparc64 gets 1.
        spec = JobSpec(arch=arch, kernel=str(kernel), command="true", boot=BootOptions(accel="tcg"))
        kto_init, kto_total, raw_init, raw_total = [], [], [], []
        argv: list[str] = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.monotonic()
                res = run_job(spec, Path(tmp) / "job")
                kto_total.append(time.monotonic() - t0)
                assert res.verdict.status == "PASS", res.verdict
                kto_init.append(res.outcome.boot_seconds or float("nan"))
                argv = res.record["qemu"]["argv"]
                # Keep the initrd for the raw run: same bytes, same command line.
                a, b = raw_boot(argv)
                raw_init.append(a)
                raw_total.append(b)
        m = statistics.median
        over = m(kto_total) - m(raw_total)
        print(
            f"{arch:8} {m(kto_init):10.2f} {m(kto_total):10.2f} {m(raw_init):10.2f} "
            f"{m(raw_total):10.2f} {over:+8.2f}s ({100 * over / m(raw_total):+.1f} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
