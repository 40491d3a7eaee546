"""`kto report RUN`: regenerate a run's JUnit, KCIDB and HTML reports from its directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.results import waivers
from orchestrator.results.compare import summary_lines
from orchestrator.results.model import resolve_run
from orchestrator.results.reports import write_reports


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="regenerate JUnit/KCIDB/HTML reports of a run",
        description="Read results/<RUN>/ (also a half-written one: what is missing is "
        "marked) and write junit.xml, kcidb.json, report.html and summary.json into it. "
        "Regressions are computed against the previous run with the same label.",
    )
    p.add_argument(
        "run", nargs="?", default="latest", help="run id, unique prefix, path or `latest` (default)"
    )
    p.add_argument("--against", metavar="RUN", help="compare with this run instead")
    p.add_argument(
        "--waivers",
        type=Path,
        metavar="FILE",
        help="known findings (default: configs/waivers.yaml)",
    )
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="where the results folder is published, for KCIDB log URLs (default: file://)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    run_dir = resolve_run(args.run)
    against = resolve_run(args.against) if args.against else None
    report = write_reports(run_dir, against, waivers.load(args.waivers), args.base_url)
    r = report.run
    counts = ", ".join(
        f"{s} {sum(1 for j in r.jobs if str(j.status) == s)}"
        for s in ("PASS", "FAIL", "ERROR", "MISS", "SKIP")
        if any(str(j.status) == s for j in r.jobs)
    )
    print(f"run {r.id}: {len(r.jobs)} job(s): {counts or 'none'}")
    problems = r.missing + [f"{j.name}: {m}" for j in r.jobs for m in j.missing]
    for p in problems:
        print(f"  missing: {p}")
    for line in summary_lines(report.comparison):
        print(line)
    for name, path in report.files.items():
        print(f"  {name + ':':9} {path}")
    return 0
