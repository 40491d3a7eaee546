"""Run directories for tests: real recorded runs (tests/data/runs), and copies of them
edited into repeats, half-written jobs and other shapes a real run can leave behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "runs"
PANIC_X86 = DATA / "20261123-125344-boot-x86_64-9d94" / "x86_64-command"  # sysrq panic: FAIL
EXIT3_ARM = DATA / "20261123-125343-boot-arm64-4a6f" / "arm64-command"  # exit 3: FAIL, no finding
SMOKE_X86 = DATA / "20261123-130506-run-x86_64-01bd" / "x86_64-smoke"  # kto run: PASS
SMOKE_RUN = SMOKE_X86.parent


def edit_json(path: Path, **changes: Any) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc, indent=2))


def make_run(root: Path, run_id: str, jobs: list[tuple[Path, str, dict[str, Any]]]) -> Path:
    """jobs: (recorded job dir, new job name, job.json changes; "_findings" replaces
    findings.json's list)."""
    run = root / run_id
    run.mkdir(parents=True)
    shutil.copy(SMOKE_RUN / "run.json", run / "run.json")
    edit_json(run / "run.json", run_id=run_id, label=run_id.split("-", 2)[2].rsplit("-", 1)[0])
    for src, name, changes in jobs:
        shutil.copytree(src, run / name)
        changes = dict(changes)
        if "_findings" in changes:
            findings = {"findings": changes.pop("_findings")}
            (run / name / "findings.json").write_text(json.dumps(findings))
        if changes:
            edit_json(run / name / "job.json", **changes)
    return run


def as_pass(src: Path = PANIC_X86) -> dict[str, Any]:
    """job.json changes that turn a recorded job into a clean PASS of the same test."""
    doc = json.loads((src / "job.json").read_text())
    outcome = {**doc["outcome"], "test_rc": 0}
    verdict = {"status": "PASS", "reason": "test passed", "title": None, "findings": []}
    return {"status": "PASS", "verdict": verdict, "outcome": outcome, "_findings": []}
