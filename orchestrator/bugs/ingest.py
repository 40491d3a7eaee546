"""A run into the store: its jobs, and each finding as an incident of a bug.

How a finding finds its bug: orchestrator/bugs/matching.py (and docs/bugs.md).

ERROR, MISS and SKIP jobs have no incidents but are recorded: they are not verdicts, and
fail:runs counts only jobs that judged the kernel.

Ingesting a run again changes only the jobs whose status or titles changed (a resumed
matrix, a rewritten job.json): the same run twice adds nothing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from orchestrator.bugs.lifecycle import autofix, refresh
from orchestrator.bugs.matching import Assigned, Seen, assign, findings_of
from orchestrator.bugs.store import Store, now
from orchestrator.records.model import Job, Run
from orchestrator.records.reproduce import kto_command

JUDGED = ("PASS", "FAIL", "XFAIL")  # a verdict about the kernel; the rest says nothing


@dataclass
class Ingested:
    run_id: str
    jobs: int = 0  # jobs added or changed
    incidents: int = 0
    new_bugs: list[int] = field(default_factory=list)
    fixed: list[int] = field(default_factory=list)  # closed by silence after this run


def cell_of(job: Job) -> str:
    """The same work across runs; the naming of matrix/history.cell_of (ranked above)."""
    cell = job.record.get("cell") or {}
    if cell:
        return ".".join(str(cell.get(k, "?")) for k in ("tree", "series", "config", "arch", "test"))
    return f"{job.tree}.{job.config}.{job.arch}.{job.test}"


def _tree_series(job: Job) -> tuple[str, str]:
    cell = job.record.get("cell") or {}
    if cell:
        return str(cell.get("tree") or job.tree), str(cell.get("series") or "none")
    inputs = job.build.get("inputs") or {}
    series = (inputs.get("series") or {}).get("hash") or "none"
    return str(inputs.get("tree") or job.tree), str(series)


def digest(job: Job, seen: list[Seen]) -> str:
    return "\x1f".join([str(job.status), *(s.title for s in seen)])


def _run_row(run: Run) -> tuple[Any, ...]:
    key = run.record.get("compare_key")
    nightly = isinstance(key, str) and key.startswith("matrix:")
    created = run.record.get("created") or run.id[:15]
    return (run.id, run.label, key, created, int(nightly), str(run.path), now())


def _at_head(run: Run) -> bool:
    """A run whose jobs test their tree's head: not a bisect, whose probes run old commits
    (most of them clean by design: counted, they made a deterministic bug look flaky and
    put a bisect's pseudo-cell among the bug's cells)."""
    return not str(run.record.get("compare_key") or "").startswith("bisect:")


def _job_row(job: Job, at_head: bool = True) -> tuple[Any, ...]:
    tree, series = _tree_series(job)
    spec = job.record.get("job")
    status = str(job.status)
    return (
        cell_of(job),
        tree,
        series,
        job.config,
        job.arch,
        job.test,
        status,
        int(status in JUDGED),
        int(at_head and not job.record.get("previous_kernel")),
        job.commit,
        (job.build.get("inputs") or {}).get("describe"),
        str(job.path),
        kto_command(spec) if isinstance(spec, dict) else None,
    )


JOB_COLUMNS = (
    "cell, tree, series, config, arch, test, status, judged, head, git_commit, describe, path, "
    "reproducer"
)


def ingest(store: Store, run: Run) -> Ingested:
    """Add a loaded run to the store (one transaction); idempotent."""
    result = Ingested(run.id)
    assigned = Assigned()
    with store.write() as db:
        db.execute(
            "INSERT INTO runs (id, label, compare_key, created, nightly, path, ingested) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET label = excluded.label,"
            " compare_key = excluded.compare_key, created = excluded.created, "
            "nightly = excluded.nightly, path = excluded.path",
            _run_row(run),
        )
        known = {
            r["name"]: (r["id"], r["digest"])
            for r in db.execute("SELECT id, name, digest FROM jobs WHERE run_id = ?", (run.id,))
        }
        touched: set[int] = set()
        cells: set[str] = set()
        for job in run.jobs:
            seen = findings_of(job)
            d = digest(job, seen)
            old = known.get(job.name)
            if old is not None and old[1] == d:
                continue
            result.jobs += 1
            row = _job_row(job, _at_head(run))
            cells.add(row[0])
            if old is not None:
                job_id = old[0]
                touched |= _bugs_of_job(db, job_id)
                db.execute("DELETE FROM incidents WHERE job_id = ?", (job_id,))
                sets = ", ".join(f"{c.strip()} = ?" for c in JOB_COLUMNS.split(","))
                db.execute(f"UPDATE jobs SET {sets}, digest = ? WHERE id = ?", (*row, d, job_id))
            else:
                cur = db.execute(
                    f"INSERT INTO jobs (run_id, name, {JOB_COLUMNS}, digest) "
                    f"VALUES (?, ?, {', '.join('?' * len(row))}, ?)",
                    (run.id, job.name, *row, d),
                )
                job_id = int(cur.lastrowid or 0)
            touched |= assign(db, job_id, seen, run.id, assigned)
        result.incidents, result.new_bugs = assigned.incidents, assigned.new_bugs
        if not result.jobs:
            return result
        # Bugs whose cells ran: their runs (and quiet nights) changed even without a finding.
        touched |= _bugs_in_cells(db, cells)
        refresh(db, touched)
        result.fixed = autofix(db, touched, run.id)
    return result


def _bugs_of_job(db: sqlite3.Connection, job_id: int) -> set[int]:
    rows = db.execute("SELECT DISTINCT bug_id FROM incidents WHERE job_id = ?", (job_id,))
    return {int(r[0]) for r in rows}


def _bugs_in_cells(db: sqlite3.Connection, cells: set[str]) -> set[int]:
    out: set[int] = set()
    for cell in cells:
        rows = db.execute(
            "SELECT bc.bug_id FROM bug_cells bc JOIN bugs b ON b.id = bc.bug_id "
            "WHERE bc.cell = ? AND b.state IN ('open', 'dup')",
            (cell,),
        )
        out |= {int(r[0]) for r in rows}
    return out
