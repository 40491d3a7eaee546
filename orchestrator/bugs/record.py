"""The end of every run: ingest it into its results root's store (importing the run dirs
already there on first use), rewrite bugs.html, and say which bug each finding is.

Called by results/reports.py for `kto run`, the matrix, bisect and `kto report` alike.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import atomic, progress
from orchestrator.bugs import dashboard
from orchestrator.bugs.ingest import Ingested, ingest
from orchestrator.bugs.known import Known, known_for_run
from orchestrator.bugs.store import HTML_NAME, Store, open_store
from orchestrator.records.model import Run, list_runs, load_run

IMPORTED = "imported"  # meta key: the run dirs that predate the store are in it


def import_runs(store: Store, current: Run | None = None) -> list[Ingested]:
    """Every run directory of the store's root, oldest first (the bug lifecycle replays in
    order); `current` is used as loaded (its waivers applied) instead of read again."""
    ids = list_runs(store.root)
    if current is not None and current.id not in ids:
        ids.append(current.id)
    ids.sort()
    if len(ids) > 1:
        progress.say(f"bugs: importing {len(ids)} run(s) of {store.root} into {store.path.name}")
    out = []
    for rid in ids:
        run = current if current is not None and rid == current.id else load_run(store.root / rid)
        out.append(ingest(store, run))
    with store.write() as db:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'yes')", (IMPORTED,))
    return out


def ensure_imported(store: Store, current: Run | None = None) -> bool:
    """First use of a store: import the results root's runs. True if it did."""
    with store.errors():
        if store.meta(IMPORTED):
            return False
    import_runs(store, current)
    return True


def record_run(run: Run) -> Known:
    """Ingest `run` into the store of its results root and rewrite the dashboard."""
    with open_store(run.path.parent) as store:
        if not ensure_imported(store, run):
            ingest(store, run)
        with store.errors():
            known = known_for_run(store.db, store.path, run.id)
        write_dashboard(store)
    return known


def write_dashboard(store: Store) -> Path:
    path = store.root / HTML_NAME
    with store.errors():
        html = dashboard.render(store.db, store.root)
    atomic.write_text(path, html, durable=False)
    return path
