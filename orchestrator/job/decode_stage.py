"""After the verdict: decode the findings' stack frames against the job's own vmlinux.

findings.json is rewritten with a `symbolized` section per finding (file:line, inlines,
source text, the guilty file and its maintainers; see orchestrator/symbolize). It runs
after job.json holds the verdict, and nothing it does can change that verdict: a kernel
without debug info, a missing tool, a relinked build dir or a kto bug is a note in
findings.json, and the job's files stay as they were.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestrator import atomic, progress
from orchestrator.config.arch import ArchProfile
from orchestrator.records.layout import FINDINGS


def decode_findings(
    job_dir: Path, build_record: dict[str, Any] | None, profile: ArchProfile
) -> None:
    path = job_dir / FINDINGS
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    findings = doc.get("findings") if isinstance(doc, dict) else None
    if not findings:
        return
    # Loaded only now: a job without findings (most of them) pays nothing for decoding.
    from orchestrator.symbolize.decode import inputs_from_build_record, symbolize_with

    t0 = time.monotonic()
    try:
        decoded = symbolize_with(findings, inputs_from_build_record(build_record), profile)
    except Exception as exc:  # see the docstring: never into the verdict
        progress.say(f"could not decode the findings' stack frames: {exc}")
        doc["symbolize_error"] = f"{type(exc).__name__}: {exc}"
        atomic.write_json(path, doc)
        return
    atomic.write_json(path, {**doc, "findings": decoded})
    notes = sorted({n for f in decoded for n in f["symbolized"]["notes"]})
    frames = sum(1 for f in decoded for fr in f["symbolized"]["frames"] if fr["file"])
    progress.say(
        f"decoded {frames} frame(s) of {len(decoded)} finding(s) in "
        f"{time.monotonic() - t0:.1f}s" + (f" ({'; '.join(notes)})" if notes else "")
    )
