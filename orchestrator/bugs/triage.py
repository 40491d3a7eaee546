"""Triage numbers from a bug's fail:runs: its reproduction rate with a Wilson interval, the
words a person reads ("flaky (≈30 %)"), and how many runs it takes to see it (pure).

Wilson's score interval rather than the normal one: bug counts are small and often 0 or n,
where p̂ ± z·sqrt(p̂(1-p̂)/n) collapses to a zero-width interval ("3:3" would claim 100 %
with certainty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
SEE_IT = 0.95  # "runs to see it": the chance of at least one failure we size runs for


@dataclass(frozen=True)
class Rate:
    fails: int
    runs: int

    @property
    def estimate(self) -> float:
        return self.fails / self.runs if self.runs else 0.0

    def interval(self, z: float = Z95) -> tuple[float, float]:
        """Wilson's score interval of the reproduction rate; (0, 1) when nothing ran."""
        n, f = self.runs, self.fails
        if n == 0:
            return 0.0, 1.0
        p = f / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        # Exact at the ends: 0:n has no lower margin and n:n no upper one.
        lo = 0.0 if f == 0 else max(0.0, centre - half)
        hi = 1.0 if f == n else min(1.0, centre + half)
        return lo, hi

    def runs_to_see(self, chance: float = SEE_IT) -> int | None:
        """Runs needed to see the bug at least once with `chance`, at the cautious end of
        its rate (the interval's lower bound): how many quiet runs say "gone", and how many
        runs a confirmation or bisect step needs. None when it never reproduced."""
        lo = self.interval()[0]
        if lo <= 0.0:
            return None
        if lo >= 1.0:
            return 1
        return max(1, math.ceil(math.log(1 - chance) / math.log(1 - lo)))

    def chance_seen(self, n: int) -> float:
        """The chance that n more runs show the bug at least once, its rate unknown but
        for this fail:runs: 1 - E[(1-p)^n] with p ~ Beta(1 + fails, 1 + runs - fails)
        (a flat prior). Unlike the point estimate it does not claim 3:3 is a sure thing
        (one clean run after 3:3 is 80 %, not 100 %), and with many runs it comes to it."""
        a, b = 1 + self.fails, 1 + self.runs - self.fails
        miss = math.lgamma(b + n) + math.lgamma(a + b) - math.lgamma(b) - math.lgamma(a + b + n)
        return 1.0 - math.exp(miss)

    def runs_to_clear(self, confidence: float, limit: int) -> int:
        """The fewest clean runs after which "it would have shown" holds at `confidence`
        (chance_seen), at most `limit`: how many runs with a fix say it is gone."""
        for n in range(1, limit + 1):
            if self.chance_seen(n) >= confidence:
                return n
        return limit

    @property
    def mean(self) -> float:
        """The rate's posterior mean under the same flat prior (3:3 is 80 %)."""
        return (1 + self.fails) / (2 + self.runs)

    def words(self) -> str:
        """What the rate means for triage, with the number and its 95 % interval."""
        if self.runs == 0:
            return "no verdicts yet"
        lo, hi = self.interval()
        pct = f"{lo * 100:.0f}-{hi * 100:.0f} %"
        if self.fails == 0:
            return f"not seen ({self.fails}:{self.runs}, rate < {hi * 100:.0f} %)"
        if self.fails == self.runs:
            return f"every run ({self.fails}:{self.runs}, {pct})"
        approx = f"≈{self.estimate * 100:.0f} %"
        if self.estimate >= 0.9:
            return f"almost always ({approx}, {pct})"
        return f"flaky ({approx}, {pct})"

    def __str__(self) -> str:
        return f"{self.fails}:{self.runs}"
