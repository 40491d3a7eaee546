"""`kto bugs`: the bug store of the results root: list, show one bug, triage by hand."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from orchestrator.bugs import actions, query
from orchestrator.bugs.known import run_date
from orchestrator.bugs.record import ensure_imported, write_dashboard
from orchestrator.bugs.store import Store, open_store
from orchestrator.commands.options import bug_id
from orchestrator.errors import EXIT_OK, UserError
from orchestrator.paths import results_dir
from orchestrator.records.layout import FINDINGS

DESCRIPTION = (
    "Every finding of every run is an incident of a bug, kept in <results>/bugs.sqlite "
    "(KTO_RESULTS) across nights; bugs.html beside it is the dashboard. The first use "
    "imports the run directories already there."
)
EPILOG = (
    "Exit codes: 0 done, 2 bad input (an unknown bug, a bad date), 3 the store cannot be "
    "read or written. See docs/bugs.md for how findings become bugs."
)
_SINCE = re.compile(r"^\d{4}-?\d{2}-?\d{2}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    # `kto bugs` alone is `kto bugs list`, with the same filters (`kto bugs --state all`).
    _list_options(p, argparse.SUPPRESS)
    p.set_defaults(state="open", tree=None, arch=None, since=None, json=False)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    ls = sub.add_parser("list", help="bugs, open first, newest first (the default action)")
    # SUPPRESS: a filter given before `list` is not reset by the action's defaults.
    _list_options(ls, argparse.SUPPRESS)
    show = sub.add_parser("show", help="one bug: cells, history, incidents, report, reproducer")
    show.add_argument("bug", type=bug_id, help="bug number (#12 or 12)")
    show.add_argument("--incidents", type=int, default=20, metavar="N", help="newest N shown")
    close = sub.add_parser("close", help="mark a bug fixed (by a commit, with --commit)")
    close.add_argument("bug", type=bug_id)
    close.add_argument("--commit", metavar="SHA", help="the commit that fixed it")
    _reason(close)
    inval = sub.add_parser("invalid", help="not a kernel bug (a harness or tool problem)")
    inval.add_argument("bug", type=bug_id)
    _reason(inval)
    dup = sub.add_parser("dup", help="N is a duplicate of M: its incidents count as M's")
    dup.add_argument("bug", type=bug_id, help="the duplicate")
    dup.add_argument("of", type=bug_id, help="the bug it duplicates")
    _reason(dup)
    undup = sub.add_parser(
        "undup", help="a dup is its own bug again; --title splits a secondary title off a bug"
    )
    undup.add_argument("bug", type=bug_id)
    undup.add_argument("--title", help="the secondary title to make a bug of its own")
    _reason(undup, required=False)
    reopen = sub.add_parser("reopen", help="a fixed or invalid bug is open again")
    reopen.add_argument("bug", type=bug_id)
    _reason(reopen)


def _list_options(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "--state",
        choices=[*query.STATES, "all"],
        default=default,
        help="bugs in this state (default: open)",
    )
    tree = "seen on this tree (debian-6.1 matches its series too)"
    p.add_argument("--tree", default=default, help=tree)
    p.add_argument("--arch", default=default, help="seen on this arch")
    p.add_argument("--since", default=default, metavar="DATE", help="last seen on/after YYYY-MM-DD")
    p.add_argument("--json", action="store_true", default=default, help="print the list as JSON")


def _reason(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--reason", required=required, default="", metavar="TEXT", help="why")


def who() -> str:
    """Who triaged: `git config user.name`, else $USER."""
    from orchestrator.git import user_config

    name = user_config("user.name")
    return name or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"


def _open() -> Store:
    store = open_store(results_dir())
    try:
        ensure_imported(store)
    except BaseException:
        store.close()
        raise
    return store


def run(args: argparse.Namespace) -> int:
    action = args.action or "list"
    with _open() as store:
        if action == "list":
            return _list(store, args)
        if action == "show":
            with store.errors():
                _show(store, args.bug, args.incidents)
            return EXIT_OK
        me = who()
        if action == "close":
            msg = actions.close(store, args.bug, me, args.reason, args.commit)
        elif action == "invalid":
            msg = actions.invalid(store, args.bug, me, args.reason)
        elif action == "dup":
            msg = actions.dup(store, args.bug, args.of, me, args.reason)
        elif action == "undup":
            msg = actions.undup(store, args.bug, me, args.reason, args.title)
        else:
            msg = actions.reopen(store, args.bug, me, args.reason)
        write_dashboard(store)
        print(f"{msg} ({me})")
    return EXIT_OK


def _list(store: Store, args: argparse.Namespace) -> int:
    since = args.since
    if since is not None and not _SINCE.match(since):
        raise UserError(f"--since {since}: not a date", hint="give YYYY-MM-DD (or YYYYmmdd)")
    with store.errors():
        bugs = query.list_bugs(store.db, args.state, args.tree, args.arch, since)
        counts = query.counts(store.db)
    if args.json:
        print(json.dumps([_as_dict(b) for b in bugs], indent=2))
        return EXIT_OK
    tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in query.STATES)
    print(f"{store.path}: {tally}")
    if not bugs:
        print(f"  no {args.state if args.state != 'all' else ''} bugs".replace("  ", " "))
        return EXIT_OK
    rows = [
        (
            f"#{b.id}",
            b.status(),
            b.title,
            b.since,
            b.last,
            str(b.rate),
            b.rate.words(),
            ",".join(b.arches),
        )
        for b in bugs
    ]
    head = ("bug", "state", "title", "since", "last seen", "fail:runs", "reproduces", "arches")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return EXIT_OK


def _as_dict(b: query.BugRow) -> dict[str, object]:
    lo, hi = b.rate.interval()
    return {
        "id": b.id,
        "title": b.title,
        "state": b.state,
        "status": b.status(),
        "dup_of": b.dup_of,
        "first_seen": b.first_run,
        "last_seen": b.last_run,
        "fails": b.rate.fails,
        "runs": b.rate.runs,
        "rate": round(b.rate.estimate, 4),
        "rate_95": [round(lo, 4), round(hi, 4)],
        "arches": b.arches,
        "kinds": b.kinds,
        "trees": b.trees,
        "incidents": b.incidents,
        "quiet_nights": b.quiet_nights,
        "closed_reason": b.closed_reason,
    }


def _seen(inc: query.Incident | None) -> str:
    if inc is None:
        return "-"
    commit = f" at {inc.commit[:12]}" if inc.commit else ""
    return f"{run_date(inc.run_id)}  {inc.run_id}/{inc.job}{commit}"


def _show(store: Store, bug_id: int, limit: int) -> None:
    d = query.detail(store.db, bug_id, limit=max(0, limit))
    b = d.bug
    print(f"#{b.id} {b.title}  [{b.status()}]")
    for title, role in d.titles:
        print(f"  {'title:' if role == 'primary' else role + ':':12}{title}")
    print(f"  {'first seen:':12}{_seen(d.first)}")
    print(f"  {'last seen:':12}{_seen(d.last)}")
    need = b.rate.runs_to_see()
    sizing = f"; {need} run(s) see it with 95 % chance" if need else ""
    print(f"  {'fail:runs:':12}{b.rate}  {b.rate.words()}{sizing}")
    print(f"  {'arches:':12}{', '.join(b.arches) or '-'}   kinds: {', '.join(b.kinds) or '-'}")
    if b.closed_reason:
        print(f"  {'closed:':12}{b.closed_reason} ({b.closed_by}, {b.closed_at})")
    if b.fixed_commit:
        print(f"  {'fixed by:':12}{b.fixed_commit}")
    if b.prev_id:
        print(f"  {'returns:':12}#{b.prev_id} (closed, and seen again)")
    for n in d.returns:
        print(f"  {'came back:':12}as #{n}")
    if d.dups:
        print(f"  {'dups:':12}{', '.join(f'#{n}' for n in d.dups)}")
    if d.cells:
        print("  cells (fail:runs while it showed):")
        width = max(len(c.cell) for c in d.cells)
        for c in d.cells:
            span = f"{run_date(c.first_run)} - {run_date(c.last_run)}"
            print(f"    {c.cell:{width}}  {c.rate!s:7} {c.rate.words()}  {span}")
    if d.strip:
        print("  history (fail:runs in its cells per run, oldest first):")
        print("    " + "  ".join(f"{run_date(rid)[5:]} {rate}" for rid, rate in d.strip))
        if b.quiet_nights:
            print(f"    gone for {b.quiet_nights} night(s) at the tree's head")
    if d.incidents:
        print(f"  incidents (newest {len(d.incidents)} of {b.incidents}):")
        for inc in d.incidents:
            line = f" line {inc.first_line}" if inc.first_line else ""
            waived = " (waived)" if inc.waived else ""
            print(f"    {inc.run_id}/{inc.job}: {inc.title}{line}{waived}")
    if d.best is not None:
        print(f"  best report: {d.best.path} ({d.best.title})")
        for line in _best_report(d.best.path, d.best.finding, b.best_report).splitlines():
            print(f"    {line}")
        if d.best.reproducer:
            print(f"  reproducer: {d.best.reproducer}")
    _bot_work(store, b.id)
    if d.events:
        print("  events:")
        for e in d.events:
            reason = f": {e['reason']}" if e["reason"] else ""
            print(f"    {e['at']}  {e['who']}  {e['action']}{reason}")


def _bot_work(store: Store, bug_id: int) -> None:
    """What the bot did about the bug: its bisections (culprit, fix) and fixes tested."""
    from orchestrator.bugs.outcomes import bisections, describe_bisection, fix_tests

    for bi in bisections(store.db, bug_id):
        print(f"  {'bisected:':12}{describe_bisection(bi)}")
        print(f"  {'':12}run {bi.run_id}" + (f"; mail {bi.mail}" if bi.mail else ""))
    for t in fix_tests(store.db, bug_id):
        what = (
            f"{t.verdict}: {t.fails}:{t.runs} with it, {t.control_fails}:{t.control_runs} without"
        )
        print(f"  {'fix tested:':12}{t.patches}: {what}; run {t.run_id}")


def _best_report(job_path: str, index: int | None, stored: str) -> str:
    """The decoded report from the job's findings.json, else what the store kept."""
    from orchestrator.results import decoded

    if index is None:
        return stored
    try:
        doc = json.loads((Path(job_path) / FINDINGS).read_text())
        return decoded.decoded_text(doc["findings"][index]) or stored
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return stored
