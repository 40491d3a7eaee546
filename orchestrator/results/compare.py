"""Run-to-run regressions: per test and per finding title, new / fixed / still failing /
flaky (failing in some repeats of the same test only).

A test is identified across runs by (tree, config, arch, test); repeats of it in one run are
jobs with the same key. Only FAIL counts as failing and only PASS or FAIL as a verdict:
ERROR and MISS are infrastructure and are listed apart, so a broken host never shows up as
a kernel regression, and a FAIL that is ERROR, MISS or SKIP now is not FIXED. A test or finding
absent from the new run because its job did not run is not "fixed".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from orchestrator.records.model import Job, Run
from orchestrator.records.verdict import Status

Key = tuple[str, str, str, str]
CLASSES = ("new", "fixed", "still", "flaky")
LABELS = {"new": "NEW", "fixed": "FIXED", "still": "STILL", "flaky": "FLAKY"}


@dataclass
class Change:
    cls: str  # one of CLASSES
    what: str  # "test" or "finding"
    name: str  # "arch config test" or a finding title
    old: str  # e.g. "PASS", "FAIL 2/3", "-" (not run)
    new: str
    detail: str = ""  # the failing title for a test, the tests for a finding
    waived: bool = False
    expected: bool = False  # a finding the job had to produce (XFAIL): a catch, not a bug

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    old_id: str | None
    new_id: str
    changes: list[Change] = field(default_factory=list)
    infra: list[str] = field(default_factory=list)  # new-run jobs that ERROR/MISS
    passing: int = 0  # tests passing in both runs (not listed)

    def of(self, cls: str, what: str | None = None) -> list[Change]:
        return [c for c in self.changes if c.cls == cls and (what is None or c.what == what)]

    @property
    def regressions(self) -> list[Change]:
        """What should make a CI job red: new failures neither waived nor expected."""
        return [c for c in self.of("new") if not c.waived and not c.expected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_id,
            "new": self.new_id,
            "counts": {
                what: {cls: len(self.of(cls, what)) for cls in CLASSES}
                for what in ("test", "finding")
            },
            "changes": [c.to_dict() for c in self.changes],
            "infra": self.infra,
            "passing": self.passing,
        }


def _by_key(run: Run | None) -> dict[Key, list[Job]]:
    out: dict[Key, list[Job]] = defaultdict(list)
    for job in run.jobs if run else []:
        out[job.key].append(job)
    return out


def _tally(jobs: list[Job]) -> str:
    if not jobs:
        return "-"
    counts = Counter(str(j.status) for j in jobs)
    if len(counts) == 1 and len(jobs) == 1:
        return next(iter(counts))
    return " ".join(f"{s} {n}/{len(jobs)}" for s, n in sorted(counts.items()))


# A verdict about the kernel (XFAIL: the expected findings were caught); the rest says nothing.
JUDGED = (Status.PASS, Status.FAIL, Status.XFAIL)


def _judged(jobs: list[Job]) -> list[Job]:
    return [j for j in jobs if j.status in JUDGED]


def _observed(jobs: list[Job]) -> list[Job]:
    """The jobs that say whether a title is there: a verdict, or findings on the console
    (a waived panic stops the test: an ERROR that still saw it)."""
    return [j for j in jobs if j.status in JUDGED or j.findings]


def _failing(jobs: list[Job]) -> list[bool]:
    """Per repeat with a verdict, failing or not: a FAIL that is ERROR, MISS or SKIP now
    did not run as far as the kernel is concerned (INFRA), it is not FIXED."""
    return [j.status is Status.FAIL for j in _judged(jobs)]


def _classify(old: list[bool], new: list[bool]) -> str | None:
    """old/new: per repeat, failing or not ([] = did not run)."""
    if not new:
        return None  # not run this time: neither fixed nor failing
    if (any(new) and not all(new)) or (any(old) and not all(old)):
        return "flaky"
    if all(new):
        return "still" if any(old) else "new"
    return "fixed" if any(old) else None


def _hits(seen: dict[Key, list[bool]]) -> int:
    return sum(sum(hits) for hits in seen.values())


def _name(key: Key) -> str:
    tree, config, arch, test = key
    return f"{tree} {arch} {config} {test}"


def compare(old: Run | None, new: Run) -> Comparison:
    result = Comparison(old.id if old else None, new.id)
    old_jobs, new_jobs = _by_key(old), _by_key(new)

    for key, jobs in sorted(new_jobs.items()):
        before = old_jobs.get(key, [])
        cls = _classify(_failing(before), _failing(jobs))
        infra = [j for j in jobs if j.status in (Status.ERROR, Status.MISS)]
        result.infra += [f"{j.name}: {j.status} - {j.reason}" for j in infra]
        if cls is None:
            if not infra and any(j.status is Status.PASS for j in jobs):
                result.passing += 1
            continue
        titles = [j.title for j in jobs + before if j.status is Status.FAIL and j.title]
        result.changes.append(
            Change(
                cls, "test", _name(key), _tally(before), _tally(jobs), titles[0] if titles else ""
            )
        )

    # Findings: per title, per key, in how many repeats it was seen.
    def seen(runs: dict[Key, list[Job]]) -> dict[str, dict[Key, list[bool]]]:
        out: dict[str, dict[Key, list[bool]]] = defaultdict(dict)
        titles = {f.get("title") for jobs in runs.values() for j in jobs for f in j.findings}
        for title in sorted(t for t in titles if t):
            for key, jobs in runs.items():
                hits = [any(f.get("title") == title for f in j.findings) for j in _observed(jobs)]
                if any(hits):
                    out[title][key] = hits
        return out

    old_seen, new_seen = seen(old_jobs), seen(new_jobs)
    waived = {t for jobs in new_jobs.values() for j in jobs for t in j.waived}
    waived |= {t for jobs in old_jobs.values() for j in jobs for t in j.waived}
    expected = {t for jobs in new_jobs.values() for j in jobs for t in j.expected}
    for title in sorted(set(old_seen) | set(new_seen)):
        seen_before, seen_after = old_seen.get(title, {}), new_seen.get(title, {})
        # Only keys that ran in the new run can say anything about this title now.
        keys = sorted(set(seen_after) | {k for k in seen_before if k in new_jobs})
        classes = set()
        for k in keys:
            old_hits = seen_before.get(k, [False] * len(_observed(old_jobs.get(k, []))))
            new_hits = seen_after.get(k, [False] * len(_observed(new_jobs[k])))
            c = _classify(old_hits, new_hits)
            if c:
                classes.add(c)
        if not classes:
            continue
        # One line per title: flaky anywhere wins, then new, still, fixed.
        cls = next(c for c in ("flaky", "new", "still", "fixed") if c in classes)
        result.changes.append(
            Change(
                cls,
                "finding",
                title,
                f"{_hits(seen_before)} job(s)" if seen_before else "-",
                f"{_hits(seen_after)} job(s)" if seen_after else "-",
                ", ".join(_name(k) for k in (seen_after or seen_before)),
                waived=title in waived,
                expected=title in expected,
            )
        )
    return result


def summary_lines(c: Comparison) -> list[str]:
    if c.old_id is None:
        head = f"regressions: no earlier run of this matrix to compare {c.new_id} with"
    else:
        counts = ", ".join(f"{len(c.of(cls, 'test'))} {cls}" for cls in CLASSES)
        fcounts = ", ".join(f"{len(c.of(cls, 'finding'))} {cls}" for cls in CLASSES)
        head = f"regressions vs {c.old_id}: tests {counts}; findings {fcounts}"
    lines = [head]
    for cls in CLASSES:
        for ch in c.of(cls):
            mark = " (expected)" if ch.expected else " (waived)" if ch.waived else ""
            arrow = f"{ch.old} -> {ch.new}"
            extra = f"  [{ch.detail}]" if ch.detail else ""
            lines.append(f"  {LABELS[cls]:5} {ch.what:7} {ch.name}{mark}: {arrow}{extra}")
    for line in c.infra:
        lines.append(f"  INFRA {line}")
    return lines
