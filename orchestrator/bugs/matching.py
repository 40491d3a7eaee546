"""How a finding finds its bug (docs/bugs.md says it for users):

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
incident under the verdict's title, kept as it is.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from orchestrator.bugs.lifecycle import event
from orchestrator.bugs.store import now
from orchestrator.parser.titles import normalise, sanitise
from orchestrator.records.model import Job

TOGETHER_LINES = 100  # a report this close after another one came with it


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


@dataclass
class Assigned:
    """What assigning a run's findings did."""

    incidents: int = 0
    new_bugs: list[int] = field(default_factory=list)


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
        )
    if not out and str(job.status) == "FAIL":
        # kto's own verdict title ("kto: test failed with status 3"), not a console report:
        # the status is part of what failed, so it is kept, not normalised to NUM.
        title = sanitise(job.title or "kto: test failed")
        out[title] = Seen(title, "test", None, None, score=score({}, lead=True))
    return list(out.values())


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


def assign(
    db: sqlite3.Connection, job_id: int, seen: list[Seen], run_id: str, result: Assigned
) -> set[int]:
    """Each finding of one job to its bug (the rules in the module docstring)."""
    touched: set[int] = set()
    for group in groups(seen):
        touched |= _assign_group(db, job_id, group, run_id, result)
    return touched


def _assign_group(
    db: sqlite3.Connection, job_id: int, seen: list[Seen], run_id: str, result: Assigned
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
