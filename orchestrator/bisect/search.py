"""Flake-aware culprit search: a posterior over which commit introduced a finding.

Commits 0..n, 0 known good, n known bad; the culprit is the first bad commit k in 1..n. A
run at commit i shows the target finding with probability p if i >= k (the reproduction
rate, unknown) and eps if i < k (a false match: small, since an unrelated finding votes
neither way). Each run multiplies the posterior by its likelihood; p is re-estimated after
the model integrates p out over a grid (a flat prior, plus a quarter of the mass on "always
reproduces"), so a few clean runs are strong evidence only once the data say p is high.

While every run agrees with a deterministic bug, the next commit is the middle of the
bracket (plain bisection: log2 builds). Once a run contradicts that, the next commit is the
one whose run is expected to leave the least entropy in the culprit posterior: with a flaky
bug a "bad" run is near-certain evidence and a clean one weak, so the most informative
probe sits below the posterior's median (for p = 0.5, near its 40 % point). The search stops
when one commit holds `confidence` of the mass or the run budget is spent. Pure: no git, no
kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EPS = 0.002  # P(target seen | commit before the culprit): a false match
# The reproduction rate's prior on a grid: flat over 5..95 %, plus a deterministic bug (a
# kernel bug under a fixed workload often reproduces every time) with a quarter of the
# mass (a third made a few clean runs of a 50 % bug too convincing: 94 % right).
P_GRID = (*(x / 20 for x in range(1, 20)), 0.999)
P_WEIGHTS = (*([3 / 4 / 19] * 19), 1 / 4)


@dataclass
class Evidence:
    bad: int = 0  # runs that showed the target
    runs: int = 0  # runs that gave a verdict on the target (unrelated crashes excluded)

    def __str__(self) -> str:
        return f"{self.bad}:{self.runs}"


@dataclass
class Search:
    n: int  # commits 0..n: 0 good, n bad
    eps: float = EPS
    evidence: dict[int, Evidence] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)  # commits that cannot be tested
    _cache: tuple[Any, list[list[float]]] | None = field(default=None, repr=False)

    def record(self, i: int, bad: bool) -> None:
        e = self.evidence.setdefault(i, Evidence())
        e.runs += 1
        e.bad += int(bad)

    def skip(self, i: int) -> None:
        self.skipped.add(i)

    # -- the model ---------------------------------------------------------------------------
    def _joint(self) -> list[list[float]]:
        """log P(data, culprit k, rate p) for k in 0..n, p on P_GRID: [k][j].

        For a culprit k, runs at commits >= k count with p and runs before it with eps;
        suffix sums over commits make one pass per grid value."""
        bad = [0] * (self.n + 2)
        good = [0] * (self.n + 2)
        for i, e in self.evidence.items():
            bad[i] += e.bad
            good[i] += e.runs - e.bad
        le, l1e = math.log(self.eps), math.log(1 - self.eps)
        rows = [[-math.inf] * len(P_GRID) for _ in range(self.n + 1)]
        for j, (q, w) in enumerate(zip(P_GRID, P_WEIGHTS, strict=True)):
            lq, l1q = math.log(q), math.log(1 - q)
            # before[k]: runs at commits < k (eps); after[k]: runs at commits >= k (p)
            after = [0.0] * (self.n + 2)
            for i in range(self.n, -1, -1):
                after[i] = after[i + 1] + bad[i] * lq + good[i] * l1q
            before = 0.0
            for k in range(self.n + 1):
                if k >= 1:
                    rows[k][j] = before + after[k] + math.log(w)
                before += bad[k] * le + good[k] * l1e
        return rows

    def _normalised(self) -> list[list[float]]:
        key = (tuple(sorted((i, e.bad, e.runs) for i, e in self.evidence.items())), self.n)
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        joint = self._joint()
        top = max(max(r) for r in joint)
        w = [[math.exp(v - top) if v > -math.inf else 0.0 for v in r] for r in joint]
        total = sum(sum(r) for r in w)
        out = [[v / total for v in r] for r in w]
        self._cache = (key, out)
        return out

    def posterior(self) -> list[float]:
        """P(culprit == k) for k in 0..n, the reproduction rate integrated out (index 0 is
        always 0: commit 0 is good)."""
        return [sum(r) for r in self._normalised()]

    def p(self) -> float:
        """The posterior mean of the reproduction rate."""
        w = self._normalised()
        return sum(q * sum(r[j] for r in w) for j, q in enumerate(P_GRID))

    # -- the search --------------------------------------------------------------------------
    def best(self) -> tuple[int, float]:
        post = self.posterior()
        k = max(range(1, self.n + 1), key=lambda i: post[i])
        return k, post[k]

    def bracket(self) -> tuple[int, int] | None:
        """(last good, first bad) while every run so far agrees with a deterministic bug:
        each tested commit all good or all bad, every good one before every bad one. None
        once a run contradicts that (a flaky reproduction, or a false match)."""
        good = [i for i, e in self.evidence.items() if e.runs and not e.bad]
        bad = [i for i, e in self.evidence.items() if e.bad]
        if any(0 < e.bad < e.runs for e in self.evidence.values()):
            return None
        lo, hi = max(good, default=0), min(bad, default=self.n)
        return (lo, hi) if lo < hi else None

    def next_commit(self) -> int:
        """The commit to run next, among those that can be tested.

        While the runs agree with a deterministic bug, the middle of the bracket (last good,
        first bad), and once it is one commit wide the end whose P(culprit <= i) is closest
        to 1/2; both ends are built already, so a deterministic bug costs ceil(log2 n)
        builds between good and bad and the confirming runs are boots of cached kernels.
        After a contradicting run, the most informative commit (most_informative)."""
        post = self.posterior()
        cum = [0.0] * (self.n + 1)
        for i in range(1, self.n + 1):
            cum[i] = cum[i - 1] + post[i]
        if (b := self.bracket()) is not None:
            lo, hi = b
            if self.evidence.get(self.n, Evidence()).runs < 2:
                return self.n  # one more run of bad first: a flaky bug often shows itself
            inside = [i for i in range(lo + 1, hi) if i not in self.skipped]
            if inside:  # the middle of the bracket: plain bisection
                return min(inside, key=lambda i: abs(2 * i - lo - hi))
            ends = [i for i in (lo, hi) if i not in self.skipped]
            return min(ends or [self.n], key=lambda i: abs(cum[i] - 0.5))
        candidates = {i for i in range(1, self.n) if i not in self.skipped} or {self.n}
        return self.most_informative(candidates)

    def most_informative(self, candidates: set[int]) -> int:
        """The candidate whose run minimises the expected entropy of the culprit posterior.

        A run at i multiplies the mass of culprit k by p (bad) or 1 - p (clean) when k <= i,
        by eps or 1 - eps when k > i; prefix sums over k give every candidate's two outcomes
        in one pass (bench/bisect_sim.py: at p = 0.5, 34 runs where the median rule took 36).
        """
        w = self._normalised()
        hit = [sum(r[j] * q for j, q in enumerate(P_GRID)) for r in w]  # P(k, bad run | k <= i)
        mass = [sum(r) for r in w]

        def xlx(x: float) -> float:
            return x * math.log(x) if x > 0 else 0.0

        e, all_xlx = self.eps, sum(xlx(m) for m in mass)
        s_hit = s_mass = s_hit_xlx = s_miss_xlx = s_mass_xlx = 0.0
        best: tuple[float, int] | None = None
        for i in range(self.n + 1):
            s_hit += hit[i]
            s_mass += mass[i]
            s_hit_xlx += xlx(hit[i])
            s_miss_xlx += xlx(mass[i] - hit[i])
            s_mass_xlx += xlx(mass[i])
            if i not in candidates:
                continue
            rest, rest_xlx = max(0.0, 1 - s_mass), all_xlx - s_mass_xlx
            # per outcome, Z * H(posterior | outcome) = Z log Z - sum of m log m
            bad = (s_hit + e * rest, s_hit_xlx + xlx(e) * rest + e * rest_xlx)
            f = 1 - e
            clean = (s_mass - s_hit + f * rest, s_miss_xlx + xlx(f) * rest + f * rest_xlx)
            expected = 0.0
            for z, sum_xlx in (bad, clean):
                expected += xlx(z) - sum_xlx
            if best is None or expected < best[0]:
                best = (expected, i)
        return best[1] if best else self.n

    def next_commits(self, k: int) -> list[int]:
        """k commits to run at once (parallel probes): the bracket cut into k + 1 equal
        parts while the runs agree with a deterministic bug, else the posterior's
        k-quantiles; fewer when there are not k distinct candidates."""
        if k <= 1:
            return [self.next_commit()]
        if (b := self.bracket()) is not None:
            lo, hi = b
            inside = [i for i in range(lo + 1, hi) if i not in self.skipped]
            if len(inside) <= k:
                return inside or [self.next_commit()]
            return sorted({inside[(len(inside) * j) // (k + 1)] for j in range(1, k + 1)})
        post = self.posterior()
        cum, acc = [], 0.0
        for i in range(1, self.n + 1):
            acc += post[i]
            cum.append((i, acc))
        picks: list[int] = []
        for j in range(1, k + 1):
            q = j / (k + 1)
            options = [i for i, c in cum if i < self.n and i not in self.skipped and i not in picks]
            if options:
                picks.append(min(options, key=lambda i: abs(dict(cum)[i] - q)))
        return sorted(picks) or [self.next_commit()]

    def done(self, confidence: float) -> bool:
        return self.best()[1] >= confidence


@dataclass
class Outcome:
    bad: bool = False  # the target finding appeared
    skip: bool = False  # the commit cannot be judged (build broken, unrelated boot failure)
    unrelated: bool = False  # another finding: votes neither way


@dataclass
class Result:
    culprit: int | None  # None: refused (bad does not reproduce, or good does)
    confidence: float
    runs: int
    steps: list[tuple[int, Outcome]]
    reason: str = ""
    search: Search | None = None


def runs_to_clear(p: float, confidence: float) -> int:
    """Clean runs needed before "the target does not appear here" holds at `confidence`."""
    return max(1, math.ceil(math.log(1 - confidence) / math.log(max(1e-9, 1 - p))))


def find_culprit(
    n: int,
    run: Callable[[int], Outcome],
    confidence: float = 0.95,
    max_runs: int = 200,
    confirm_bad_runs: int = 10,
) -> Result:
    """Confirm the range (bad reproduces, good does not, repeats sized by the model), then
    run the commit that best halves the posterior until one commit holds `confidence`."""
    s = Search(n)
    steps: list[tuple[int, Outcome]] = []

    def go(i: int) -> Outcome:
        o = run(i)
        steps.append((i, o))
        if o.skip:
            s.skip(i)
        elif not o.unrelated:
            s.record(i, o.bad)
        return o

    while s.evidence.get(n, Evidence()).bad == 0:
        if len(steps) >= confirm_bad_runs or go(n).skip:
            return Result(None, 0.0, len(steps), steps, "the bad commit does not reproduce", s)
    while True:
        clean = s.evidence.get(0, Evidence())
        if clean.bad:
            return Result(None, 0.0, len(steps), steps, "the good commit shows the target", s)
        if clean.runs >= runs_to_clear(s.p(), confidence):
            break
        if go(0).skip:
            return Result(None, 0.0, len(steps), steps, "the good commit cannot be tested", s)
    while not s.done(confidence) and len(steps) < max_runs:
        if all(i in s.skipped for i in range(1, n)):
            break
        go(s.next_commit())
    k, mass = s.best()
    why = "" if mass >= confidence else f"run budget spent at {mass:.0%} confidence"
    return Result(k, mass, len(steps), steps, why, s)
