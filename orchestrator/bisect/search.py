"""Flake-aware culprit search: a posterior over which commit introduced a finding, and the
one loop that drives it (the `kto bisect` driver and bench/bisect_sim.py both run it).

Commits 0..n, 0 said good, n bad; the culprit is the first bad commit k. k = 0 is a
hypothesis too: "the target is there at good already" (not a regression of this range),
with the prior of one commit. A run at commit i shows the target finding with probability
p if i >= k (the reproduction rate, unknown) and eps if i < k (a false match: small, since
an unrelated finding votes neither way). Each run multiplies the posterior by its
likelihood; p is integrated out over a grid (a flat prior, plus a quarter of the mass on
"always reproduces"), so a few clean runs are strong evidence only once the data say p is
high. Because k = 0 is in the model, every clean run below the culprit also clears good:
good is run only when the posterior needs it (a culprit next to good), not a fixed number
of times up front.

While every run agrees with a deterministic bug, the next commit is the middle of the
bracket (plain bisection: log2 builds). Once a run contradicts that, the next commit is the
one whose run is expected to leave the least entropy in the culprit posterior: with a flaky
bug a "bad" run is near-certain evidence and a clean one weak, so the most informative
probe sits below the posterior's median (for p = 0.5, near its 40 % point). The search stops
when one commit holds `confidence` of the mass or the run budget is spent. Pure: no git, no
kernels; `run_search` gets the runs through a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

EPS = 0.002  # P(target seen | commit before the culprit): a false match
# The reproduction rate's prior on a grid: flat over 5..95 %, plus a deterministic bug (a
# kernel bug under a fixed workload often reproduces every time) with a quarter of the
# mass (a third made a few clean runs of a 50 % bug too convincing: 94 % right).
P_GRID = (*(x / 20 for x in range(1, 20)), 0.999)
P_WEIGHTS = (*([3 / 4 / 19] * 19), 1 / 4)
# Runs of bad without the target before the range is refused: a quarter of the budget, at
# least 10 (a 20 % bug stays hidden in 10 runs once in 9, in 20 runs once in 87).
CONFIRM_BAD_RUNS = 10
# A commit already built is run again instead of the best new one when its run is expected
# to reduce the posterior's entropy by at least this share of what the best run would.
PREFER_BUILT = 0.7


@dataclass(frozen=True)
class Outcome:
    """What one run at one commit said about the target."""

    bad: bool = False  # the target finding appeared
    skip: bool = False  # the commit cannot be judged (build broken, unrelated boot failure)
    unrelated: bool = False  # another finding: votes neither way
    infra: bool = False  # no judgement of the kernel (QEMU died): neither way, run again once

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        # bisect.json of an older kto has no "infra": it was an unrelated-looking run then
        return cls(**{f.name: bool(d.get(f.name)) for f in fields(cls)})

    @property
    def votes(self) -> bool:
        """A verdict on the target: bad or clean (not a skip, another finding or infra)."""
        return not (self.skip or self.unrelated or self.infra)

    def word(self) -> str:
        if self.skip:
            return "skip"
        if self.infra:
            return "infra"
        return "bad" if self.bad else "unrelated" if self.unrelated else "good"


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
    history: list[tuple[int, Outcome]] = field(default_factory=list)  # every run, in order
    _cache: tuple[Any, list[list[float]]] | None = field(default=None, repr=False)

    def add(self, i: int, o: Outcome) -> None:
        """Count one run. An infrastructure error right after another at the same commit
        makes it a skip: it was retried once and the retry said nothing either."""
        last = next((x for j, x in reversed(self.history) if j == i), None)
        self.history.append((i, o))
        if o.skip or (o.infra and last is not None and last.infra):
            self.skipped.add(i)
        elif o.votes:
            e = self.evidence.setdefault(i, Evidence())
            e.runs += 1
            e.bad += int(o.bad)

    @property
    def runs(self) -> int:
        return len(self.history)

    def runs_at(self, i: int) -> int:
        return sum(1 for j, _ in self.history if j == i)

    def pending_retry(self) -> list[int]:
        """Commits whose last run was an infrastructure error not yet retried."""
        last: dict[int, Outcome] = {}
        for i, o in self.history:
            last[i] = o
        return sorted(i for i, o in last.items() if o.infra and i not in self.skipped)

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
        """P(culprit == k) for k in 0..n, the reproduction rate integrated out; k = 0: the
        target is at good already."""
        return [sum(r) for r in self._normalised()]

    def p(self) -> float:
        """The posterior mean of the reproduction rate."""
        w = self._normalised()
        return sum(q * sum(r[j] for r in w) for j, q in enumerate(P_GRID))

    # -- the search --------------------------------------------------------------------------
    def best(self) -> tuple[int, float]:
        """The likeliest culprit and its mass (0: at good already)."""
        post = self.posterior()
        k = max(range(self.n + 1), key=lambda i: (post[i], i))
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
        to 1/2; both ends are built already (or it is good), so a deterministic bug costs
        ceil(log2 n) builds between good and bad and the confirming runs are boots of cached
        kernels. After a contradicting run, the most informative commit."""
        post = self.posterior()
        cum = [post[0]] * (self.n + 1)
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
        candidates = {i for i in range(self.n) if i not in self.skipped} or {self.n}
        return self.most_informative(candidates)

    def most_informative(self, candidates: set[int]) -> int:
        """The candidate whose run is expected to leave the least entropy in the culprit
        posterior, or one already built when its run is expected to teach at least
        PREFER_BUILT of what the best one would: a build costs minutes, a boot of a cached
        kernel seconds (bench/bisect_sim.py at p = 0.2: 8 commits built where the pure
        rule built 20, the same accuracy, a run or two more).

        A run at i multiplies the mass of culprit k by p (bad) or 1 - p (clean) when k <= i,
        by eps or 1 - eps when k > i; prefix sums over k give every candidate's two outcomes
        in one pass.
        """
        w = self._normalised()
        hit = [sum(r[j] * q for j, q in enumerate(P_GRID)) for r in w]  # P(k, bad run | k <= i)
        mass = [sum(r) for r in w]

        def xlx(x: float) -> float:
            return x * math.log(x) if x > 0 else 0.0

        e, all_xlx = self.eps, sum(xlx(m) for m in mass)
        s_hit = s_mass = s_hit_xlx = s_miss_xlx = s_mass_xlx = 0.0
        left: dict[int, float] = {}  # candidate: the entropy expected after its run
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
            left[i] = sum(xlx(z) - sum_xlx for z, sum_xlx in (bad, clean))
        if not left:
            return self.n
        top = min(left, key=lambda i: (left[i], i))
        built = {i for i, _ in self.history} & left.keys()
        if built:
            near = min(built, key=lambda i: (left[i], i))
            now = -all_xlx  # the entropy of the posterior as it is
            if now - left[near] >= PREFER_BUILT * (now - left[top]):
                return near
        return top

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
        cum, acc = {}, 0.0
        for i in range(self.n + 1):
            acc += post[i]
            cum[i] = acc
        picks: list[int] = []
        for j in range(1, k + 1):
            q = j / (k + 1)
            options = [i for i in cum if i < self.n and i not in self.skipped and i not in picks]
            if options:
                picks.append(min(options, key=lambda i: abs(cum[i] - q)))
        return sorted(picks) or [self.next_commit()]

    def done(self, confidence: float) -> bool:
        return self.best()[1] >= confidence


