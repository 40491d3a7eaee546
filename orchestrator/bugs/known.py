"""Known issues: each finding of a run as the bug it is an incident of, for the reports.

A renderer asks `known.of(job_name, title)` and shows "#12 WARNING in __mmdrop, open since
2026-11-30, 14:20 runs" instead of a bare title; a bug first seen in this run says NEW.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bugs.triage import Rate
from orchestrator.parser.titles import normalise


def display_title(title: str, seq: int) -> str:
    """syzbot's way: the second bug with a title is "title (2)"."""
    return f"{title} ({seq})" if seq > 1 else title


def run_date(run_id: str | None) -> str:
    """2026-11-30 from a run id (YYYYmmdd-...), else the id itself."""
    if run_id and len(run_id) >= 8 and run_id[:8].isdigit():
        return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"
    return run_id or "?"


@dataclass(frozen=True)
class BugRef:
    id: int  # the bug to show: a dup's bug, not the dup
    title: str  # with its "(N)"
    state: str
    first_run: str | None
    rate: Rate
    new: bool = False  # first seen in this run
    back_of: int | None = None  # the closed bug this one is the return of
    matched: int | None = None  # the dup the finding matched, when it is not `id`
    version: int = 1  # the bug's KCIDB issue version
    quiet_nights: int = 0  # matrix nights at the tree's head since it last showed

    @property
    def since(self) -> str:
        return run_date(self.first_run)

    def label(self) -> str:
        if self.new:
            back = f" (#{self.back_of} is back)" if self.back_of else ""
            return f"#{self.id} {self.title}, NEW bug{back}, {self.rate} runs"
        dup = f" (as its dup #{self.matched})" if self.matched else ""
        return f"#{self.id} {self.title}, {self.state} since {self.since}, {self.rate} runs{dup}"


@dataclass
class Known:
    """The bugs of one run's findings, keyed by (job folder, normalised title)."""

    run_id: str
    store: Path
    refs: dict[tuple[str, str], BugRef] = field(default_factory=dict)
    # Per job: the open bugs of its cell it did not show (KCIDB's `present: false`).
    absent: dict[str, list[BugRef]] = field(default_factory=dict)
    # The bugs this run closed by silence, with the reason (bugs/lifecycle.autofix).
    closed: list[tuple[BugRef, str]] = field(default_factory=list)

    def of(self, job: str, title: str | None) -> BugRef | None:
        if not title:
            return None
        # A verdict title is kept as it is, a finding's title normalised (ingest.findings_of).
        return self.refs.get((job, title)) or self.refs.get((job, normalise(title)))

    @property
    def html(self) -> Path:
        from orchestrator.bugs.store import HTML_NAME

        return self.store.parent / HTML_NAME

    def bugs(self) -> list[BugRef]:
        """Each bug once: new ones first, then by number."""
        unique = {r.id: r for r in self.refs.values()}
        return sorted(unique.values(), key=lambda r: (not r.new, r.id))

    def in_cell(self, cell: str, title: str) -> BugRef | None:
        """The bug a finding titled `title` of any of the cell's jobs is (a night line's)."""
        jobs = sorted({job for job, _ in self.refs if job.startswith(f"{cell}-")})
        return next((r for job in jobs if (r := self.of(job, title))), None)

    def gone_in_cell(self, cell: str, title: str) -> BugRef | None:
        """The open bug titled `title` (or its "(N)") that the cell's jobs did not show."""
        title = normalise(title)
        for job, refs in sorted(self.absent.items()):
            if job.startswith(f"{cell}-"):
                for ref in refs:
                    if ref.title == title or ref.title.startswith(f"{title} ("):
                        return ref
        return None

    def gone(self) -> list[BugRef]:
        """The open bugs of this run's cells that none of its jobs showed, each once."""
        shown = {r.id for r in self.refs.values()}
        unique = {r.id: r for refs in self.absent.values() for r in refs if r.id not in shown}
        return sorted(unique.values(), key=lambda r: r.id)

    def lines(self) -> list[str]:
        """The run's bugs for the terminal: each one it showed, each open bug of its cells
        it did not show, and each it closed because the bug stopped reproducing."""
        out = [f"bug {ref.label()}" for ref in self.bugs()]
        for ref in self.gone():
            nights = f", gone {ref.quiet_nights} night(s)" if ref.quiet_nights else ""
            out.append(f"bug {ref.label()}: not seen in this run{nights}")
        out += [f"bug #{ref.id} {ref.title}: closed as fixed, {why}" for ref, why in self.closed]
        return out


def _ref(b: sqlite3.Row, run_id: str, matched: int | None = None) -> BugRef:
    return BugRef(
        id=int(b["id"]),
        title=display_title(b["title"], int(b["seq"])),
        state=str(b["state"]),
        first_run=b["first_run"],
        rate=Rate(int(b["fails"]), int(b["runs"])),
        new=b["first_run"] == run_id,
        back_of=b["prev_id"],
        matched=matched,
        version=int(b["version"]),
        quiet_nights=int(b["quiet_nights"]),
    )


def known_for_run(db: sqlite3.Connection, store: Path, run_id: str) -> Known:
    known = Known(run_id, store)
    rows = db.execute(
        "SELECT j.name, i.title, i.bug_id, b.state AS own_state, b.dup_of "
        "FROM incidents i JOIN jobs j ON j.id = i.job_id JOIN bugs b ON b.id = i.bug_id "
        "WHERE j.run_id = ?",
        (run_id,),
    ).fetchall()
    bugs: dict[int, sqlite3.Row] = {}
    for r in rows:
        shown = r["dup_of"] if r["own_state"] == "dup" and r["dup_of"] else r["bug_id"]
        if shown not in bugs:
            bugs[shown] = db.execute("SELECT * FROM bugs WHERE id = ?", (shown,)).fetchone()
        matched = int(r["bug_id"]) if shown != r["bug_id"] else None
        known.refs[(r["name"], r["title"])] = _ref(bugs[shown], run_id, matched)
    # Judged jobs of this run in a cell where an open bug (seen by then) showed before.
    absent = db.execute(
        "SELECT j.name, b.* FROM jobs j JOIN bug_cells c ON c.cell = j.cell "
        "JOIN bugs b ON b.id = c.bug_id WHERE j.run_id = ? AND j.judged AND j.head "
        "AND b.state = 'open' AND b.first_run <= j.run_id AND NOT EXISTS (SELECT 1 FROM "
        "incidents i JOIN bugs d ON d.id = i.bug_id WHERE i.job_id = j.id "
        "AND (d.id = b.id OR (d.state = 'dup' AND d.dup_of = b.id))) ORDER BY j.name, b.id",
        (run_id,),
    ).fetchall()
    for r in absent:
        known.absent.setdefault(r["name"], []).append(_ref(r, run_id))
    closed = db.execute(
        "SELECT e.reason, b.* FROM events e JOIN bugs b ON b.id = e.bug_id "
        "WHERE e.run_id = ? AND e.action = 'fixed' AND e.who = 'kto' ORDER BY b.id",
        (run_id,),
    ).fetchall()
    # Once per bug (a bug reopened by hand can be closed again by a re-ingest), and only
    # while it is still fixed: a report written again later does not undo a reopen.
    last = {int(r["id"]): r for r in closed if r["state"] == "fixed"}
    known.closed = [(_ref(r, run_id), str(r["reason"])) for _, r in sorted(last.items())]
    return known
