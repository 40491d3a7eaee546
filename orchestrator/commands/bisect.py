"""`kto bisect`: find the commit that introduced a finding (or, with --fix, the one that
made it go away), flake-aware, with a confidence."""

from __future__ import annotations

import argparse

from orchestrator.bisect.driver import State, Target, run_bisect, start
from orchestrator.commands.options import add_boot_options, add_config_option, bug_id, job_spec
from orchestrator.config.arch import known_arches

DESCRIPTION = (
    "Flake-aware bisection: every probe is a kto job at one commit; the "
    "culprit is the commit holding --confidence of a posterior that models the "
    "reproduction rate. --fix finds the first commit where the finding is gone instead "
    "(--bad the older commit that shows it, --good a newer one without it). Exit 0: "
    "culprit (or fix) found; 1: one below the confidence asked for, or a revert that did "
    "not clear the target; 3: refused (bad does not reproduce, good shows the target), "
    "nothing in the range, or interrupted."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tree", help="named tree or git tree path (default: the default tree)")
    p.add_argument("--good", help="a commit without the finding (with --fix: the newer end)")
    p.add_argument("--bad", help="a commit with it (with --fix: the older end)")
    p.add_argument(
        "--fix",
        action="store_true",
        help="find the first commit where the finding is gone (--bad must be an ancestor "
        "of --good); the default target is what --bad shows",
    )
    p.add_argument(
        "--bug",
        type=bug_id,
        metavar="N",
        help="bisect bug N of the bug store as the nightly bot does: its best cell, from "
        "the last night that cell passed to the commit it showed at (with --fix: from its "
        "last night to the first clean night after it); recorded on the bug, the culprit "
        "mailed to disk or the bug marked fixed (docs/bot.md)",
    )
    p.add_argument("--arch", default="x86_64", choices=known_arches())
    add_config_option(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--title", action="append", default=[], help="the finding title (repeatable)")
    what.add_argument("--kind", help="any finding of this kind (e.g. hung_task, warning)")
    what.add_argument("--any-failure", action="store_true", help="any FAIL verdict is bad")
    # The defaults bench/bisect_sim.py measures (it reads them from this parser): at 0.999 a
    # 50 % bug is named at least as often as by syzkaller's policy (at 0.995, one in 200
    # named wrong: more than that policy's one in 1000), and 80 runs keep a 20 % bug's
    # accuracy above that policy's at about half its runs (README, bisect).
    p.add_argument(
        "--confidence",
        type=float,
        default=0.999,
        help="stop once one commit holds this posterior mass (default 0.999)",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        default=80,
        help="run budget (default 80; a deterministic bug takes about 16, a 50 %% one 50)",
    )
    p.add_argument("--resume", metavar="RUN", help="go on with an interrupted bisect run")
    p.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="probe N commits at once (default 1; 3 with --scheduler): builds take turns "
        "on the tree, boots overlap with them",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the probes on this Dask scheduler (tcp://HOST:8786), as kto matrix does",
    )
    p.add_argument(
        "--verify-revert",
        action="store_true",
        help="then revert the culprit on top of --bad and show the target is gone (runs "
        "sized by the model; not with --fix)",
    )
    add_boot_options(p, with_arch=False)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        from orchestrator.records.model import resolve_run

        run_dir = resolve_run(args.resume)
        return run_bisect(run_dir, State.load(run_dir))
    from orchestrator.errors import UserError

    if args.bug is not None:
        return _bug(args)
    if not args.good or not args.bad:
        raise UserError("--good and --bad are needed (or --resume RUN)")
    from orchestrator.build.trees import load_tree_specs

    tree = args.tree or load_tree_specs()[1]
    args.tree, args.ref, args.patches = tree, None, None
    base = job_spec(args)
    target = Target(tuple(args.title), args.kind, args.any_failure)
    run_dir, state = start(
        tree, args.good, args.bad, base, target, args.confidence, args.max_runs,
        verify_revert=args.verify_revert,
        parallel=args.parallel or (3 if args.scheduler else 1),
        scheduler=args.scheduler,
        fix=args.fix,
    )  # fmt: skip
    return run_bisect(run_dir, state)


def _bug(args: argparse.Namespace) -> int:
    from orchestrator.bot.regression import bisect_bug
    from orchestrator.errors import UserError
    from orchestrator.git import user_config
    from orchestrator.results.mailtext import Identity

    options = ("good", "bad", "tree", "title", "kind", "any_failure", "verify_revert")
    given = [f"--{o.replace('_', '-')}" for o in options if getattr(args, o)]
    if given:
        names = ", ".join(given)
        raise UserError(
            f"--bug takes its tree, range and titles from the bug store: drop {names}",
            hint="or bisect by hand: kto bisect --good A --bad B [--title T]",
        )
    identity = Identity(user_config("user.name"), user_config("user.email"))
    return bisect_bug(
        args.bug,
        fix=args.fix,
        max_runs=args.max_runs,
        confidence=args.confidence,
        identity=identity,
        scheduler=args.scheduler,
    )
