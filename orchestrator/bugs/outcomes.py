"""What the bot did about a bug, kept on the bug: its bisections (for the culprit, or for
the fix of a bug that stopped showing) and the fixes tested against it, plus the bug's
stable id, the one a mail's `Closes:` tag carries.

The rows are the bot's record; the runs themselves stay in their run directories (each
bisection and fix test is a run of its own, `run_id`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.bugs.lifecycle import event
from orchestrator.bugs.store import HTML_NAME, Store, now


@dataclass
class Bisection:
    bug_id: int
    kind: str  # culprit | fix
    run_id: str
    cell: str
    good: str
    bad: str
    status: str = "running"  # interrupted, found, not-found, refused
    night: str | None = None
    commit: str | None = None
    subject: str | None = None
    author: str | None = None
    confidence: float | None = None
    flags: list[str] = field(default_factory=list)
    mail: str | None = None
    started: str = ""
    finished: str | None = None
    id: int | None = None

    @property
    def mailable(self) -> bool:
        """A culprit worth a stranger's time: found, with no reason to doubt it."""
        return self.kind == "culprit" and self.status == "found" and not self.flags

    @classmethod
    def of(cls, r: sqlite3.Row) -> Bisection:
        return cls(
            id=int(r["id"]),
            bug_id=int(r["bug_id"]),
            kind=str(r["kind"]),
            run_id=str(r["run_id"]),
            night=r["night"],
            cell=str(r["cell"]),
            good=str(r["good"]),
            bad=str(r["bad"]),
            status=str(r["status"]),
            commit=r["commit_sha"],
            subject=r["subject"],
            author=r["author"],
            confidence=r["confidence"],
            flags=list(json.loads(r["flags"] or "[]")),
            mail=r["mail"],
            started=str(r["started"]),
            finished=r["finished"],
        )


@dataclass
class FixTest:
    bug_id: int
    run_id: str
    patches: str
    verdict: str  # gone, present, inconclusive, error
    fails: int
    runs: int
    control_fails: int
    control_runs: int
    confidence: float | None = None
    mail: str | None = None
    created: str = ""
    id: int | None = None

    @classmethod
    def of(cls, r: sqlite3.Row) -> FixTest:
        return cls(**{k: r[k] for k in r.keys()})  # noqa: SIM118 (sqlite3.Row)


def save_bisection(store: Store, b: Bisection, who: str = "kto") -> int:
    """Insert or update one bisection (by id); a change of status is an event on the bug."""
    cols: dict[str, Any] = {
        "bug_id": b.bug_id,
        "kind": b.kind,
        "run_id": b.run_id,
        "night": b.night,
        "cell": b.cell,
        "good": b.good,
        "bad": b.bad,
        "status": b.status,
        "commit_sha": b.commit,
        "subject": b.subject,
        "author": b.author,
        "confidence": b.confidence,
        "flags": json.dumps(b.flags),
        "mail": b.mail,
        "started": b.started or now(),
        "finished": b.finished,
    }
    with store.write() as db:
        old = None
        if b.id is not None:
            old = db.execute("SELECT status FROM bisections WHERE id = ?", (b.id,)).fetchone()
        if old is None:
            marks = ", ".join("?" * len(cols))
            cur = db.execute(
                f"INSERT INTO bisections ({', '.join(cols)}) VALUES ({marks})",
                tuple(cols.values()),
            )
            b.id = int(cur.lastrowid or 0)
        else:
            sets = ", ".join(f"{k} = ?" for k in cols)
            db.execute(f"UPDATE bisections SET {sets} WHERE id = ?", (*cols.values(), b.id))
        if old is None or old["status"] != b.status:
            event(db, b.bug_id, f"bisect-{b.kind}", who, describe_bisection(b), b.run_id)
    b.started = str(cols["started"])
    assert b.id is not None
    return b.id


def describe_bisection(b: Bisection) -> str:
    what = "culprit" if b.kind == "culprit" else "fix"
    span = f"{b.good[:12]}..{b.bad[:12]} in {b.cell}"
    if b.status == "found" and b.commit:
        conf = f", {b.confidence:.2%}" if b.confidence is not None else ""
        doubt = f"; flagged: {'; '.join(b.flags)}" if b.flags else ""
        return f"{what} {b.commit[:12]} ({b.subject}){conf}{doubt} [{span}]"
    return f"{what} bisect {b.status} [{span}]"


def bisections(db: sqlite3.Connection, bug_id: int, kind: str | None = None) -> list[Bisection]:
    sql = "SELECT * FROM bisections WHERE bug_id = ?"
    args: tuple[Any, ...] = (bug_id,)
    if kind:
        sql += " AND kind = ?"
        args += (kind,)
    return [Bisection.of(r) for r in db.execute(sql + " ORDER BY id", args)]


def save_fix_test(store: Store, t: FixTest, who: str = "kto") -> int:
    cols = {k: v for k, v in t.__dict__.items() if k != "id"}
    cols["created"] = t.created or now()
    with store.write() as db:
        marks = ", ".join("?" * len(cols))
        cur = db.execute(
            f"INSERT INTO fix_tests ({', '.join(cols)}) VALUES ({marks})", tuple(cols.values())
        )
        t.id = int(cur.lastrowid or 0)
        reason = (
            f"{t.patches}: {t.verdict} ({t.fails}:{t.runs} with the fix, "
            f"{t.control_fails}:{t.control_runs} without)"
        )
        event(db, t.bug_id, "fix-tested", who, reason, t.run_id)
    t.created = str(cols["created"])
    return int(t.id)


def fix_tests(db: sqlite3.Connection, bug_id: int) -> list[FixTest]:
    rows = db.execute("SELECT * FROM fix_tests WHERE bug_id = ? ORDER BY id", (bug_id,))
    return [FixTest.of(r) for r in rows]


def extid(store: Store, bug_id: int) -> str:
    """The bug's stable id: the same for the life of this store, different in another
    store that happens to number its bugs alike (syzbot's extid plays this part)."""
    origin = f"{store.meta('created')}/{store.meta('created_by')}/{bug_id}"
    return hashlib.sha256(origin.encode()).hexdigest()[:20]


def bug_url(store: Store, bug_id: int, template: str = "") -> str:
    """Where a recipient reads the bug: the configured address (configs/bot.yaml,
    mail.bug_url, with {extid} and {id}), else the local dashboard's anchor."""
    ext = extid(store, bug_id)
    if template:
        return template.format(extid=ext, id=bug_id)
    return f"{(store.root / HTML_NAME).resolve().as_uri()}#bug-{ext}"


def dashboard_anchor(store: Store, bug_id: int) -> str:
    return f"bug-{extid(store, bug_id)}"


def mail_dir(night_or_run: Path) -> Path:
    """Where the bot's mails of a run go (beside `kto report --mail`'s)."""
    from orchestrator.records.layout import MAIL_DIR

    return night_or_run / MAIL_DIR
