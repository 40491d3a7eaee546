"""build.json: the record of one cached kernel build, read and written only here.

`kto boot` reads it to find the kernel image in a build directory and to learn what the
kernel was built from; `kto build` writes it last, atomically, so a directory with a PASS
record is always complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.records.layout import BUILD_RECORD


@dataclass
class BuildResult:
    """A built (or cached) kernel: its build.json record and the folder holding it."""

    record: dict[str, Any]
    dir: Path

    @property
    def kernel(self) -> Path:
        return self.dir / self.record["artifacts"]["kernel"]["path"]

    @property
    def cache_hit(self) -> bool:
        return bool(self.record.get("cache_hit"))


def load_record(build_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((build_dir / BUILD_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def write_record(build_dir: Path, record: dict[str, Any]) -> None:
    atomic.write_json(build_dir / BUILD_RECORD, record)


def fragment_names(record: dict[str, Any] | None) -> list[str] | None:
    """Fragment names a build record says the kernel has (None: unknown)."""
    if not record:
        return None
    frags = (record.get("inputs") or {}).get("fragments")
    if frags is None:
        return None
    return [f["name"] if isinstance(f, dict) else Path(str(f)).stem for f in frags]


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What a job record keeps of its kernel's build record; `compiled_s`: this job's own
    compile time (0 on a cache hit), which the bisect and matrix summaries add up."""
    out = {k: record.get(k) for k in ("key", "reproducer", "inputs", "debug", "kto_version")}
    # The tools that made the kernel: a night whose compiler changed says so (matrix history).
    out["compiler"] = (record.get("toolchain") or {}).get("version")
    out["tuxmake"] = (record.get("tuxmake") or {}).get("version")
    hit = bool(record.get("cache_hit"))
    out["cache_hit"] = hit
    out["compiled_s"] = 0.0 if hit else (record.get("durations") or {}).get("total")
    return out
