"""Reading the store: the bug list with its filters, one bug in full, its history strip.

Everything a list shows is a column of `bugs` (ingest keeps them current), so listing a
store of 100,000 incidents reads one row per bug.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from orchestrator.bugs.known import display_title, run_date
from orchestrator.bugs.triage import Rate
from orchestrator.errors import UserError

STATES = ("open", "fixed", "invalid", "dup")
STRIP = 14  # runs shown in a bug's history strip


@dataclass
class BugRow:
    id: int
    title: str  # with "(N)"
    state: str
    first_run: str | None
    last_run: str | None
    rate: Rate
    incidents: int
    arches: list[str]
    kinds: list[str]
    trees: list[str]
    quiet_nights: int
    dup_of: int | None
    prev_id: int | None
    fixed_commit: str | None
    closed_reason: str | None
    closed_at: str | None
    closed_by: str | None
    best_incident: int | None
    best_report: str
    version: int

    @classmethod
    def of(cls, r: sqlite3.Row) -> BugRow:
        return cls(
            id=int(r["id"]),
            title=display_title(r["title"], int(r["seq"])),
            state=str(r["state"]),
            first_run=r["first_run"],
            last_run=r["last_run"],
            rate=Rate(int(r["fails"]), int(r["runs"])),
            incidents=int(r["n_incidents"]),
            arches=_split(r["arches"]),
            kinds=_split(r["kinds"]),
            trees=_split(r["trees"]),
            quiet_nights=int(r["quiet_nights"]),
            dup_of=r["dup_of"],
            prev_id=r["prev_id"],
            fixed_commit=r["fixed_commit"],
            closed_reason=r["closed_reason"],
            closed_at=r["closed_at"],
            closed_by=r["closed_by"],
            best_incident=r["best_incident"],
            best_report=str(r["best_report"] or ""),
            version=int(r["version"]),
        )

    @property
    def since(self) -> str:
        return run_date(self.first_run)

    @property
    def last(self) -> str:
        return run_date(self.last_run)

    def status(self) -> str:
        """The state as a person reads it: "open", "open, gone 1 night", "dup of #3"..."""
        if self.state == "dup":
            return f"dup of #{self.dup_of}"
        if self.state == "open" and self.quiet_nights:
            s = "s" if self.quiet_nights > 1 else ""
            return f"open, gone {self.quiet_nights} night{s}"
        return self.state


def _split(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def list_bugs(
    db: sqlite3.Connection,
    state: str | None = "open",
    tree: str | None = None,
    arch: str | None = None,
    since: str | None = None,
) -> list[BugRow]:
    """Bugs, open first, newest first. `since`: last seen on or after this run id prefix or
    date (YYYY-MM-DD or YYYYmmdd); `tree` matches a tree with or without its series."""
    where, args = ["1"], []
    if state and state != "all":
        where.append("state = ?")
        args.append(state)
    if arch:
        where.append("EXISTS (SELECT 1 FROM bug_cells c WHERE c.bug_id = bugs.id AND c.arch = ?)")
        args.append(arch)
    if tree:
        where.append(
            "EXISTS (SELECT 1 FROM bug_cells c WHERE c.bug_id = bugs.id AND "
            "(c.tree = ? OR c.tree LIKE ? ESCAPE '\\'))"
        )
        args += [tree, _like_prefix(tree) + "+%"]
    if since:
        where.append("last_run >= ?")
        args.append(since.replace("-", ""))
    rows = db.execute(
        f"SELECT * FROM bugs WHERE {' AND '.join(where)} "
        "ORDER BY state != 'open', first_run DESC, id DESC",
        args,
    ).fetchall()
    return [BugRow.of(r) for r in rows]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get(db: sqlite3.Connection, bug_id: int) -> BugRow:
    row = db.execute("SELECT * FROM bugs WHERE id = ?", (bug_id,)).fetchone()
    if row is None:
        top = db.execute("SELECT MAX(id) FROM bugs").fetchone()[0]
        known = f"bugs are #1 to #{top}" if top else "the store has no bugs yet"
        raise UserError(
            f"no bug #{bug_id} in the store ({known})",
            hint="`kto bugs list --state all` lists them",
        )
    return BugRow.of(row)


@dataclass
class Cell:
    cell: str
    arch: str
    tree: str
    first_run: str
    last_run: str
    rate: Rate


@dataclass
class Incident:
    run_id: str
    job: str
    path: str
    title: str
    kind: str
    status: str
    commit: str | None
    finding: int | None
    first_line: int | None
    waived: bool


@dataclass
class Best:
    path: str
    job: str
    run_id: str
    finding: int | None
    title: str
    reproducer: str | None


@dataclass
class Detail:
    bug: BugRow
    titles: list[tuple[str, str]]  # (title, role)
    cells: list[Cell]
    strip: list[tuple[str, Rate]]  # (run id, fail:runs in the bug's cells), oldest first
    incidents: list[Incident]  # newest first, at most `limit`
    events: list[dict[str, Any]]
    dups: list[int]
    best: Best | None
    first: Incident | None = None
    last: Incident | None = None
    returns: list[int] = field(default_factory=list)  # bugs that are this one coming back


def _incident(r: sqlite3.Row) -> Incident:
    return Incident(
        run_id=r["run_id"],
        job=r["name"],
        path=r["path"],
        title=r["title"],
        kind=r["kind"],
        status=r["status"],
        commit=r["git_commit"],
        finding=r["finding"],
        first_line=r["first_line"],
        waived=bool(r["waived"]),
    )


def detail(db: sqlite3.Connection, bug_id: int, limit: int = 20) -> Detail:
    bug = get(db, bug_id)
    ids = family_ids(db, bug)
    marks = ",".join("?" * len(ids))
    titles = [
        (r["title"], r["role"])
        for r in db.execute(
            "SELECT title, role FROM titles WHERE bug_id = ? "
            "ORDER BY role != 'primary', role != 'together', title",
            (bug_id,),
        )
    ]
    cells = [
        Cell(
            r["cell"],
            r["arch"],
            r["tree"],
            r["first_run"],
            r["last_run"],
            Rate(r["fails"], r["runs"]),
        )
        for r in db.execute("SELECT * FROM bug_cells WHERE bug_id = ? ORDER BY cell", (bug_id,))
    ]
    select = (
        "SELECT j.run_id, j.name, j.path, j.status, j.git_commit, i.title, i.kind, i.finding, "
        "i.first_line, i.waived FROM incidents i JOIN jobs j ON j.id = i.job_id "
    )
    incidents = [
        _incident(r)
        for r in db.execute(
            f"{select} WHERE i.bug_id IN ({marks}) ORDER BY j.run_id DESC, j.name, i.id LIMIT ?",
            (*ids, limit),
        )
    ]

    def one(job_id: int | None) -> Incident | None:
        if job_id is None:
            return None
        r = db.execute(f"{select} WHERE j.id = ? ORDER BY i.id LIMIT 1", (job_id,)).fetchone()
        return _incident(r) if r else None

    raw = db.execute("SELECT first_job, last_job FROM bugs WHERE id = ?", (bug_id,)).fetchone()
    events = [
        dict(r)
        for r in db.execute(
            "SELECT at, who, action, reason, run_id FROM events WHERE bug_id = ? ORDER BY id",
            (bug_id,),
        )
    ]
    returns = [
        int(r[0])
        for r in db.execute("SELECT id FROM bugs WHERE prev_id = ? ORDER BY id", (bug_id,))
    ]
    return Detail(
        bug=bug,
        titles=titles,
        cells=cells,
        strip=strip(db, bug_id, ids + ancestors(db, bug)),
        incidents=incidents,
        events=events,
        dups=[i for i in ids if i != bug_id],
        best=_best(db, bug.best_incident),
        first=one(raw["first_job"]),
        last=one(raw["last_job"]),
        returns=returns,
    )


def family_ids(db: sqlite3.Connection, bug: BugRow) -> list[int]:
    if bug.state == "dup":
        return [bug.id]
    rows = db.execute("SELECT id FROM bugs WHERE dup_of = ? AND state = 'dup'", (bug.id,))
    return [bug.id, *(int(r[0]) for r in rows)]


def ancestors(db: sqlite3.Connection, bug: BugRow) -> list[int]:
    """The closed bugs this one is the return of ("title (2)" -> "title"), newest first:
    their incidents are the same title's history in the strip."""
    out: list[int] = []
    prev = bug.prev_id
    while prev is not None and prev not in out and len(out) < 100:
        out.append(int(prev))
        row = db.execute("SELECT prev_id FROM bugs WHERE id = ?", (prev,)).fetchone()
        prev = row["prev_id"] if row is not None else None
    return out


