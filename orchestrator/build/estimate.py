"""Progress of a long kernel build a person can read: percent and ETA, from the last build.

Each (tree, arch) build directory keeps what its last builds cost: for a build from an empty
directory (cold) the number of object files it ended with and its time, for an incremental
one its time. A cold build's percent is objects now / objects last time (compile time per
object is even enough on a kernel); an incremental one's is elapsed / last time. With no
history the ticker says so and shows the log's last line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from orchestrator import atomic, progress

HISTORY = "progress.json"


def count_objects(build_dir: Path) -> int:
    n = 0
    for _root, _dirs, files in os.walk(build_dir):
        n += sum(1 for f in files if f.endswith(".o"))
    return n


class BuildProgress:
    def __init__(self, build_dir: Path, history_dir: Path) -> None:
        self.build_dir = build_dir
        self.history_path = history_dir / HISTORY
        self.cold = not (build_dir / "vmlinux").exists()
        self.kind = "cold" if self.cold else "incremental"
        self.start = time.monotonic()
        self.last = self._history().get(self.kind) or {}

    def _history(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.history_path.read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def fraction(self) -> float | None:
        """How far the build is (0..0.99), or None without a comparable earlier build."""
        elapsed = time.monotonic() - self.start
        objects = self.last.get("objects")
        if self.cold and isinstance(objects, int) and objects > 0:
            return min(0.99, count_objects(self.build_dir) / objects)
        seconds = self.last.get("seconds")
        if isinstance(seconds, int | float) and seconds > 0:
            return min(0.99, elapsed / seconds)
        return None

    def ticker(self, tail: str = "") -> str:
        frac = self.fraction()
        if frac is None:
            return f"(no earlier {self.kind} build of this tree+arch to estimate from) {tail}"
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0.01 else float(self.last.get("seconds") or 0)
        return f"{frac:.0%}, ~{progress.fmt_secs(max(0.0, eta))} left ({self.kind}) {tail}"

    def done(self) -> None:
        entry: dict[str, Any] = {"seconds": max(0.1, round(time.monotonic() - self.start, 1))}
        if self.cold:
            entry["objects"] = count_objects(self.build_dir)
        doc = self._history()
        doc[self.kind] = entry
        atomic.write_json(self.history_path, doc)
