"""Triage by hand: close (fixed), invalid, dup, undup, reopen; each recorded with who, when
and why in the bug's event log, and each a KCIDB issue version of its own.

Every action is one write transaction that checks, changes and recomputes, so a matrix
ingesting at the same moment sees the bug before or after, never half of it.
"""

from __future__ import annotations

import sqlite3

from orchestrator.bugs.known import display_title
from orchestrator.bugs.lifecycle import event, refresh
from orchestrator.bugs.matching import new_bug
from orchestrator.bugs.store import Store, now
from orchestrator.errors import UserError

CLOSED = ("fixed", "invalid")


def _bug(db: sqlite3.Connection, bug_id: int) -> sqlite3.Row:
    from orchestrator.bugs.query import get

    get(db, bug_id)  # the UserError for an unknown id
    return db.execute("SELECT * FROM bugs WHERE id = ?", (bug_id,)).fetchone()


def _name(row: sqlite3.Row) -> str:
    return f"#{row['id']} {display_title(row['title'], int(row['seq']))}"


def _set_state(
    db: sqlite3.Connection, row: sqlite3.Row, state: str, who: str, reason: str, **extra: object
) -> None:
    closing = state in CLOSED
    fields = {
        "state": state,
        "closed_reason": reason if closing else None,
        "closed_at": now() if closing else None,
        "closed_by": who if closing else None,
        **extra,
    }
    sets = ", ".join(f"{k} = ?" for k in fields)
    db.execute(
        f"UPDATE bugs SET {sets}, version = version + 1 WHERE id = ?",
        (*fields.values(), row["id"]),
    )


def _close(store: Store, bug_id: int, who: str, state: str, reason: str, **extra: object) -> str:
    """A triage decision that closes a bug (fixed, invalid): checked, recorded with who and
    why, its numbers refreshed, in one write."""
    with store.write() as db:
        row = _bug(db, bug_id)
        _not_dup(row, "close" if state == "fixed" else f"mark {state}")
        if row["state"] == state:
            was = f" ({row['closed_reason']})" if state == "fixed" else ""
            raise UserError(f"{_name(row)} is already {state}{was}")
        _set_state(db, row, state, who, reason, **extra)
        event(db, bug_id, state, who, reason, None)
        refresh(db, {bug_id})
    return f"{_name(row)}: {state}"


def close(store: Store, bug_id: int, who: str, reason: str, commit: str | None = None) -> str:
    """Fixed (by a commit, when given)."""
    why = f"{reason} (fixed by {commit})" if commit else reason
    return _close(store, bug_id, who, "fixed", why, fixed_commit=commit)


def fixed_by(store: Store, bug_id: int, commit: str, who: str, reason: str) -> str:
    """A fix bisection named the commit: an open bug is closed as fixed by it; a bug
    already fixed (by silence, or by hand without a commit) gets the commit."""
    with store.write() as db:
        row = _bug(db, bug_id)
        _not_dup(row, "close")
        if row["state"] == "open":
            _set_state(db, row, "fixed", who, f"{reason} (fixed by {commit})", fixed_commit=commit)
        elif row["state"] == "fixed":
            db.execute(
                "UPDATE bugs SET fixed_commit = ?, version = version + 1 WHERE id = ?",
                (commit, bug_id),
            )
        else:
            raise UserError(f"{_name(row)} is {row['state']}: not marking a fix for it")
        event(db, bug_id, "fixed-by", who, f"{reason}: {commit}", None)
        refresh(db, {bug_id})
    return f"{_name(row)}: fixed by {commit[:12]}"


def invalid(store: Store, bug_id: int, who: str, reason: str) -> str:
    return _close(store, bug_id, who, "invalid", reason)


def reopen(store: Store, bug_id: int, who: str, reason: str) -> str:
    with store.write() as db:
        row = _bug(db, bug_id)
        if row["state"] == "open":
            raise UserError(f"{_name(row)} is open already")
        _not_dup(row, "reopen")
        other = db.execute(
            "SELECT * FROM bugs WHERE title = ? AND state = 'open' AND id != ?",
            (row["title"], bug_id),
        ).fetchone()
        if other is not None:
            raise UserError(
                f"{_name(other)} is open with the same title: findings would go there",
                hint=f"mark it a duplicate first: kto bugs dup {other['id']} {bug_id} --reason ...",
            )
        _set_state(db, row, "open", who, reason, fixed_commit=None)
        event(db, bug_id, "reopen", who, reason, None)
        refresh(db, {bug_id})
    return f"{_name(row)}: open"


