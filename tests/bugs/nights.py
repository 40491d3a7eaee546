"""Matrix nights for the bug store, made of a real recorded job and real parser findings.

Every job folder is a copy of a recorded x86_64 job (console, timing, build record) whose
job.json gets a matrix cell, a verdict and a JobSpec, and whose findings.json gets the
findings kto's parser finds in real consoles: seed 003's rcutorture CPU-offline report
(WARNING in __mmdrop with its rss-counter and pgtables consequences), seed 002's "created
two mmu_notifier's" (a custom pattern), and the recorded sysrq panic.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from orchestrator.parser import parse_file
from orchestrator.records.spec import JobSpec

from ..results.runs import PANIC_X86

GOLDEN = Path(__file__).resolve().parent.parent / "parser" / "golden"


def _parsed(log: str, patterns: list[str] | None = None) -> list[dict[str, Any]]:
    return [f.to_dict() for f in parse_file(GOLDEN / log, patterns or [])]


SEED003 = _parsed("mail-quoted-rcutorture.log")  # WARNING in __mmdrop + 2 consequences
SEED002 = _parsed(
    "mail-qp-mmu-notifier.log",
    (GOLDEN / "mail-qp-mmu-notifier.patterns").read_text().split("\n")[:1],
)
PANIC = json.loads((PANIC_X86 / "findings.json").read_text())["findings"]
MMDROP = SEED003[0]["title"]  # "WARNING in __mmdrop"
RSS = SEED003[1]["title"]  # "BUG: Bad rss-counter state"
PGTABLES = SEED003[2]["title"]

# One repeat of a cell: None PASS, a list of findings FAIL, "ERROR" / "SKIP" no verdict.
Repeat = list[dict[str, Any]] | str | None


def night(
    root: Path,
    rid: str,
    cells: dict[str, list[Repeat]],
    matrix: str = "n",
    tree: str = "debian-6.1",
) -> Path:
    """A matrix run dir: cells "ARCH.TEST" (or "TREE.ARCH.TEST") -> one entry per repeat."""
    run = root / rid
    run.mkdir(parents=True)
    doc = {"run_id": rid, "label": f"matrix-{matrix}", "compare_key": f"matrix:{matrix}"}
    (run / "run.json").write_text(json.dumps(doc))
    for name, repeats in cells.items():
        parts = name.rsplit(".", 2)
        cell_tree, arch, test = parts if len(parts) == 3 else (tree, *parts)
        for r, findings in enumerate(repeats):
            job = run / f"{cell_tree}.none.default.{arch}.{test}-r{r}"
            shutil.copytree(PANIC_X86, job)
            _edit(job, cell_tree, arch, test, r, findings)
    return run


def _edit(job: Path, tree: str, arch: str, test: str, r: int, findings: Repeat) -> None:
    rec = json.loads((job / "job.json").read_text())
    if isinstance(findings, str):
        status, found = findings, []
    else:
        found = list(findings or [])
        status = "FAIL" if found else "PASS"
    title = found[0]["title"] if found else None
    reason = f"kernel reported {found[0]['kind']}: {title}" if found else "test passed"
    rec.update(
        arch=arch,
        test=test,
        repeat=r,
        status=status,
        verdict={"status": status, "reason": reason, "title": title, "findings": found},
        outcome={**rec["outcome"], "test_rc": None if found else 0},
        cell={
            "matrix": "n",
            "tree": tree,
            "series": "none",
            "config": "default",
            "arch": arch,
            "test": test,
        },
        job=JobSpec(arch=arch, tree=tree, test=test, duration=20, repeat=r).to_dict(),
    )
    (job / "job.json").write_text(json.dumps(rec, indent=1))
    (job / "findings.json").write_text(json.dumps({"findings": found}))


def rid(day: int, matrix: str = "n") -> str:
    """A run id on 2026-12-<day>, sortable like kto's."""
    return f"202612{day:02d}-010000-matrix-{matrix}-{day:04x}"
