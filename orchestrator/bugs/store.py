"""The bug store's file: where it lives, how it is opened, how writers share it.

Several kto processes write at once (a matrix, a bisect and `kto report` finishing at the
same time): the database is in WAL mode (readers never block the writer), every write is one
short `BEGIN IMMEDIATE` transaction (a writer takes the lock up front instead of failing on
upgrade half-way), and a writer waits up to BUSY_SECONDS for another's transaction. Every
SQLite or file-system failure becomes an InfraError naming the file (exit 3).

WAL needs a local file system (its shared-memory index does not work over NFS): keep
KTO_RESULTS local, or the store on a local disk.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator import __version__
from orchestrator.bugs import schema
from orchestrator.errors import InfraError
from orchestrator.paths import results_dir

DB_NAME = "bugs.sqlite"  # beside the run directories, in the results root
HTML_NAME = "bugs.html"  # the dashboard, rewritten with every run
BUSY_SECONDS = 60.0  # a night's ingest is milliseconds; minutes mean a stuck process


def db_path(root: Path | None = None) -> Path:
    return (root or results_dir()) / DB_NAME


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def store_error(path: Path, exc: BaseException) -> InfraError:
    """A store failure as kto reports it: which file, why, what to do."""
    why = str(exc) or type(exc).__name__
    hint = None
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in why:
        hint = (
            f"move {path} aside: the next run (or `kto bugs list`) imports the run "
            "directories into a new store; bug states set by hand are lost"
        )
    elif "locked" in why or "busy" in why:
        hint = f"another kto held {path} for {BUSY_SECONDS:.0f} s: is one stuck? (fuser {path})"
    elif isinstance(exc, OSError | sqlite3.OperationalError):
        hint = f"make {path.parent} writable and local (WAL needs a local file system)"
    return InfraError(f"cannot write {path}: {why}", hint=hint)


class Store:
    """An open store. `write()` is the only way to change it; reads need no transaction."""

    def __init__(self, path: Path, conn: sqlite3.Connection, created: bool) -> None:
        self.path = path
        self.db = conn
        self.created = created  # this process made the file: import the existing runs

    @property
    def root(self) -> Path:
        return self.path.parent

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; rolled back on any error."""
        with self.errors():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise  # stdout's reader went away (`kto bugs | head`): not the store's fault
        except (sqlite3.Error, OSError) as exc:
            raise store_error(self.path, exc) from exc

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_store(root: Path | None = None) -> Store:
    """The store of a results root, created and migrated as needed."""
    path = db_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        raise store_error(path, exc) from exc
    store = Store(path, conn, created)
    try:
        with store.errors():
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            _wal(conn)
            # NORMAL sync is durable in WAL but for the last transactions before a power
            # cut, which the run dirs can replay.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(store)
    except BaseException:
        conn.close()
        raise
    return store


def _wal(conn: sqlite3.Connection) -> None:
    """WAL mode: readers and one writer at once. Switching a new file to it needs the file
    to itself, and SQLite answers "locked" at once there instead of calling the busy
    handler (several kto processes creating the store together): so retry here."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode is {mode}, WAL is not possible here")
        return


def migrate(store: Store, migrations: list[list[str]] | None = None) -> int:
    """Apply the migrations the file has not seen; returns the version it is at now."""
    steps = schema.MIGRATIONS if migrations is None else migrations
    version = int(store.db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(steps):
        raise InfraError(
            f"{store.path} has schema version {version}, newer than this kto's ({len(steps)})",
            hint="use the kto that wrote it, or point KTO_RESULTS elsewhere",
        )
    if version == len(steps):
        return version
    with store.write() as db:
        # Another process may have migrated while this one waited for the lock.
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        for n in range(version, len(steps)):
            for statement in steps[n]:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {len(steps)}")
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?), ('created_by', ?)",
            (now(), f"kto {__version__} pid {os.getpid()}"),
        )
    return len(steps)
