"""`kto matrix FILE`: run a matrix of trees x series x configs x arches x tests, nightly."""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import TYPE_CHECKING

from orchestrator.matrix.driver import build_key, plan_jobs, resume_dir, run_matrix
from orchestrator.matrix.pool import Budget
from orchestrator.matrix.spec import load_matrix, resolve_matrix_path

if TYPE_CHECKING:
    from orchestrator.bugs.known import Known
    from orchestrator.matrix.driver import MatrixResult
    from orchestrator.matrix.history import Line

DESCRIPTION = (
    "Expand configs/matrix/FILE (or a path) into jobs, build each distinct "
    "kernel once, run every job within this host's CPU and memory budget, and judge the "
    "run against earlier runs of the same matrix. Exit 0: no NEW failures; 1: NEW "
    "failures; 3: infrastructure errors only, or interrupted (resume with --resume)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("matrix", help="a matrix file, or a name in configs/matrix/ (e.g. quick)")
    p.add_argument("--dry-run", action="store_true", help="print cells and builds, run nothing")
    p.add_argument(
        "--resume", metavar="RUN", help="go on with an interrupted run (an id, or `latest`)"
    )
    p.add_argument("--cores", type=int, help="CPU budget (default: this host's cores)")
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the jobs on a Dask cluster (e.g. tcp://host:8786; workers: "
        "`dask worker ADDR --nthreads 1` on hosts with kto set up)",
    )
    p.add_argument(
        "--confirm",
        type=int,
        default=2,
        metavar="N",
        help="runs added to a cell whose failure is NEW before it is reported (default 2)",
    )
    bot = p.add_argument_group(
        "the bot (configs/bot.yaml)",
        "A confirmed NEW bug in a cell whose tree moved since it last passed is bisected "
        "after the night (one bisect per bug), and a plausible culprit's author gets a mail "
        "written under the run's mail/ (never sent); docs/bot.md.",
    )
    bot.add_argument("--no-bisect", action="store_true", help="do not bisect tonight's NEW bugs")
    bot.add_argument(
        "--bisect-budget",
        type=int,
        metavar="RUNS",
        help="runs for all of tonight's bisects together (default: bisect.budget_runs, 80)",
    )
    bot.add_argument(
        "--bisect-minutes",
        type=float,
        metavar="MIN",
        help="wall time for them; a bisect cut short goes on next night "
        "(default: bisect.budget_minutes, 60)",
    )
    p.add_argument(
        "--fallback-local",
        action="store_true",
        help="with --scheduler: run locally if the scheduler cannot be reached",
    )


def _dry_run(args: argparse.Namespace) -> int:
    m = load_matrix(resolve_matrix_path(args.matrix))
    jobs = plan_jobs(m)
    builds: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for j in jobs:
        if not j.plan.skip:
            builds[build_key(j)].append(j.folder)
    print(f"matrix {m.name} ({m.path}): {len(m.cells)} cell(s), {len(jobs)} job(s)")
    for c in m.cells:
        skip = next((j.plan.skip for j in jobs if j.cell == c and j.plan.skip), None)
        note = f"  SKIP: {skip}" if skip else ""
        note += "".join(f"  expects: {t}" for t in c.expect)
        print(f"  {m.cell_id(c)}  {c.folder}  x{m.repeats[c]}{note}")
    print(f"{len(builds)} distinct kernel build(s), each shared by its jobs:")
    for key, folders in builds.items():
        print(f"  {' '.join(k for k in key if k)}: {len(folders)} job(s)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    if args.cores is not None and args.cores < 1:
        from orchestrator.errors import UserError

        raise UserError(f"--cores {args.cores}: need at least 1")
    budget = Budget(cores=args.cores) if args.cores else Budget()
    m = load_matrix(resolve_matrix_path(args.matrix))
    run_dir = resume_dir(args.resume) if args.resume else None
    scheduler = args.scheduler
    if scheduler:
        from orchestrator.errors import UserError
        from orchestrator.matrix.cluster import connect

        try:
            connect(scheduler).close()
        except UserError:
            if not args.fallback_local:
                raise
            from orchestrator import progress

            progress.say(f"scheduler {scheduler} unreachable: running locally (--fallback-local)")
            scheduler = None
    if args.bisect_budget is not None and args.bisect_budget < 3:
        from orchestrator.errors import UserError

        raise UserError(f"--bisect-budget {args.bisect_budget}: at least 3 runs")
    if args.confirm < 0:
        from orchestrator.errors import UserError

        raise UserError(f"--confirm {args.confirm}: 0 or more")
    result = run_matrix(m, run_dir, budget, scheduler, confirm=args.confirm)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "no jobs"
    print(f"matrix {m.name}: {counts}  ({result.run_dir})")
    for job in result.report.run.jobs:
        # XFAIL: the reason says what was caught as expected
        what = job.reason if str(job.status) == "XFAIL" else job.title or job.reason
        waived = f"  (waived: {'; '.join(job.waived)})" if job.waived else ""
        if "waived" in what:
            waived = ""
        print(f"  {job.status!s:5} {job.name:58} {what}{waived}")
    if result.classified:
        c = result.classified
        if c.versions_changed:
            print("  tool versions changed since the last run (suspects, not regressions):")
            for v in c.versions_changed:
                print(f"    {v}")
        for line in c.lines:
            print(f"  {line.text()}{_as_bug(line, result.report.known)}")
        if not c.lines:
            print("  nothing new, fixed or unstable" + ("" if c.history else " (first run)"))
    # Each finding as the bug it is across nights (the store's numbers, open since, fail:runs),
    # the open bugs of the night's cells not seen, and those closed as fixed tonight.
    for bug_line in result.report.known.lines() if result.report.known else []:
        print(f"  {bug_line}")
    for name in ("junit", "html", "bugs"):
        if name in result.report.files:
            print(f"  {name + ':':7} {result.report.files[name]}")
    if result.interrupted:
        print(f"  interrupted: kto matrix {args.matrix} --resume {result.run_dir.name}")
    elif _bisects(args):
        _bot(args, result, scheduler)
    return result.exit_code


def _bisects(args: argparse.Namespace) -> bool:
    from orchestrator.config.bot import settings

    return not args.no_bisect and settings().bisect.auto


def _bot(args: argparse.Namespace, result: MatrixResult, scheduler: str | None) -> None:
    """After the night's report: bisect its NEW bugs within the budget (orchestrator/bot).
    The night's verdict and exit code stay the matrix's: the bot only adds to them."""
    from orchestrator.bot.regression import bisect_night, new_bugs, summary
    from orchestrator.config.bot import settings
    from orchestrator.git import user_config
    from orchestrator.results.mailtext import Identity

    if not new_bugs(result) and not _unfinished_bisects(result):
        return
    s = settings().bisect
    runs = args.bisect_budget if args.bisect_budget is not None else s.budget_runs
    minutes = args.bisect_minutes if args.bisect_minutes is not None else s.budget_minutes
    identity = Identity(user_config("user.name"), user_config("user.email"))
    out = bisect_night(
        result, budget_runs=runs, budget_minutes=minutes, identity=identity, scheduler=scheduler
    )
    for line in summary(out):
        print(line)


def _unfinished_bisects(result: MatrixResult) -> bool:
    from orchestrator.bot.regression import has_unfinished

    return has_unfinished(result.run_dir.parent)


def _as_bug(line: Line, known: Known | None) -> str:
    """A night-to-night line in bug terms: a NEW bug, a known bug seen in a new cell, or a
    closed bug back (its "(2)"); the store decided which (orchestrator/bugs)."""
    ref = None
    if known is not None:
        ref = known.in_cell(line.cell, line.title)
        if ref is None and line.cls == "fixed":
            return _gone(line, known)
    if ref is None:
        return ""
    if ref.back_of:
        return f"  [bug #{ref.id} back: #{ref.back_of} was closed]"
    if ref.new:
        return f"  [NEW bug #{ref.id}]"
    if line.cls == "new":
        return f"  [bug #{ref.id}, {ref.state} since {ref.since}: seen in a new cell]"
    return f"  [bug #{ref.id}]"


def _gone(line: Line, known: Known) -> str:
    """A FIXED line as the open bug it is: gone tonight, closed after the quiet nights."""
    from orchestrator.bugs.lifecycle import quiet_nights

    ref = known.gone_in_cell(line.cell, line.title)
    if ref is None:
        return ""
    n = quiet_nights()
    after = f"; fixed once quiet {n} night(s) with enough clean runs" if n > 0 else ""
    return f"  [bug #{ref.id} gone tonight{after}]"
