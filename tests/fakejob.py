"""A job as the drivers read one back, written without building or booting: the tests of
the bisect driver, the bot and `kto test` replace run_job with a script of verdicts, and
this writes what run_job would have left (job.json, findings.json, console.log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.job.runner import JobResult
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Verdict


def record_job(spec: JobSpec, job_dir: Path, v: Verdict, **fields: Any) -> JobResult:
    """The job's records for verdict `v`; `fields` add to (or override) job.json."""
    job_dir.mkdir(parents=True, exist_ok=True)
    rec = {
        "arch": spec.arch,
        "test": spec.test,
        "repeat": spec.repeat,
        "status": str(v.status),
        "verdict": v.to_dict(),
        **fields,
    }
    (job_dir / "job.json").write_text(json.dumps(rec))
    (job_dir / "findings.json").write_text(json.dumps({"findings": v.findings}))
    (job_dir / "console.log").write_text("")
    return JobResult(spec, v, job_dir, rec)
