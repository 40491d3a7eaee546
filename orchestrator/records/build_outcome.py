"""build-outcome.json: how a build asked for by a driver ended, as data.

`kto job SPEC DIR --build-only` (the matrix's build task) writes it; the driver reads it to
boot the kernel or to give each job that needed it the same MISS or ERROR record, without
parsing a log or mapping exit codes itself: the status was decided where the build failed
(job.runner.stopped_status).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.errors import KtoError
from orchestrator.records import exits
from orchestrator.records.verdict import Status

BUILD_OUTCOME = "build-outcome.json"


@dataclass(frozen=True)
class BuildOutcome:
    status: Status  # PASS (a kernel), MISS (series or kernel broken), ERROR (the host's)
    kernel_dir: str | None = None  # the build cache entry (build.json and the image)
    key: str | None = None
    error: dict[str, Any] = field(default_factory=dict)  # KtoError.to_dict() when not PASS

    @property
    def exit_code(self) -> int:
        error = int(self.error.get("exit_code") or 3) if self.error else None
        return exits.of_job(self.status, error)

    def failure(self) -> KtoError:
        return KtoError.from_dict(self.error)

    def save(self, folder: Path) -> None:
        atomic.write_json(folder / BUILD_OUTCOME, {**asdict(self), "status": str(self.status)})

    @classmethod
    def load(cls, folder: Path) -> BuildOutcome | None:
        """None when there is none or it is unreadable (the build process died first)."""
        try:
            doc = json.loads((folder / BUILD_OUTCOME).read_text())
            return cls(
                Status(doc["status"]),
                doc.get("kernel_dir"),
                doc.get("key"),
                dict(doc.get("error") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
