"""What the store derives from incidents, and the bug lifecycle that follows from it:
per-cell fail:runs, first and last seen, quiet nights, the best report, the event log, and
the automatic close of a bug that stopped reproducing (docs/bugs.md: "Fixed by silence").
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from orchestrator.bugs.store import now
from orchestrator.bugs.triage import Rate
from orchestrator.records.layout import FINDINGS, JOB_RECORD

QUIET_NIGHTS = 3  # nights at the tree's head without a bug before it is fixed
REPORT_LIMIT = 16 * 1024  # the best report kept in the store (the job dir has all of it)


def quiet_nights() -> int:
    """KTO_BUGS_QUIET_NIGHTS overrides QUIET_NIGHTS (0 or less: never close by silence)."""
    try:
        return int(os.environ.get("KTO_BUGS_QUIET_NIGHTS", QUIET_NIGHTS))
    except ValueError:
        return QUIET_NIGHTS


def event(
    db: sqlite3.Connection, bug: int, action: str, who: str, reason: str, run_id: str | None
) -> None:
    db.execute(
        "INSERT INTO events (bug_id, at, who, action, reason, run_id) VALUES (?, ?, ?, ?, ?, ?)",
        (bug, now(), who, action, reason, run_id),
    )


def refresh(db: sqlite3.Connection, bugs: set[int]) -> None:
    """Recompute what the store derives from incidents, for these bugs and the bugs they are
    duplicates of: per-cell fail:runs, first/last seen, arches, kinds, quiet nights, the
    best report. A non-dup bug counts its dups' incidents as its own."""
    todo = set(bugs)
    for bug in bugs:
        row = db.execute("SELECT dup_of FROM bugs WHERE id = ?", (bug,)).fetchone()
        if row is not None and row["dup_of"] is not None:
            todo.add(int(row["dup_of"]))
    for bug in sorted(todo):
        _refresh_one(db, bug)


def family(db: sqlite3.Connection, bug: int) -> list[int]:
    """A bug and the bugs marked duplicates of it."""
    rows = db.execute("SELECT id FROM bugs WHERE dup_of = ? AND state = 'dup'", (bug,))
    return [bug, *(int(r[0]) for r in rows)]


def _refresh_one(db: sqlite3.Connection, bug: int) -> None:
    row = db.execute("SELECT * FROM bugs WHERE id = ?", (bug,)).fetchone()
    if row is None:
        return
    ids = family(db, bug) if row["state"] != "dup" else [bug]
    marks = ",".join("?" * len(ids))
    db.execute("DELETE FROM bug_cells WHERE bug_id = ?", (bug,))
    cells = db.execute(
        f"SELECT j.cell, j.tree, j.arch, MIN(j.run_id) AS first, MAX(j.run_id) AS last, "
        f"COUNT(DISTINCT j.id) AS fails FROM incidents i JOIN jobs j ON j.id = i.job_id "
        f"WHERE i.bug_id IN ({marks}) AND j.head AND j.judged GROUP BY j.cell",
        ids,
    ).fetchall()
    for c in cells:
        # fail:runs counts the cell's verdicts while the bug was there: from its first
        # incident in the cell to its last. The clean runs after it are its quiet runs (the
        # evidence that it is gone), not a lower rate: a rate diluted by them would ask for
        # ever more quiet runs before the bug could count as fixed.
        runs = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE cell = ? AND judged AND head "
            "AND run_id >= ? AND run_id <= ?",
            (c["cell"], c["first"], c["last"]),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO bug_cells (bug_id, cell, tree, arch, first_run, last_run, fails, runs) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (bug, c["cell"], c["tree"], c["arch"], c["first"], c["last"], c["fails"], runs),
        )
    agg = db.execute(
        f"SELECT COUNT(*) AS n, COUNT(DISTINCT CASE WHEN j.head AND j.judged THEN j.id END) "
        f"AS fails, MIN(j.run_id) AS first, MAX(j.run_id) AS last, "
        f"GROUP_CONCAT(DISTINCT j.arch) AS arches, GROUP_CONCAT(DISTINCT i.kind) AS kinds, "
        f"GROUP_CONCAT(DISTINCT j.tree) AS trees "
        f"FROM incidents i JOIN jobs j ON j.id = i.job_id WHERE i.bug_id IN ({marks})",
        ids,
    ).fetchone()
    first_job = last_job = best = None
    if agg["n"]:
        first_job, last_job = (
            db.execute(
                f"SELECT j.id FROM incidents i JOIN jobs j ON j.id = i.job_id "
                f"WHERE i.bug_id IN ({marks}) ORDER BY j.run_id {order}, j.name {order} LIMIT 1",
                ids,
            ).fetchone()[0]
            for order in ("ASC", "DESC")
        )
        best = db.execute(
            f"SELECT i.id, i.finding, j.path FROM incidents i JOIN jobs j ON j.id = i.job_id "
            # a night's incident at the tree's head before a bisect probe's at an old commit:
            # its reproducer is the one a reader wants
            f"WHERE i.bug_id IN ({marks}) ORDER BY j.head DESC, i.score DESC, j.run_id DESC, "
            f"i.id DESC "
            f"LIMIT 1",
            ids,
        ).fetchone()
    # Quiet since its last sighting at the tree's head: a bisect probe that shows it at an
    # old commit (a fix bisect's, say) says nothing of now and must not restart the count.
    last_head = max((c["last"] for c in cells), default=None)
    quiet_runs, quiet = _quiet(db, bug, last_head)
    report = row["best_report"]
    if best is not None and best["id"] != row["best_incident"]:
        report = _report_text(best["path"], best["finding"])
    db.execute(
        "UPDATE bugs SET first_run = ?, last_run = ?, first_job = ?, last_job = ?, "
        "n_incidents = ?, fails = ?, runs = (SELECT COALESCE(SUM(runs), 0) FROM bug_cells "
        "WHERE bug_id = ?), arches = ?, kinds = ?, trees = ?, quiet_nights = ?, "
        "quiet_runs = ?, best_incident = ?, best_report = ? WHERE id = ?",
        (
            agg["first"],
            agg["last"],
            first_job,
            last_job,
            agg["n"],
            agg["fails"],
            bug,
            _sorted_list(agg["arches"]),
            _sorted_list(agg["kinds"]),
            _sorted_list(agg["trees"]),
            quiet,
            quiet_runs,
            best["id"] if best is not None else None,
            report,
            bug,
        ),
    )


