#!/usr/bin/env python3
"""Bisect accuracy on a simulated history: kto's flake-aware search vs two baselines.

No kernel: a fake step over N commits with a chosen culprit, a reproduction rate p (the
target finding shows in a run at or after the culprit with probability p) and a rate u of
unrelated crashes (any commit, any run). For each setting, over T trials with a random
culprit: accuracy (culprit found) and mean runs for

- kto: orchestrator.bisect.search.find_culprit (confidence 0.95; unrelated findings vote
  neither way);
- plain: one run per step, git-bisect style (any crash is "bad");
- fixed-10: syzkaller-style, 10 runs per step, "bad" if any run crashed.

    .venv/bin/python bench/bisect_sim.py [--trials 1000] [--commits 64]

(Not bench/bisect.py: run as a script, that name would shadow the stdlib module.)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.bisect.search import Outcome, find_culprit


def fake_step(culprit: int, p: float, u: float, rng: random.Random) -> Callable[[int], Outcome]:
    def run(i: int) -> Outcome:
        if rng.random() < u:
            return Outcome(unrelated=True)
        return Outcome(bad=i >= culprit and rng.random() < p)

    return run


def classic(n: int, run: Callable[[int], Outcome], per_step: int) -> tuple[int, int]:
    """Binary search, `per_step` runs a step, a step is bad if any run crashed at all."""
    good, bad, runs = 0, n, 0
    while bad - good > 1:
        mid = (good + bad) // 2
        crashed = False
        for _ in range(per_step):
            runs += 1
            o = run(mid)
            if o.bad or o.unrelated:
                crashed = True
                break
        if crashed:
            bad = mid
        else:
            good = mid
    return bad, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n = args.commits
    print(f"{n} commits, {args.trials} trials per setting; accuracy / mean runs")
    print(
        f"{'p':>5} {'u':>5}  {'kto':>15}  {'plain':>15}  {'fixed-10':>15}  kto commits built "
        "between good and bad (mean/max)"
    )
    for p, u in ((1.0, 0.0), (0.5, 0.0), (0.2, 0.0), (1.0, 0.05), (0.5, 0.05)):
        rng = random.Random(args.seed)
        scores: dict[str, list[tuple[bool, int]]] = {"kto": [], "plain": [], "fixed": []}
        builds: dict[str, list[int]] = {"kto": []}
        for _ in range(args.trials):
            culprit = rng.randint(1, n)
            res = find_culprit(n, fake_step(culprit, p, u, rng), max_runs=400)
            scores["kto"].append((res.culprit == culprit, res.runs))
            builds["kto"].append(len({i for i, _ in res.steps} - {0, n}))
            for name, per in (("plain", 1), ("fixed", 10)):
                got, runs = classic(n, fake_step(culprit, p, u, rng), per)
                scores[name].append((got == culprit, runs))

        def cell(rows: list[tuple[bool, int]]) -> str:
            acc = sum(ok for ok, _ in rows) / len(rows)
            return f"{acc:6.1%} / {statistics.mean(r for _, r in rows):5.1f}"

        print(
            f"{p:5.2f} {u:5.2f}  {cell(scores['kto']):>15}  {cell(scores['plain']):>15}  "
            f"{cell(scores['fixed']):>15}  "
            f"{statistics.mean(builds['kto']):.1f}/{max(builds['kto'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