def dup(store: Store, bug_id: int, of: int, who: str, reason: str) -> str:
    """bug_id is a duplicate of `of`: its incidents count as `of`'s, and the reports show
    its findings as `of`. A dup of a dup points at the end of the chain."""
    with store.write() as db:
        row = _bug(db, bug_id)
        target = _bug(db, of)
        if target["state"] == "dup" and target["dup_of"] is not None:
            target = _bug(db, int(target["dup_of"]))
        if int(target["id"]) == bug_id:
            raise UserError(f"#{bug_id} cannot be a duplicate of itself (#{of} is its dup)")
        before = row["dup_of"] if row["state"] == "dup" else None
        _set_state(db, row, "dup", who, reason, dup_of=int(target["id"]))
        # Its own duplicates now belong to the target: one level, always.
        db.execute(
            "UPDATE bugs SET dup_of = ?, version = version + 1 WHERE dup_of = ? AND state = 'dup'",
            (int(target["id"]), bug_id),
        )
        event(db, bug_id, "dup", who, f"dup of #{target['id']}: {reason}", None)
        event(db, int(target["id"]), "dup", who, f"#{bug_id} marked its dup: {reason}", None)
        refresh(db, {bug_id, int(target["id"]), *([int(before)] if before else [])})
    return f"{_name(row)}: dup of {_name(target)}"


def undup(store: Store, bug_id: int, who: str, reason: str, title: str | None = None) -> str:
    """Without a title: a dup is its own bug again (open). With one: that secondary title of
    the bug, and its incidents, become a new bug of their own."""
    if title:
        return _split(store, bug_id, title, who, reason)
    with store.write() as db:
        row = _bug(db, bug_id)
        if row["state"] != "dup":
            raise UserError(
                f"{_name(row)} is not a duplicate ({row['state']})",
                hint="to split a title off it into its own bug: kto bugs undup N --title TITLE",
            )
        target = int(row["dup_of"])
        _set_state(db, row, "open", who, reason, dup_of=None)
        event(db, bug_id, "undup", who, f"no longer a dup of #{target}: {reason}", None)
        event(db, target, "undup", who, f"#{bug_id} is its own bug again: {reason}", None)
        refresh(db, {bug_id, target})
    return f"{_name(row)}: open (no longer a dup of #{target})"


def _split(store: Store, bug_id: int, title: str, who: str, reason: str) -> str:
    from orchestrator.parser.titles import normalise

    with store.write() as db:
        row = _bug(db, bug_id)
        roles = dict(
            db.execute("SELECT title, role FROM titles WHERE bug_id = ?", (bug_id,)).fetchall()
        )
        key = title if title in roles else normalise(title)
        if key not in roles:
            listed = "\n  ".join(sorted(roles))
            raise UserError(
                f"{_name(row)} has no title {key!r}; its titles:\n  {listed}",
                hint="give one of them exactly (quoted)",
            )
        if roles[key] == "primary":
            raise UserError(
                f"{key!r} is {_name(row)}'s own title",
                hint="split off one of its secondary titles, or mark the bug invalid",
            )
        db.execute("DELETE FROM titles WHERE bug_id = ? AND title = ?", (bug_id, key))
        new = new_bug(db, key, None)
        db.execute(
            "UPDATE incidents SET bug_id = ? WHERE bug_id = ? AND title = ?", (new, bug_id, key)
        )
        db.execute("UPDATE bugs SET version = version + 1 WHERE id = ?", (bug_id,))
        event(db, bug_id, "split", who, f"{key!r} is now #{new}: {reason}", None)
        event(db, new, "split", who, f"split off #{bug_id}: {reason}", None)
        refresh(db, {bug_id, new})
    return f"#{new} {key}: split off {_name(row)}"


def _not_dup(row: sqlite3.Row, what: str) -> None:
    if row["state"] == "dup":
        raise UserError(
            f"#{row['id']} is a duplicate of #{row['dup_of']}: {what} that one",
            hint=f"or `kto bugs undup {row['id']}` first",
        )
