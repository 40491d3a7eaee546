"""Night to night: each cell and finding title of a matrix run against the earlier runs of
the same matrix, with fail:runs, classified the way a maintainer reads them.

- NEW: fails now (in some or all repeats), never failed in the history kept;
- FIXED: passes now in every repeat, failed in the previous run;
- PERSISTENT: fails now in every repeat and failed in every run of the history it ran in;
- UNSTABLE: fails in some repeats only, or has flipped between nights;
- INFRA: the cell's jobs are ERROR/MISS now: never a kernel regression.

A title's fail:runs counts the jobs of the cell whose findings carry the title, out of the
jobs of the cell that produced a verdict (PASS or FAIL).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.records.model import Job, Run, list_runs, load_run
from orchestrator.records.runrecord import read as read_run_record
from orchestrator.records.verdict import Status

HISTORY = 7  # runs of the same matrix looked back at

CLASSES = ("new", "fixed", "persistent", "unstable", "infra")


@dataclass(frozen=True)
class Tally:
    fails: int
    runs: int

    def __str__(self) -> str:
        return f"{self.fails}:{self.runs}"


@dataclass
class Line:
    cls: str
    cell: str  # the cell's folder name (tree.series.config.arch.test)
    title: str  # a finding title, or the verdict of the test itself
    now: Tally
    before: list[Tally]  # newest first, one per earlier run the cell ran in
    # the previous run's kernel booted again in this run (NEW confirmation), if it was
    last_kernel: Tally | None = None

    def text(self) -> str:
        prev = f" vs {self.before[0]} last time" if self.before else " (no earlier run)"
        hist = " ".join(str(t) for t in self.before[1:])
        again = (
            f"; {self.last_kernel} with last time's kernel, re-run now" if self.last_kernel else ""
        )
        return f"{self.cls.upper():10} {self.cell}: {self.title} {self.now} now{prev}{again}" + (
            f"; before: {hist}" if hist else ""
        )


@dataclass
class Classified:
    lines: list[Line] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # run ids compared with, newest first
    versions_changed: list[str] = field(default_factory=list)
    run_id: str = ""
    # Per cell, the test's own fail:runs now and in each run of the history, newest first
    # (None: the cell did not run then, or had no verdict): the report's history strip.
    strips: dict[str, list[Tally | None]] = field(default_factory=dict)

    def of(self, cls: str) -> list[Line]:
        return [ln for ln in self.lines if ln.cls == cls]

    @property
    def new(self) -> list[Line]:
        return self.of("new")

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "versions_changed": self.versions_changed,
            "strips": {c: [str(t) if t else None for t in s] for c, s in self.strips.items()},
            **{
                c: [
                    {
                        "cell": ln.cell,
                        "title": ln.title,
                        "now": str(ln.now),
                        "before": [str(t) for t in ln.before],
                        "last_kernel": str(ln.last_kernel) if ln.last_kernel else None,
                    }
                    for ln in self.of(c)
                ]
                for c in CLASSES
            },
        }


def cell_of(job: Job) -> str:
    cell = job.record.get("cell") or {}
    if cell:
        return ".".join(str(cell.get(k, "?")) for k in ("tree", "series", "config", "arch", "test"))
    return f"{job.tree}.{job.config}.{job.arch}.{job.test}"


def _tallies(
    run: Run, last_kernel: bool = False
) -> tuple[dict[str, dict[str, Tally]], dict[str, bool]]:
    """Per cell: {title: fail:runs} (the key "" is the test's own FAIL), and infra-only.
    The jobs that booted an earlier run's kernel again count apart (`last_kernel`)."""
    judged: dict[str, list[Job]] = defaultdict(list)
    infra: dict[str, bool] = {}
    for job in run.jobs:
        if bool(job.record.get("previous_kernel")) != last_kernel:
            continue
        if job.status is Status.SKIP:
            continue  # a test that does not apply to this arch: neither verdict nor INFRA
        cell = cell_of(job)
        infra.setdefault(cell, True)
        if job.status in (Status.PASS, Status.FAIL, Status.XFAIL):  # XFAIL: caught, no failure
            judged[cell].append(job)
            infra[cell] = False
    out: dict[str, dict[str, Tally]] = {}
    for cell, jobs in judged.items():
        titles: dict[str, int] = defaultdict(int)
        for job in jobs:
            # An expected finding caught (XFAIL) is the cell doing its job, not a failure.
            failing = {f.get("title") for f in job.failing_findings()} - set(job.expected)
            if job.status is Status.FAIL and not failing:
                failing = {job.title or "test failed"}
            for t in failing:
                titles[str(t)] += 1
        out[cell] = {t: Tally(n, len(jobs)) for t, n in titles.items()}
        out[cell].setdefault("", Tally(sum(j.status is Status.FAIL for j in jobs), len(jobs)))
    return out, infra


def _history(run: Run, limit: int) -> list[Run]:
    key = run.record.get("compare_key")
    out: list[Run] = []
    for rid in reversed(list_runs(run.path.parent)):
        if rid >= run.id or len(out) >= limit:
            continue
        if read_run_record(run.path.parent / rid).get("compare_key") == key:
            out.append(load_run(run.path.parent / rid))
    return out


def _versions(run: Run) -> dict[str, Any]:
    return dict(run.record.get("versions") or {})


def classify(run_dir: Path, limit: int = HISTORY) -> Classified:
    from orchestrator.records import waivers
    from orchestrator.records.model import run_waivers

    known = run_waivers(run_dir, waivers.load())
    run = load_run(run_dir, known)
    history = _history(run, limit)
    now, infra = _tallies(run)
    again = _tallies(run, last_kernel=True)[0]
    past = [_tallies(r)[0] for r in history]
    result = Classified(history=[r.id for r in history], run_id=run.id)
    for cell in sorted(set(now) | set(infra)):
        result.strips[cell] = [
            t.get("") if (t := tallies.get(cell)) else None for tallies in (now, *past)
        ]
    if history:
        a, b = _versions(run), _versions(history[0])
        # A tool that one of the two nights did not record (no kernel built, an older kto)
        # is unknown there, not changed.
        result.versions_changed = [
            f"{k}: {b.get(k)} -> {a.get(k)}"
            for k in sorted(set(a) & set(b))
            if a.get(k) and b.get(k) and a.get(k) != b.get(k)
        ]
    for cell in sorted(set(now) | set(infra)):
        if infra.get(cell) and cell not in now:
            result.lines.append(Line("infra", cell, "no verdict (ERROR/MISS)", Tally(0, 0), []))
            continue
        titles = {t for t in now.get(cell, {}) if t} | {
            t for p in past for t in p.get(cell, {}) if t
        }
        for title in sorted(titles):
            cur = now[cell].get(title, Tally(0, now[cell][""].runs))
            before = [p[cell].get(title, Tally(0, p[cell][""].runs)) for p in past if cell in p]
            cls = _class(cur, before)
            if cls:
                rerun = again.get(cell)
                last = rerun.get(title, Tally(0, rerun[""].runs)) if rerun else None
                result.lines.append(Line(cls, cell, title, cur, before, last))
    return result


def _class(now: Tally, before: list[Tally]) -> str | None:
    failing_before = [t.fails > 0 for t in before]
    if now.fails == 0:
        return "fixed" if failing_before[:1] == [True] else None
    partial = 0 < now.fails < now.runs or any(0 < t.fails < t.runs for t in before)
    if not any(failing_before):
        return "new"
    if partial or not all(failing_before):
        return "unstable"
    return "persistent"
