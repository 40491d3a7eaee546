"""Run directories: results/<run-id>/<job>/, run ids sortable by time, results/latest."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from .paths import results_dir
from .runrecord import start


def new_run_dir(label: str, root: Path | None = None) -> Path:
    root = root or results_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"
        path = root / run_id
        try:
            path.mkdir()  # never reuse (and so never overwrite) an old run
            break
        except FileExistsError:
            continue
    start(path, label)  # run.json first: even a run killed at once says what it was
    _point_latest(root, path)
    return path


def _point_latest(root: Path, target: Path) -> None:
    tmp = root / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, root / "latest")
