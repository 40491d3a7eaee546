"""`kto test BUG --patches FIX`: a proposed fix tested against a bug of the store, with
enough runs to say it is gone (orchestrator/bot/fixtest.py)."""

from __future__ import annotations

import argparse

from orchestrator.bugs.record import ensure_imported
from orchestrator.bugs.store import open_store
from orchestrator.commands.options import bug_id
from orchestrator.config.bot import settings
from orchestrator.paths import results_dir
from orchestrator.records import exits

DESCRIPTION = (
    "Run the bug's own job again, at the commit where it last showed, with the fix applied: "
    "as many runs as the bug's rate in that cell needs to show with the confidence asked "
    "(the smallest n with 1-(1-p)^n >= C, p = fails/runs there; --runs caps it), stopping "
    "at the first run that shows the bug. After n clean runs the same job runs without the "
    "fix until the bug shows (at most n runs): the control that it still reproduces there. "
    "The result is recorded on the bug (`kto bugs show`); --mail writes a reply to the "
    "fix's mail (threaded under its last patch, to its author, with a Tested-by: tag when "
    "gone) into the run's mail/ folder. kto never sends mail."
)
EPILOG = (
    "Exit codes: 0 gone (0 of n with the fix, and the control reproduced); 1 present (the "
    "bug showed with the fix); 2 bad input (an unknown bug or cell, no patch at --patches, "
    "a cell that already tests a series); 3 kto could not tell: inconclusive (the control "
    "never reproduced) or an error (infrastructure, the fix does not apply or build, "
    "interrupted). See docs/bot.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bug", type=bug_id, help="the bug's number (12 or #12; `kto bugs list`)")
    p.add_argument(
        "--patches",
        required=True,
        metavar="FIX",
        help="the fix: an mbox (b4 am -o- MSGID), a .patch file, or a directory of patches",
    )
    p.add_argument(
        "--cell",
        metavar="CELL",
        help="tree.series.config.arch.test to test in (default: where the bug reproduces most)",
    )
    p.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="at most N runs with the fix, and N without (default: configs/bot.yaml "
        "fix_test.max_runs, 30 as shipped)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        metavar="C",
        help="the chance the runs would have shown the bug were it not fixed (default: "
        "configs/bot.yaml fix_test.confidence, 0.95 as shipped)",
    )
    p.add_argument(
        "--mail", action="store_true", help="write a reply to the fix's mail into RUN/mail/"
    )


def run(args: argparse.Namespace) -> int:
    from orchestrator.bot.fixtest import sentence_of, test_fix
    from orchestrator.git import user_config
    from orchestrator.results.mailtext import Identity

    # Read here, not as argparse defaults: a bad configs/bot.yaml is then exit 2 naming
    # the line, not a traceback while `--help` builds the parser.
    fix = settings().fix_test
    identity = Identity(user_config("user.name"), user_config("user.email"))
    with open_store(results_dir()) as store:
        ensure_imported(store)
        t = test_fix(
            store,
            args.bug,
            args.patches,
            confidence=fix.confidence if args.confidence is None else args.confidence,
            max_runs=fix.max_runs if args.runs is None else args.runs,
            cell=args.cell,
            identity=identity,
            mail=args.mail,
        )
        print(f"bug #{t.bug_id}: {sentence_of(store, t)}")
        print(f"  with the fix:    fail:runs {t.fails}:{t.runs}")
        print(f"  without the fix: fail:runs {t.control_fails}:{t.control_runs}")
        print(f"  run:  {store.root / t.run_id}")
        if t.mail:
            print(f"  mail: {t.mail}")
    return exits.of_fix_test(t.verdict)
