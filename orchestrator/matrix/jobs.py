"""One job of a matrix run as the executors (local pool, Dask cluster) take it: the cell it
belongs to, its JobSpec resolved once, its folder in the run dir, the fields its job.json
gets. Its own module so the executors and the driver that feeds them share it without
importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.job.plan import JobPlan
from orchestrator.matrix.spec import Cell
from orchestrator.records.spec import JobSpec


@dataclass
class MatrixJob:
    cell: Cell | None  # None: a job of another driver (a bisect probe)
    spec: JobSpec
    plan: JobPlan
    folder: str
    extra: dict[str, Any]