def _sorted_list(joined: str | None) -> str:
    return ",".join(sorted(set((joined or "").split(",")) - {""}))


def _quiet(db: sqlite3.Connection, bug: int, last: str | None) -> tuple[int, int]:
    """Verdicts and nights of the bug's cells at the tree's head (matrix runs) since its last
    incident: (judged jobs, distinct runs). All of them were clean, by definition."""
    if last is None:
        return 0, 0
    row = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT j.run_id) FROM jobs j JOIN runs r ON r.id = j.run_id "
        "WHERE r.nightly AND j.judged AND j.head AND j.run_id > ? "
        "AND j.cell IN (SELECT cell FROM bug_cells WHERE bug_id = ?)",
        (last, bug),
    ).fetchone()
    return int(row[0]), int(row[1])


def _report_text(job_path: str, index: int | None) -> str:
    """The finding's report from its job's findings.json (empty when the dir is gone)."""
    if index is None:
        try:
            doc = json.loads((Path(job_path) / JOB_RECORD).read_text())
            return str((doc.get("verdict") or {}).get("reason") or "")[:REPORT_LIMIT]
        except (OSError, ValueError, AttributeError):
            return ""
    try:
        doc = json.loads((Path(job_path) / FINDINGS).read_text())
        return str(doc["findings"][index].get("report") or "")[:REPORT_LIMIT]
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""


def autofix(db: sqlite3.Connection, bugs: set[int], run_id: str) -> list[int]:
    """Close the open bugs that stopped reproducing: QUIET_NIGHTS matrix nights at the tree's
    head without them, and enough clean verdicts there that the bug, at the cautious end of
    its rate, would have shown with 95 % chance (a 1-in-5 bug needs more than a 5-in-5)."""
    nights = quiet_nights()
    if nights <= 0:
        return []
    fixed = []
    for bug in sorted(bugs):
        row = db.execute("SELECT * FROM bugs WHERE id = ?", (bug,)).fetchone()
        if row is None or row["state"] != "open" or row["quiet_nights"] < nights:
            continue
        rate = Rate(int(row["fails"]), int(row["runs"]))
        needed = rate.runs_to_see() or 1
        if row["quiet_runs"] < needed:
            continue
        since = db.execute(
            "SELECT MAX(last_run) FROM bug_cells WHERE bug_id = ?", (bug,)
        ).fetchone()[0]
        reason = (
            f"stopped reproducing for {row['quiet_nights']} nights at the tree's head "
            f"(0:{row['quiet_runs']} since {since}; it was {rate.words()}, "
            f"{needed} clean runs would show it with 95 % chance)"
        )
        db.execute(
            "UPDATE bugs SET state = 'fixed', closed_reason = ?, closed_at = ?, "
            "closed_by = 'kto', version = version + 1 WHERE id = ?",
            (reason, now(), bug),
        )
        event(db, bug, "fixed", "kto", reason, run_id)
        fixed.append(bug)
    return fixed