def strip(
    db: sqlite3.Connection, bug_id: int, ids: list[int], runs: int = STRIP
) -> list[tuple[str, Rate]]:
    """fail:runs of the bug in its cells, per run that judged one of them, oldest first.
    `ids`: the bugs whose incidents count (the bug, its dups, the bugs it is the return of)."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT j.run_id, COUNT(*) AS runs, SUM(EXISTS (SELECT 1 FROM incidents i "
        f"WHERE i.job_id = j.id AND i.bug_id IN ({marks}))) AS fails FROM jobs j "
        f"WHERE j.judged AND j.head AND j.cell IN (SELECT cell FROM bug_cells WHERE bug_id = ?) "
        f"GROUP BY j.run_id ORDER BY j.run_id DESC LIMIT ?",
        (*ids, bug_id, runs),
    ).fetchall()
    return [(r["run_id"], Rate(int(r["fails"]), int(r["runs"]))) for r in reversed(rows)]


def _best(db: sqlite3.Connection, incident: int | None) -> Best | None:
    if incident is None:
        return None
    r = db.execute(
        "SELECT j.path, j.name, j.run_id, j.reproducer, i.finding, i.title FROM incidents i "
        "JOIN jobs j ON j.id = i.job_id WHERE i.id = ?",
        (incident,),
    ).fetchone()
    if r is None:
        return None
    return Best(r["path"], r["name"], r["run_id"], r["finding"], r["title"], r["reproducer"])


def counts(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute("SELECT state, COUNT(*) FROM bugs GROUP BY state")
    return {str(r[0]): int(r[1]) for r in rows}
