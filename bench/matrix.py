#!/usr/bin/env python3
"""Matrix cost on one host: wall time vs the CPU its jobs needed, and kto's share per job.

Runs `kto matrix` on a small matrix of cached kernels (debian-6.1, default config; --test on
--arches, --repeats each: boots only, so the CPU is the guests'. The default test keeps
its vCPUs busy, rcutorture for 10 s: the budget counts a guest's vCPUs as cores, and a
guest idling in smoke leaves them idle), then reads the pool's
task records (<run>/.matrix/tasks.json: each task's wait, wall and CPU time, QEMU included)
and each job's job.json. Prints:

- wall / (sum of task CPU / cores): how well the budget keeps the cores busy (goal <= 1.15);
- scheduling delay per job: ready (its kernel built) to started, beyond waiting for cores;
- per-job overhead over the bare boot: the task's wall time vs the time its QEMU ran
  (job.json durations.guest; goal <= 5 %).

    .venv/bin/python bench/matrix.py [--arches x86_64,arm64,sparc64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arches", default="x86_64,arm64,sparc64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--test", default="{name: rcutorture, duration: 10}", help="a tests: entry")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kto-bench-matrix-"))
    spec = tmp / "bench.yaml"
    spec.write_text(
        f"name: bench\ntrees: [debian-6.1]\narches: [{args.arches}]\ntests: [{args.test}]\n"
        f"repeats: {args.repeats}\n"
    )
    env = {**os.environ, "KTO_RESULTS": str(tmp / "results")}
    kto = [sys.executable, "-m", "orchestrator.cli", "matrix", str(spec), "--confirm", "0"]
    # First run: builds (cache hits once the kernels exist); the measured run comes second.
    subprocess.run(kto, cwd=REPO, env=env, capture_output=True, check=False)
    t0 = time.monotonic()
    res = subprocess.run(kto, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if res.returncode not in (0, 1):
        print(res.stdout[-2000:], res.stderr[-3000:])
        return 1
    run = (tmp / "results" / "latest").resolve()
    rounds = json.loads((run / ".matrix" / "tasks.json").read_text())
    tasks = [t for r in rounds for t in r["tasks"]]
    cores = rounds[-1]["cores"]
    cpu = sum(t["cpu_s"] for t in tasks)
    boots = [t for t in tasks if not t["build"]]
    over, ratios, waits = [], [], []
    for t in boots:
        job = json.loads((run / t["key"] / "job.json").read_text())
        guest = job["durations"]["guest"]
        over.append(t["wall_s"] - guest)
        ratios.append(t["wall_s"] / guest)
        waits.append(t["wait_s"])
    m = statistics.median
    print(f"{len(boots)} jobs ({args.arches} x {args.test} x {args.repeats}), {cores} cores")
    print(
        f"wall {wall:.1f} s; task CPU {cpu:.1f} s; CPU/cores {cpu / cores:.1f} s; "
        f"wall / (CPU/cores) = {wall / (cpu / cores):.2f}x (goal <= 1.15)"
    )
    print(
        f"per job: overhead over its QEMU run median {m(over) * 1000:.0f} ms "
        f"(max {max(over) * 1000:.0f}), ratio median {m(ratios):.3f}x (goal <= 1.05); "
        f"ready-to-start delay median {m(waits):.2f} s (max {max(waits):.2f}, includes "
        "waiting for free cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
