"""`kto build`: build a kernel tree (+ patch series, + fragments) for one arch."""

from __future__ import annotations

import argparse
import json

from orchestrator import progress
from orchestrator.build.kernel import BuildRequest, build, plan
from orchestrator.commands.options import add_build_options


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(
        tree=args.tree,
        arch=args.arch,
        ref=args.ref,
        patches=args.patches,
        fragments=list(args.fragments),
        jobs=args.jobs,
        sandbox=args.sandbox,
        trusted_tree=args.trusted_tree,
        i_trust_this_series=args.i_trust_this_series,
    )


DESCRIPTION = (
    "Build a kernel with tuxmake: tree + patch series + Kconfig "
    "fragments, cached by (commit, series, final config, toolchain)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    p.add_argument("--dry-run", action="store_true", help="show what would run, build nothing")
    p.add_argument("--json", action="store_true", help="print the build record as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--die-with-parent", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    progress.set_quiet(args.quiet)
    if args.die_with_parent:  # started by a driver: stop with it (orphan.py)
        from orchestrator.orphan import die_with_parent

        die_with_parent()
    req = request_from_args(args)
    if args.dry_run:
        p = plan(req)
        if args.json:
            print(json.dumps(p, indent=2))
        else:
            for k in ("tree", "ref", "arch", "patches"):
                print(f"{k:9} {p[k]}")
            print("fragments " + "\n          ".join(p["fragments"]))
            print("steps:")
            for i, s in enumerate(p["steps"], 1):
                print(f"  {i}. {s}")
        return 0
    result = build(req)
    rec = result.record
    if args.json:
        print(json.dumps(rec, indent=2))
    else:
        hit = "cache hit" if result.cache_hit else "built"
        print(
            f"{hit}: {rec['inputs']['arch']} {rec['inputs']['describe']} series "
            f"{rec['inputs']['series']['hash']} ({rec['warnings']} warnings)"
        )
        print(f"record:   {result.dir / 'build.json'}")
        print(f"kernel:   {result.kernel}")
    return 0
