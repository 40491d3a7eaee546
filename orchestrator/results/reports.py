"""Write a run's reports (JUnit, KCIDB, HTML, summary.json) from its directory.

The shell around the pure writers: load the run (waivers applied), compare it with the
previous run of the same matrix, write each output atomically. Used at the end of `kto run`
and by `kto report`, so a report regenerated later is the same as the one written live.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.results import html as report_html
from orchestrator.results import junit, kcidb, layout, runrecord
from orchestrator.results import waivers as waivers_mod
from orchestrator.results.compare import Comparison, compare, summary_lines
from orchestrator.results.model import Run, load_run, previous_run


@dataclass
class Report:
    run: Run
    comparison: Comparison
    files: dict[str, Path]
    night: Any = None  # a matrix run's Classified (orchestrator.matrix.history), else None


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
) -> Report:
    """against: the run to compare with (default: the previous run with the same label)."""
    waivers = run_waivers(run_dir, waivers if waivers is not None else waivers_mod.load())
    run = load_run(run_dir, waivers)
    old_dir = against if against is not None else previous_run(run)
    old = load_run(old_dir, waivers) if old_dir else None
    comparison = compare(old, run)
    files = {
        "junit": run_dir / layout.JUNIT,
        "kcidb": run_dir / layout.KCIDB,
        "html": run_dir / layout.HTML,
        "summary": run_dir / layout.SUMMARY,
    }
    atomic.write_text(files["junit"], junit.render(run))
    atomic.write_json(files["kcidb"], kcidb.export(run, base_url))
    night = _night(run_dir, run)
    atomic.write_text(files["html"], report_html.render(run, comparison, night))
    atomic.write_text(files["summary"], json.dumps(summary(run, comparison), indent=2) + "\n")
    return Report(run, comparison, files, night)


def _night(run_dir: Path, run: Any) -> Any:
    """A matrix run's night-to-night classification for its report (None for other runs)."""
    if not str(run.record.get("compare_key") or "").startswith("matrix:"):
        return None
    from orchestrator.matrix.history import classify

    return classify(run_dir)


def run_waivers(run_dir: Path, base: waivers_mod.Waivers) -> waivers_mod.Waivers:
    """`base` plus the waivers the run itself carries (a matrix's expected findings, kept in
    run.json so a report regenerated later judges the same way)."""
    own = runrecord.read(run_dir).get("waivers")
    if not own:
        return base
    extra = waivers_mod.parse({"waivers": own}, f"{run_dir / 'run.json'}")
    return waivers_mod.Waivers([*base.items, *extra.items], base.source)


def finish_run(run_dir: Path, timings: dict[str, float], status: str = "finished") -> Report | None:
    """End of `kto run`: close run.json and write the reports (print_summary shows them).

    A failure here is a kto bug, not a verdict: it is reported and the run's own exit code
    stands (the job files are already on disk; `kto report` can retry).
    """
    t0 = time.monotonic()
    try:
        if status == "finished" and runrecord.interrupted(run_dir):
            status = "interrupted"
        qemu = "; ".join(runrecord.qemu_versions(run_dir)) or None
        fields: dict[str, Any] = {"versions": {"qemu": qemu}}
        if tests := runrecord.job_tests(run_dir):
            fields["inputs"] = {"tests": tests}  # what ran, not what was asked (`-- CMD`)
        runrecord.update(run_dir, status=status, timings=timings, **fields)
        report = write_reports(run_dir)
        timings["report"] = round(time.monotonic() - t0, 3)
        runrecord.update(run_dir, timings=timings)
    except Exception as exc:  # see docstring: never hides the verdict
        print(f"kto: could not write the reports of {run_dir}: {exc}", file=sys.stderr)
        return None
    return report


def print_summary(report: Report | None) -> None:
    """The regression summary and where the reports are: the last lines of `kto run`."""
    if report is None:
        return
    for line in summary_lines(report.comparison):
        print(line)
    for name in ("junit", "kcidb", "html"):
        print(f"  {name + ':':9} {report.files[name]}")


def effective_exit(result: Any, report: Report | None) -> int:
    """The job's exit code, unless waivers changed its verdict (a waived finding passes)."""
    if report is None:
        return int(result.exit_code)
    job = next((j for j in report.run.jobs if j.path == Path(result.dir)), None)
    if job is None or str(job.status) == job.raw_status:
        return int(result.exit_code)
    return job.status.exit_code
