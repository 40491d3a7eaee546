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
from orchestrator.build.kernel import BuildRequest, build
from orchestrator.build.trees import load_tree_specs
from orchestrator.guest import testspec as workloads
from orchestrator.job.boot_stage import BootRequest, boot

# (workload, metrics section, metric, label)
RATES = (
    ("hotplug", "hotplug", "cycles_per_s", "hotplug cycles/s"),
    ("kvm-mmu-notifier", "kvm-mmu-notifier", "iterations_per_s", "KVM iterations/s"),
    ("rcutorture", "rcutorture", "grace_periods_per_s", "rcutorture GP/s"),
)


def run_one(arch: str, test: str, duration: int, out: Path) -> tuple[str, Any]:
    t = workloads.load_test(test)
    reason = t.skip_reason(arch)
    if reason:
        return "SKIP", reason
    _, tree = load_tree_specs()
    built = build(BuildRequest(tree=tree, arch=arch, fragments=t.fragments_for(arch)))
    req = BootRequest(
        arch=arch,
        kernel=built.dir,
        test=test,
        smp=1 if arch == "sparc64" else 2,
        duration=duration,
        build_record=built.record,
    )
    result = boot(req, out / f"{arch}-{test}")
    return str(result.verdict.status), result.record.get("metrics", {})


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
                if status == "SKIP":
                    print(f"{arch:8} {label:22} SKIP   ({metrics})")
                    continue
                value = metrics.get(section, {}).get(key, "n/a")
                print(f"{arch:8} {label:22} {status:6} {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
