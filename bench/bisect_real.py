#!/usr/bin/env python3
"""Real bisects with real builds and boots: cost and wall time, one probe vs several at once.

The history of tests/integration/test_bisect_real.py (its _history: commits on top of
debian-6.1, the CULPRIT-th of which breaks CPU offline), bisected by `kto bisect` itself
(a subprocess of the CLI, with its defaults for --confidence, --max-runs and, but for
par2/dask, --parallel) with the hotplug test on arm64, as the test does (--duration 2: the
WARN comes on the first offline):

- deterministic, one probe at a time;
- deterministic, 2 probes at once (the local pool);
- deterministic, on a loopback Dask cluster (a scheduler and two workers started here);
- flaky (the culprit warns in about half the boots), one probe at a time.

Prints culprit, confidence and the cost line of each (steps, runs, boots, kernels
compiled, wall). Kernels are cached after the first variant, so the first one also pays
for the builds; run it twice for boot-only numbers. It builds and boots: run it alone,

    flock /tmp/kto-heavy.lock .venv/bin/python bench/bisect_real.py [--variants seq,par2,dask,flaky]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.test_bisect_real import CULPRIT, _history  # noqa: E402
from tests.loopback_dask import loopback_cluster  # noqa: E402


def bisect(good: str, bad: str, *extra: str) -> dict[str, Any]:
    results = Path(tempfile.mkdtemp(prefix="kto-bench-bisect-"))
    env = {**os.environ, "KTO_RESULTS": str(results)}
    argv = [sys.executable, "-m", "orchestrator.cli", "bisect", "--tree", "debian-6.1"]
    argv += ["--good", good, "--bad", bad, "--arch", "arm64", "--test", "hotplug"]
    t0 = time.monotonic()
    res = subprocess.run(
        [*argv, "--duration", "2", *extra], cwd=REPO, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - t0
    m = re.search(r"first bad commit \(([\d.]+)% confidence\): (\w+)", res.stdout)
    doc = json.loads(((results / "latest").resolve() / "run.json").read_text())
    return {
        "exit": res.returncode,
        "culprit": m.group(2) if m else None,
        "confidence": float(m.group(1)) if m else 0.0,
        "cost": doc.get("bisect_cost") or {},
        "wall": wall,
        "stdout": res.stdout,
        "stderr": res.stderr[-4000:],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="seq,par2,dask,flaky")
    args = ap.parse_args()
    rows = []
    for variant in args.variants.split(","):
        series = "broken-offline-flaky" if variant == "flaky" else "broken-offline-warn"
        base, commits = _history(series)
        if variant == "dask":
            with loopback_cluster(2) as (address, _workers):
                r = bisect(base, commits[-1], "--scheduler", address, "--parallel", "2")
        else:
            r = bisect(base, commits[-1], *(["--parallel", "2"] if variant == "par2" else []))
        right = r["culprit"] == commits[CULPRIT - 1][:12]
        rows.append((variant, r, right))
        print(r["stdout"], r["stderr"] if r["exit"] not in (0, 1) else "", flush=True)
    print(f"{'variant':8} {'exit':>4} {'right':>5} {'conf':>6} {'steps':>5} {'runs':>4} "
          f"{'boots':>5} {'built':>5} {'compile':>8} {'wall':>7}")  # fmt: skip
    for variant, r, right in rows:
        c = r["cost"]
        assert isinstance(c, dict)
        print(
            f"{variant:8} {r['exit']:>4} {right!s:>5} {r['confidence']:5.1f}% "
            f"{c.get('steps', 0):>5} {c.get('runs', 0):>4} {c.get('boots', 0):>5} "
            f"{c.get('compiled', 0):>5} {c.get('compile_s', 0):7.0f}s {float(r['wall']):6.0f}s"
        )
    return 0 if all(right for _, _, right in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
