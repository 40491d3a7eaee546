"""A run into the store: its jobs, and each finding as an incident of a bug.

How a finding finds its bug (docs/bugs.md says it for users):

1. Its normalised title, then the parser's alternative titles, against every bug's titles
   (primary, secondary, alternative). An open bug wins, then a dup whose bug is open (the
   incident stays with the dup, so `undup` can take it back).
2. Findings that come together are one bug: in one job, each report starting within
   TOGETHER_LINES console lines of the end of the one before it (a chain of reports printed
   one after another; findings without line numbers count as together). In each such group
   the first finding leads. If the lead has no open bug but another finding of the group
   has, that bug is the group's; otherwise the lead's bug is, new if need be. A finding
   with no open bug of its own joins the group's bug as a secondary ("together") title:
   seed 003's "WARNING in __mmdrop" brings "BUG: Bad rss-counter state" and "BUG: non-zero
   pgtables_bytes on freeing mm" with it 39 lines later, and they are one bug. A title
   that has a bug of its own keeps it: linking never merges two bugs (`kto bugs dup` does).
   Reports far apart in a long stress run stay separate problems.
3. A lead whose title only matches closed bugs (fixed, invalid) opens a new bug, "title
   (2)", linked to the newest of them: a fixed bug that comes back is news.

A FAIL without a finding (the test's own status, a hang the kernel answered SysRq in) is an
incident under the verdict's title. ERROR, MISS and SKIP jobs have no incidents but are
recorded: they are not verdicts, and fail:runs counts only jobs that judged the kernel.

Ingesting a run again changes only the jobs whose status or titles changed (a resumed
matrix, a rewritten job.json): the same run twice adds nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.bugs.store import Store, now
from orchestrator.bugs.triage import Rate
from orchestrator.parser.titles import normalise, sanitise
from orchestrator.records.layout import FINDINGS, JOB_RECORD
from orchestrator.records.model import Job, Run
from orchestrator.records.reproduce import kto_command

JUDGED = ("PASS", "FAIL", "XFAIL")  # a verdict about the kernel; the rest says nothing
QUIET_NIGHTS = 3  # nights at the tree's head without a bug before it is fixed
TOGETHER_LINES = 100  # a report this close after another one came with it
REPORT_LIMIT = 16 * 1024  # the best report kept in the store (the job dir has all of it)


def quiet_nights() -> int:
    """KTO_BUGS_QUIET_NIGHTS overrides QUIET_NIGHTS (0 or less: never close by silence)."""
    try:
        return int(os.environ.get("KTO_BUGS_QUIET_NIGHTS", QUIET_NIGHTS))
    except ValueError:
        return QUIET_NIGHTS


@dataclass
class Seen:
    """One finding of a job, as the store keeps it."""

    title: str
    kind: str
    index: int | None  # in findings.json; None for a FAIL's own verdict title
    first_line: int | None
    last_line: int | None = None
    alts: list[str] = field(default_factory=list)
    score: int = 0
    waived: bool = False
    report: str = ""


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


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def score(finding: dict[str, Any], lead: bool) -> int:
    """How good a report: intact beats corrupted, decoded frames beat bare ones, the lead
    beats a consequence, any text beats none (ties: the newest wins)."""
    frames = (finding.get("symbolized") or {}).get("frames") or []
    decoded = any(isinstance(f, dict) and f.get("file") for f in frames)
    corrupted = finding.get("corrupted") in (True, "True", "true")
    return 8 * (not corrupted) + 4 * decoded + 2 * lead + (1 if finding.get("report") else 0)


def findings_of(job: Job) -> list[Seen]:
    """The job's incidents-to-be, lead first, one per title."""
    out: dict[str, Seen] = {}
    for n, f in enumerate(job.findings):
        title = normalise(str(f.get("title") or ""))
        if not title or title in out:
            continue
        alts = [normalise(str(a)) for a in f.get("alt_titles") or [] if isinstance(a, str)]
        out[title] = Seen(
            title=title,
            kind=str(f.get("kind") or "unknown"),
            index=n,
            first_line=_int(f.get("first_line")),
            last_line=_int(f.get("last_line")),
            alts=[a for a in alts if a and a != title],
            score=score(f, lead=not out),
            waived=f.get("title") in job.waived,
            report=str(f.get("report") or "")[:REPORT_LIMIT],
        )
    if not out and str(job.status) == "FAIL":
        # kto's own verdict title ("kto: test failed with status 3"), not a console report:
        # the status is part of what failed, so it is kept, not normalised to NUM.
        title = sanitise(job.title or "kto: test failed")
        out[title] = Seen(title, "test", None, None, score=8 + 2, report=job.reason)
    return list(out.values())


def digest(job: Job, seen: list[Seen]) -> str:
    return "\x1f".join([str(job.status), *(s.title for s in seen)])


def _run_row(run: Run) -> tuple[Any, ...]:
    key = run.record.get("compare_key")
    nightly = isinstance(key, str) and key.startswith("matrix:")
    created = run.record.get("created") or run.id[:15]
    return (run.id, run.label, key, created, int(nightly), str(run.path), now())


def _job_row(job: Job) -> tuple[Any, ...]:
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
        int(not job.record.get("previous_kernel")),
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
            row = _job_row(job)
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
            touched |= _assign(db, job_id, seen, run.id, result)
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


@dataclass
class _Match:
    bug: int | None  # the open bug (or live dup) the title belongs to
    closed: sqlite3.Row | None  # else the newest closed bug with the title, if any


