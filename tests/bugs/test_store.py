"""The store's file: several kto processes writing at once (a new store included: its
creation and first-use import race too), schema versions and migrations."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.bugs import schema
from orchestrator.bugs import store as store_mod
from orchestrator.bugs.store import migrate, open_store
from orchestrator.cli import main
from orchestrator.errors import InfraError

from .nights import PANIC, SEED002, SEED003, night, rid

REPO = Path(__file__).resolve().parents[2]

# Each process sleeps until the same instant, then ingests: the writes overlap for real.
_WRITER = """
import sys, time
from pathlib import Path
from orchestrator.bugs.record import record_run
from orchestrator.records.model import load_run
start, runs = float(sys.argv[1]), sys.argv[2:]
loaded = [load_run(Path(r)) for r in runs]
time.sleep(max(0.0, start - time.time()))
for run in loaded:
    record_run(run)
"""


def _writers(runs: list[list[Path]]) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 1.5  # the interpreters and imports are up by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(start), *map(str, batch)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for batch in runs
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _count(root: Path, sql: str) -> int:
    with sqlite3.connect(root / "bugs.sqlite") as db:
        return int(db.execute(sql).fetchone()[0])


def test_concurrent_writers_on_a_new_store(tmp_path: Path) -> None:
    # Four nights finish at once (say a matrix, a bisect and two `kto report`s), on a results
    # root with no store yet: each process creates it, imports what is there and ingests.
    nights = [
        night(
            tmp_path,
            rid(day),
            {"x86_64.onoff": [SEED003, None], "arm64.onoff": [SEED003], "x86_64.kvm": [SEED002]},
        )
        for day in (1, 2, 3, 4)
    ]
    # Each process also ingests one other night again: the same run from two processes.
    batches = [[n, nights[(i + 1) % 4]] for i, n in enumerate(nights)]
    for res in _writers(batches):
        assert res.returncode == 0, res.stderr[-3000:]
    root = tmp_path
    assert _count(root, "SELECT COUNT(*) FROM runs") == 4
    assert _count(root, "SELECT COUNT(*) FROM jobs") == 4 * 4
    # One bug per problem, whatever process saw it first; no incident twice.
    assert _count(root, "SELECT COUNT(*) FROM bugs") == 2
    assert _count(root, "SELECT COUNT(*) FROM incidents") == 4 * (2 * 3 + 1)
    assert _count(root, "SELECT fails FROM bugs WHERE title = 'WARNING in __mmdrop'") == 8
    assert _count(root, "PRAGMA user_version") == schema.VERSION
    with sqlite3.connect(root / "bugs.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_reader_is_never_blocked_by_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path))
    night(tmp_path, rid(1), {"x86_64.boot": [PANIC]})
    assert main(["bugs"]) == 0  # creates the store, imports the night
    capsys.readouterr()
    monkeypatch.setattr(store_mod, "BUSY_SECONDS", 0.2)
    holder = sqlite3.connect(tmp_path / "bugs.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE bugs SET closed_reason = 'mid-write' WHERE id = 1")
    try:
        t0 = time.monotonic()
        assert main(["bugs", "show", "1"]) == 0
        assert time.monotonic() - t0 < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out = capsys.readouterr().out
    assert out.startswith("#1 kernel panic: sysrq triggered crash  [open]")
    assert "mid-write" not in out  # the reader saw the last committed state


def test_a_new_migration_is_applied_once_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path))
    night(tmp_path, rid(1), {"x86_64.boot": [PANIC]})
    assert main(["bugs"]) == 0
    later = [
        *schema.MIGRATIONS,
        ["ALTER TABLE bugs ADD COLUMN note TEXT", "UPDATE bugs SET note = 'x'"],
    ]
    with open_store(tmp_path) as store:
        assert migrate(store, later) == len(later)
        assert migrate(store, later) == len(later)  # nothing left to do
        rows = store.db.execute("SELECT title, note FROM bugs").fetchall()
    assert [tuple(r) for r in rows] == [("kernel panic: sysrq triggered crash", "x")]
    assert _count(tmp_path, "PRAGMA user_version") == len(later)


def test_a_store_from_a_newer_kto_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path))
    assert main(["bugs"]) == 0
    with sqlite3.connect(tmp_path / "bugs.sqlite") as db:
        db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    with pytest.raises(InfraError, match="newer than this kto"):
        open_store(tmp_path)
    assert main(["bugs"]) == 3
    assert f"{tmp_path / 'bugs.sqlite'} has schema version {schema.VERSION + 1}" in (
        capsys.readouterr().err
    )


def test_the_store_is_where_kto_results_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "elsewhere"))
    assert main(["bugs"]) == 0
    assert (tmp_path / "elsewhere" / "bugs.sqlite").is_file()
    assert os.listdir(tmp_path) == ["elsewhere"]
