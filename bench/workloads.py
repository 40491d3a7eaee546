#!/usr/bin/env python3
"""Workload rates per arch: hotplug cycles/s, KVM iterations/s, rcutorture grace periods/s.

Runs each workload once per arch through kto's own build + boot (the arch's stress kernel,
a cache hit after the first build) and prints the metrics kto stored in job.json. Workloads
an arch cannot run are shown with their SKIP reason.

    .venv/bin/python bench/workloads.py [--arches x86_64,arm64,sparc64] [--duration 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator import progress
from orchestrator.job.runner import run_job
from orchestrator.records.spec import JobSpec

# (workload, metrics section, metric, label)
RATES = (
    ("hotplug", "hotplug", "cycles_per_s", "hotplug cycles/s"),
    ("kvm-mmu-notifier", "kvm-mmu-notifier", "iterations_per_s", "KVM iterations/s"),
    ("rcutorture", "rcutorture", "grace_periods_per_s", "rcutorture GP/s"),
)


def run_one(arch: str, test: str, duration: int, out: Path) -> tuple[str, Any]:
    """One job as `kto run --test TEST --arch ARCH --duration S` runs it: the default tree plus
    the test's fragments (a cached build), default vCPUs (sparc64: 1), a SKIP decided before
    anything is built."""
    spec = JobSpec(arch=arch, test=test, duration=duration)
    result = run_job(spec, out / spec.name)
    status = str(result.verdict.status)
    if status == "SKIP" or "metrics" not in result.record:  # no rates: say why
        return status, result.verdict.reason
    return status, result.record["metrics"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arches", default="x86_64,arm64,sparc64")
    ap.add_argument("--duration", type=int, default=20, help="seconds per workload")
    args = ap.parse_args()
    progress.set_quiet(True)
    print(f"{'arch':8} {'workload':22} {'status':6} rate")
    with tempfile.TemporaryDirectory(prefix="kto-bench-") as tmp:
        for arch in args.arches.split(","):
            for test, section, key, label in RATES:
                status, metrics = run_one(arch, test, args.duration, Path(tmp))
                if not isinstance(metrics, dict):
                    print(f"{arch:8} {label:22} {status:6} ({metrics})", flush=True)
                    continue
                value = metrics.get(section, {}).get(key, "n/a")
                print(f"{arch:8} {label:22} {status:6} {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