def canonical(db: sqlite3.Connection, bug_id: int) -> sqlite3.Row:
    """The bug itself, or the bug it is a duplicate of (dups point at a non-dup)."""
    row = db.execute("SELECT * FROM bugs WHERE id = ?", (bug_id,)).fetchone()
    if row is not None and row["state"] == "dup" and row["dup_of"] is not None:
        target = db.execute("SELECT * FROM bugs WHERE id = ?", (row["dup_of"],)).fetchone()
        return target if target is not None else row
    return row


def _resolve(db: sqlite3.Connection, seen: Seen) -> _Match:
    closed = None
    for key in (seen.title, *seen.alts):
        rows = db.execute(
            "SELECT b.* FROM titles t JOIN bugs b ON b.id = t.bug_id WHERE t.title = ? "
            "ORDER BY b.id DESC",
            (key,),
        ).fetchall()
        for row in rows:
            if canonical(db, row["id"])["state"] == "open":
                return _Match(int(row["id"]), None)
        if key == seen.title and rows:
            closed = rows[0]
    return _Match(None, closed)


def new_bug(
    db: sqlite3.Connection, title: str, run_id: str | None, back_from: sqlite3.Row | None = None
) -> int:
    seq = db.execute(
        "SELECT MAX(b.seq) FROM titles t JOIN bugs b ON b.id = t.bug_id WHERE t.title = ?",
        (title,),
    ).fetchone()[0]
    cur = db.execute(
        "INSERT INTO bugs (title, seq, state, prev_id, created) VALUES (?, ?, 'open', ?, ?)",
        (title, int(seq or 0) + 1, back_from["id"] if back_from is not None else None, now()),
    )
    bug = int(cur.lastrowid or 0)
    db.execute("INSERT INTO titles (title, bug_id, role) VALUES (?, ?, 'primary')", (title, bug))
    if back_from is not None:
        why = f"#{back_from['id']} ({back_from['state']}) came back"
        event(db, bug, "back", "kto", why, run_id)
    else:
        event(db, bug, "created", "kto", "first seen", run_id)
    return bug


def event(
    db: sqlite3.Connection, bug: int, action: str, who: str, reason: str, run_id: str | None
) -> None:
    db.execute(
        "INSERT INTO events (bug_id, at, who, action, reason, run_id) VALUES (?, ?, ?, ?, ?, ?)",
        (bug, now(), who, action, reason, run_id),
    )


def groups(seen: list[Seen]) -> list[list[Seen]]:
    """The job's findings in console order, cut where a report starts more than
    TOGETHER_LINES after the end of the one before it."""
    ordered = sorted(seen, key=lambda s: s.first_line if s.first_line is not None else -1)
    out: list[list[Seen]] = []
    for s in ordered:
        prev = out[-1][-1] if out else None
        end = prev.last_line if prev and prev.last_line is not None else None
        end = end if end is not None else (prev.first_line if prev else None)
        if prev is None or (
            s.first_line is not None and end is not None and s.first_line - end > TOGETHER_LINES
        ):
            out.append([s])
        else:
            out[-1].append(s)
    return out


def _assign(
    db: sqlite3.Connection, job_id: int, seen: list[Seen], run_id: str, result: Ingested
) -> set[int]:
    """Each finding of one job to its bug (the rules in the module docstring)."""
    touched: set[int] = set()
    for group in groups(seen):
        touched |= _assign_group(db, job_id, group, run_id, result)
    return touched


def _assign_group(
    db: sqlite3.Connection, job_id: int, seen: list[Seen], run_id: str, result: Ingested
) -> set[int]:
    matches = [_resolve(db, s) for s in seen]
    lead = matches[0]
    anchor = lead.bug
    if anchor is None and lead.closed is None:
        anchor = next((m.bug for m in matches[1:] if m.bug is not None), None)
    touched: set[int] = set()
    for s, m in zip(seen, matches, strict=True):
        bug = m.bug
        if bug is None:
            if anchor is None:
                anchor = bug = new_bug(db, s.title, run_id, m.closed)
                result.new_bugs.append(bug)
            else:
                bug = anchor
                cur = db.execute(
                    "INSERT OR IGNORE INTO titles (title, bug_id, role) VALUES (?, ?, 'together')",
                    (s.title, bug),
                )
                if cur.rowcount:
                    # A new title of a known bug is news too: its history says when and where.
                    why = f"{s.title!r} came with it (console line {s.first_line})"
                    event(db, bug, "title", "kto", why, run_id)
        for alt in s.alts:
            db.execute(
                "INSERT OR IGNORE INTO titles (title, bug_id, role) VALUES (?, ?, 'alt')",
                (alt, bug),
            )
        db.execute(
            "INSERT OR IGNORE INTO incidents (bug_id, job_id, title, kind, finding, first_line, "
            "score, waived) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (bug, job_id, s.title, s.kind, s.index, s.first_line, s.score, int(s.waived)),
        )
        result.incidents += 1
        touched.add(bug)
    return touched


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
            f"WHERE i.bug_id IN ({marks}) ORDER BY i.score DESC, j.run_id DESC, i.id DESC "
            f"LIMIT 1",
            ids,
        ).fetchone()
    quiet_runs, quiet = _quiet(db, bug, agg["last"])
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
        reason = (
            f"stopped reproducing for {row['quiet_nights']} nights at the tree's head "
            f"(0:{row['quiet_runs']} since {row['last_run']}; it was {rate.words()}, "
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
