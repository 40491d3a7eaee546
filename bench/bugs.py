#!/usr/bin/env python3
"""The bug store's cost: `kto bugs` on a big store, and a night's ingest against a night.

1. Fills a store with --incidents incidents (default 100,000) the way nights fill it: one
   ingest per night, 3 arches x 20 tests x 2 repeats, 300 distinct problems in 1-3 cells
   each that appear, recur at their own rates, go away for a while and come back (so bugs
   get fixed by silence and come back as "(2)"), printed anywhere in a long console.
   Then times `kto bugs list`, `list --state all` and `show N` of the
   bug with the most incidents, each as a whole `kto` process (start-up included), median
   of --repeat (goal: < 1 s).
2. A night's ingest: a 24-job matrix night (the size of configs/matrix/two-trees.yaml)
   made of copies of a real recorded job (tests/data/runs, with real parser findings, as
   tests/bugs/nights.py builds them), given to record_run as the end of `kto matrix` does
   (ingest, known issues for the reports, bugs.html), into a fresh store and into the big
   one. Compared with the wall time of a recorded two-trees night (README: night 2, 24
   jobs, 3.6 min) (goal: < 2 %).

    .venv/bin/python bench/bugs.py [--incidents 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.bugs.ingest import ingest  # noqa: E402
from orchestrator.bugs.record import record_run, write_dashboard  # noqa: E402
from orchestrator.bugs.store import open_store  # noqa: E402
from orchestrator.records.model import Job, Run, load_run  # noqa: E402
from orchestrator.records.verdict import Status  # noqa: E402

NIGHT_WALL = 3.6 * 60  # README: two-trees night 2 (24 jobs), the recorded matrix wall time
ARCHES = ("x86_64", "arm64", "sparc64")
TESTS = tuple(f"test{n:02d}" for n in range(20))
KINDS = ("warning", "bug", "hung_task", "rcu_stall", "lockdep", "bad_rss", "kasan")


def _problems(n: int, rng: random.Random) -> list[dict[str, object]]:
    """Distinct problems: titles (some with a consequence), cells, rate, when they live."""
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        cells = rng.sample([(a, t) for a in ARCHES for t in TESTS], rng.choice((1, 1, 2, 3)))
        out.append(
            {
                "title": f"{kind.upper()}: problem in func_{i:03d}",
                "extra": f"BUG: consequence of func_{i:03d}" if i % 3 == 0 else None,
                "kind": kind,
                "cells": cells,
                "rate": rng.choice((1.0, 0.9, 0.5, 0.3, 0.1)),
            }
        )
    return out


def _finding(title: object, kind: object, first: int, last: int) -> dict[str, object]:
    return {"title": title, "kind": kind, "first_line": first, "last_line": last, "report": "..."}


def _job(run_dir: Path, arch: str, test: str, r: int, findings: list[dict[str, object]]) -> Job:
    cell = {
        "tree": "debian-6.1",
        "series": "none",
        "config": "default",
        "arch": arch,
        "test": test,
        "matrix": "bench",
    }
    status = Status.FAIL if findings else Status.PASS
    title = str(findings[0]["title"]) if findings else None
    return Job(
        name=f"debian-6.1.none.default.{arch}.{test}-r{r}",
        path=run_dir / f"debian-6.1.none.default.{arch}.{test}-r{r}",
        arch=arch,
        test=test,
        tree="debian-6.1",
        config="default",
        repeat=r,
        status=status,
        raw_status=str(status),
        reason="bench",
        title=title,
        findings=findings,
        record={"cell": cell},
    )


def fill(root: Path, incidents: int, seed: int = 1) -> tuple[int, int, float]:
    """Nights until the store holds `incidents`; returns (nights, incidents, seconds)."""
    rng = random.Random(seed)
    problems = _problems(300, rng)
    by_cell: dict[tuple[str, str], list[dict[str, object]]] = {}
    for p in problems:
        for c in p["cells"]:  # type: ignore[attr-defined]
            by_cell.setdefault(c, []).append(p)
    count, night = 0, 0
    t0 = time.monotonic()
    with open_store(root) as store:
        while count < incidents:
            night += 1
            # Nights of 2024-2025 (the timed nights below are in December 2026).
            day = (datetime.date(2024, 1, 1) + datetime.timedelta(days=night)).strftime("%Y%m%d")
            rid = f"{day}-010000-matrix-bench-{night % 65536:04x}"
            run_dir = root / rid
            # Each problem lives in spells of nights: on for a while, off (fixed), back.
            live = {id(p) for n, p in enumerate(problems) if (night // (5 + n % 23) + n) % 3 == 0}
            jobs = []
            for arch in ARCHES:
                for test in TESTS:
                    for r in range(2):
                        found: list[dict[str, object]] = []
                        for p in by_cell.get((arch, test), []):
                            rate = float(p["rate"])  # type: ignore[arg-type]
                            if id(p) not in live or rng.random() >= rate:
                                continue
                            # Where a stress run prints it: anywhere in a long console, its
                            # consequence (if any) right after it.
                            line = rng.randrange(1, 20_000)
                            found.append(_finding(p["title"], p["kind"], line, line + 30))
                            if p["extra"]:
                                found.append(_finding(p["extra"], "bug", line + 39, line + 39))
                        found.sort(key=lambda f: int(f["first_line"]))  # type: ignore[call-overload]
                        jobs.append(_job(run_dir, arch, test, r, found))
            run = Run(rid, run_dir, {"compare_key": "matrix:bench", "label": "matrix-bench"}, jobs)
            count += ingest(store, run).incidents
        seconds = time.monotonic() - t0
        write_dashboard(store)
    return night, count, seconds


def _kto(root: Path, *args: str) -> float:
    env = {**os.environ, "KTO_RESULTS": str(root)}
    t0 = time.monotonic()
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kto"), *args], env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"kto {' '.join(args)}: exit {res.returncode}\n{res.stderr[-2000:]}")
    return wall


def _night(root: Path, day: int) -> Path:
    from tests.bugs.nights import PANIC, SEED002, SEED003, night, rid

    # two-trees' shape: 2 trees x 3 arches x (rcutorture, hotplug) x 2 repeats = 24 jobs.
    cells: dict[str, list[object]] = {}
    for tree in ("debian-6.1", "debian-6.12"):
        for arch in ARCHES:
            bad = tree == "debian-6.12" and arch != "sparc64"
            cells[f"{tree}.{arch}.hotplug"] = [SEED003, SEED003] if bad else [None, None]
            cells[f"{tree}.{arch}.rcutorture"] = (
                [SEED002, None] if arch == "arm64" else [PANIC if arch == "sparc64" else None, None]
            )
    return night(root, rid(day), cells, matrix="two-trees")  # type: ignore[arg-type]


def _ingest_night(root: Path, day: int) -> float:
    run = load_run(_night(root, day))
    t0 = time.monotonic()
    record_run(run)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kto-bench-bugs-"))
    big = tmp / "big"
    nights, count, seconds = fill(big, args.incidents)
    with open_store(big) as store:
        bugs, top = store.db.execute(
            "SELECT COUNT(*), (SELECT id FROM bugs ORDER BY n_incidents DESC LIMIT 1) FROM bugs"
        ).fetchone()
        jobs = store.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    size = (big / "bugs.sqlite").stat().st_size / 2**20
    print(
        f"store: {count} incidents, {bugs} bugs, {jobs} jobs over {nights} nights, "
        f"{size:.1f} MiB; filled in {seconds:.1f} s ({seconds / nights * 1000:.1f} ms a night)"
    )
    for what in (["bugs", "list"], ["bugs", "list", "--state", "all"], ["bugs", "show", str(top)]):
        walls = [_kto(big, *what) for _ in range(args.repeat)]
        verdict = "ok" if statistics.median(walls) < 1 else "OVER the 1 s goal"
        print(
            f"kto {' '.join(what)}: median {statistics.median(walls):.3f} s "
            f"(min {min(walls):.3f}, max {max(walls):.3f}; goal < 1 s: {verdict})"
        )
    fresh = tmp / "fresh"
    for name, root in (("a fresh store", fresh), (f"the {count}-incident store", big)):
        times = [_ingest_night(root, 20 + n) for n in range(args.repeat)]
        med = statistics.median(times)
        share = med / NIGHT_WALL * 100
        print(
            f"a 24-job night into {name}: median {med * 1000:.0f} ms (ingest, known issues, "
            f"bugs.html) = {share:.3f} % of a {NIGHT_WALL / 60:.1f} min matrix night "
            f"(goal < 2 %: {'ok' if share < 2 else 'OVER'})"
        )
    # The recorded `kto run` of tests/data/runs, as its own end would ingest it (a first use:
    # the two recorded boots before it are imported too), against its recorded wall time.
    recorded = tmp / "recorded"
    shutil.copytree(REPO / "tests" / "data" / "runs", recorded)
    run = load_run(recorded / "20261123-130506-run-x86_64-01bd")
    t0 = time.monotonic()
    record_run(run)
    first = time.monotonic() - t0
    wall = sum((run.record.get("timings") or {}).values())
    print(
        f"{run.id} (recorded: {wall:.1f} s, a cold build): first use, importing the 2 runs "
        f"before it too, {first * 1000:.0f} ms = {first / wall * 100:.3f} %"
    )
    print(f"(stores in {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