@dataclass
class Result:
    culprit: int | None  # None: refused (bad does not reproduce, or good does)
    confidence: float
    runs: int
    steps: list[tuple[int, Outcome]]
    reason: str = ""
    search: Search | None = None


# Probe: run each picked commit once (at the same time, or one after another) and say what
# each run showed: (commit, outcome) per run, in the order they are to be counted.
Probe = Callable[[list[int]], list[tuple[int, Outcome]]]


def runs_to_clear(p: float, confidence: float) -> int:
    """Clean runs needed before "the target does not appear here" holds at `confidence`."""
    return max(1, math.ceil(math.log(1 - confidence) / math.log(max(1e-9, 1 - p))))


def _refusal(s: Search, confirm_bad_runs: int) -> str:
    n = s.n
    if n in s.skipped:
        return "the bad commit cannot be tested (build or boot broken)"
    if 0 in s.skipped:
        return "the good commit cannot be tested (build or boot broken)"
    if s.evidence.get(0, Evidence()).bad:
        return "the good commit shows the target too: not a regression here"
    if not s.evidence.get(n, Evidence()).bad and s.runs_at(n) >= confirm_bad_runs:
        return f"the bad commit does not show the target in {confirm_bad_runs} runs"
    return ""


def _nothing_to_learn(s: Search, confidence: float) -> bool:
    """Every commit between good and bad is skipped and good is cleared: no run can move
    the culprit's mass any more (the answer is a range of skipped commits and bad)."""
    return all(i in s.skipped for i in range(1, s.n)) and s.posterior()[0] < 1 - confidence


def run_search(
    s: Search,
    probe: Probe,
    confidence: float,
    max_runs: int,
    parallel: int = 1,
    confirm_bad_runs: int | None = None,
    after: Callable[[Search], None] | None = None,
) -> Result:
    """The bisection: from whatever `s` already holds (a resumed run), ask `probe` for runs
    until one commit holds `confidence` or `max_runs` runs are spent.

    Bad first, until it shows the target (the target may be defined by that run). An
    infrastructure error is retried once before the search moves on; a second one in a row
    is a skip. Then `parallel` commits a round, picked by the posterior. Good is run when
    the posterior asks for it (k = 0 is a hypothesis), and any target seen there refuses
    the range. `after` sees the search after each round (progress lines)."""
    n = s.n
    confirm = confirm_bad_runs or max(CONFIRM_BAD_RUNS, max_runs // 4)
    while True:
        if why := _refusal(s, confirm):
            return Result(None, 0.0, s.runs, list(s.history), why, s)
        if s.runs >= max_runs:
            break
        if retry := s.pending_retry():
            picks = retry
        elif not s.evidence.get(n, Evidence()).bad:
            picks = [n]
        elif s.done(confidence) or _nothing_to_learn(s, confidence):
            break
        else:
            picks = s.next_commits(max(1, min(parallel, max_runs - s.runs)))
        for i, o in probe(picks):
            s.add(i, o)
        if after:
            after(s)
    if not s.evidence.get(n, Evidence()).bad:
        why = f"the bad commit does not show the target in {s.runs_at(n)} runs (budget spent)"
        return Result(None, 0.0, s.runs, list(s.history), why, s)
    k, mass = s.best()
    if k == 0:
        why = f"the target is likelier at good already ({mass:.0%}) than in the range"
        return Result(None, mass, s.runs, list(s.history), why, s)
    why = "" if mass >= confidence else f"run budget spent at {mass:.0%} confidence"
    return Result(k, mass, s.runs, list(s.history), why, s)


def find_culprit(
    n: int,
    run: Callable[[int], Outcome],
    confidence: float = 0.95,
    max_runs: int = 200,
    parallel: int = 1,
) -> Result:
    """run_search over a function of one run (bench/bisect_sim.py, tests): a round's picks
    run one after another."""
    return run_search(Search(n), lambda picks: [(i, run(i)) for i in picks], confidence,
                      max_runs, parallel)  # fmt: skip
