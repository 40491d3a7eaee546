"""`kto report RUN`: regenerate a run's JUnit, KCIDB and HTML reports from its directory;
`--mail` also writes reply mails about its new findings (never sends them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.records import runrecord, waivers
from orchestrator.records.model import Run, resolve_run
from orchestrator.results.compare import summary_lines
from orchestrator.results.reports import Report, write_reports

DESCRIPTION = (
    "Read results/<RUN>/ (also a half-written one: what is missing is "
    "marked) and write junit.xml, kcidb.json, report.html and summary.json into it. "
    "Regressions are computed against the previous run with the same label."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
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
        help="where the results folder is published, for KCIDB log URLs (default: file://) "
        "and the Closes: link of --mail",
    )
    p.add_argument(
        "--mail",
        action="store_true",
        help="write one reply mail per NEW finding (each failing job when there is no earlier "
        "run) into <run>/mail/NN-<slug>.eml: threaded under the patch that touched the "
        "guilty file, Cc its maintainers and lists; kto never sends them",
    )
    p.add_argument(
        "--to-author",
        action="store_true",
        help="with --mail: address each mail To: the patch's author (default: to you, from "
        "`git config user.email`)",
    )


def _git_config(key: str) -> str | None:
    from orchestrator.git import user_config

    return user_config(key)


def _history(run: Run) -> dict[tuple[str, str], str]:
    """fail:runs of each (job, title) across the earlier runs of the same work."""
    from orchestrator.matrix.history import cell_of, classify

    lines = {(ln.cell, ln.title): ln for ln in classify(run.path).lines}
    out = {}
    for job in run.jobs:
        for f in job.findings:
            ln = lines.get((cell_of(job), str(f.get("title"))))
            if ln is not None and ln.before:
                before = " ".join(str(t) for t in ln.before)
                out[(job.name, str(f.get("title")))] = f"{ln.now} now; before: {before}"
    return out


def write_mails(args: argparse.Namespace, report: Report) -> list[Path]:
    from orchestrator.results.mail import Identity
    from orchestrator.results.mail import write_mails as write

    identity = Identity(_git_config("user.name"), _git_config("user.email"))
    return write(
        report.run,
        report.comparison,
        identity,
        to_author=args.to_author,
        base_url=args.base_url,
        history=_history(report.run),
    )


def run(args: argparse.Namespace) -> int:
    run_dir = resolve_run(args.run)
    against = resolve_run(args.against) if args.against else None
    night = None
    if str(runrecord.read(run_dir).get("compare_key") or "").startswith("matrix:"):
        from orchestrator.matrix.history import classify

        night = classify(run_dir)  # what the matrix's own report showed that night
    report = write_reports(run_dir, against, waivers.load(args.waivers), args.base_url, night)
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
    if args.mail:
        mails = write_mails(args, report)
        print(f"  mail:     {len(mails)} message(s) (not sent)")
        for path in mails:
            print(f"    {path}")
    elif args.to_author:
        print("  (--to-author has no effect without --mail)")
    return 0
