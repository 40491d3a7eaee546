"""Write a run's reports (JUnit, KCIDB, HTML, summary.json) from its directory.

The shell around the pure writers: load the run (waivers applied), compare it with the
previous run of the same matrix, write each output atomically. A matrix's night-to-night
classification is its driver's to ask for (results never import the drivers above them).
Used at the end of `kto run` and by `kto report`, so a report regenerated later is the same
as the one written live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.bugs.known import Known
from orchestrator.errors import InfraError
from orchestrator.records import exits, layout, model, runrecord
from orchestrator.records import waivers as waivers_mod
from orchestrator.records.model import Run, load_run, previous_run
from orchestrator.results import html as report_html
from orchestrator.results import junit, kcidb
from orchestrator.results.compare import Comparison, compare, summary_lines


@dataclass
class Report:
    run: Run
    comparison: Comparison
    files: dict[str, Path]
    night: Any = None  # a matrix run's Classified (orchestrator.matrix.history), else None
    known: Known | None = None  # the bug each finding is (None: the store failed)
    bugs_seconds: float = 0.0  # the bug store's ingest and bugs.html


def summary(run: Run, comparison: Comparison) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for j in run.jobs:
        counts[str(j.status)] = counts.get(str(j.status), 0) + 1
    return {
        "run": run.id,
        "label": run.label,
        "status": str(run.worst()),
        "counts": counts,
        "missing": run.missing,
        "jobs": [
            {
                "name": j.name,
                "tree": j.tree,
                "config": j.config,
                "arch": j.arch,
                "test": j.test,
                "repeat": j.repeat,
                "status": str(j.status),
                "raw_status": j.raw_status,
                "reason": j.reason,
                "title": j.title,
                "findings": [f.get("title") for f in j.findings],
                "waived": j.waived,
                "missing": j.missing,
                "seconds": round(j.seconds, 3),
            }
            for j in run.jobs
        ],
        "regressions": comparison.to_dict(),
    }


def write_reports(
    run_dir: Path,
    against: Path | None = None,
    waivers: waivers_mod.Waivers | None = None,
    base_url: str | None = None,
    night: Any = None,
) -> Report:
    """against: the run to compare with (default: the previous run with the same label);
    night: a matrix run's night-to-night classification, which its driver asks for."""
    base = waivers if waivers is not None else waivers_mod.load()
    waivers = model.run_waivers(run_dir, base)
    run = load_run(run_dir, waivers)
    old_dir = against if against is not None else previous_run(run)
    old = load_run(old_dir, waivers) if old_dir else None
    comparison = compare(old, run)
    known, bugs_seconds, store_error = _record_bugs(run)
    files = {
        "junit": run_dir / layout.JUNIT,
        "kcidb": run_dir / layout.KCIDB,
        "html": run_dir / layout.HTML,
        "summary": run_dir / layout.SUMMARY,
    }
    atomic.write_text(files["junit"], junit.render(run, known))
    atomic.write_json(files["kcidb"], kcidb.export(run, base_url, known))
    atomic.write_text(files["html"], report_html.render(run, comparison, night, known))
    doc = summary(run, comparison)
    if known is not None:
        doc["bugs"] = [
            {"id": r.id, "title": r.title, "state": r.state, "new": r.new, "label": r.label()}
            for r in known.bugs()
        ]
    atomic.write_text(files["summary"], json.dumps(doc, indent=2) + "\n")
    if store_error is not None:
        # The run's own reports are written (without bug numbers); the night is not green.
        raise store_error
    if known is not None:
        files["bugs"] = known.html
    return Report(run, comparison, files, night, known, bugs_seconds)


def _record_bugs(run: Run) -> tuple[Known | None, float, InfraError | None]:
    """Ingest the run into its results root's bug store (orchestrator/bugs): which bug each
    finding is, for the reports. A store that cannot be written is returned, not raised,
    so the reports are still written before the run exits 3."""
    from orchestrator.bugs.record import record_run

    t0 = time.monotonic()
    try:
        known = record_run(run)
    except InfraError as exc:
        return None, 0.0, exc
    return known, round(time.monotonic() - t0, 3), None


def finish_run(
    run_dir: Path,
    timings: dict[str, float],
    status: str = "finished",
    classify: Callable[[Path], Any] | None = None,
) -> Report:
    """End of a run: close run.json and write the reports (print_summary shows them).

    `classify`: the driver's night-to-night judgement (a matrix's), asked once run.json is
    closed. A record or report that cannot be written raises an InfraError naming the
    file (exit 3): a run whose reports are missing is never green. The job records are
    already on disk, and `kto report` writes the reports again.
    """
    t0 = time.monotonic()
    if status == "finished" and model.interrupted(run_dir):
        status = "interrupted"
    # A job given its kernel knows no compiler: what start_inputs recorded then stays.
    versions = {k: v for k, v in model.tool_versions(run_dir).items() if v}
    fields: runrecord.RunDoc = {"status": status, "timings": timings, "versions": versions}
    if tests := model.job_tests(run_dir):
        fields["inputs"] = {"tests": tests}  # what ran, not what was asked (`-- CMD`)
    runrecord.update(run_dir, **fields)
    night = classify(run_dir) if classify else None
    report = write_reports(run_dir, night=night)
    timings["report"] = round(time.monotonic() - t0, 3)
    timings["bugs"] = report.bugs_seconds  # part of "report": the store's share of it
    runrecord.update(run_dir, timings=timings)
    return report


def print_summary(report: Report) -> None:
    """The regression summary and where the reports are: the last lines of `kto run`."""
    for line in summary_lines(report.comparison):
        print(line)
    for line in report.known.lines() if report.known else []:
        print(f"  {line}")
    for name in ("junit", "kcidb", "html", "bugs"):
        if name in report.files:
            print(f"  {name + ':':9} {report.files[name]}")


def effective_exit(result: Any, report: Report) -> int:
    """The job's exit code, unless waivers changed its verdict (a waived finding passes)."""
    job = next((j for j in report.run.jobs if j.path == Path(result.dir)), None)
    if job is None or str(job.status) == job.raw_status:
        return int(result.exit_code)
    return exits.of_status(job.status)
