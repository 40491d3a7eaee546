"""`kto build`: build a kernel tree (+ patch series, + fragments) for one arch."""

from __future__ import annotations

import argparse
import json

from .. import progress
from ..build import BuildRequest, build, plan
from ..profiles import known_arches
from ..trees import load_tree_specs


def add_build_options(p: argparse.ArgumentParser) -> None:
    specs, default = load_tree_specs()
    p.add_argument(
        "--tree",
        default=default,
        help=f"named tree ({', '.join(specs)}) or a path to a local git tree (default: {default})",
    )
    p.add_argument("--ref", help="commit/branch/tag in the tree (default: its HEAD)")
    p.add_argument(
        "--arch",
        default="x86_64",
        choices=known_arches(),
        help="target architecture (default: x86_64)",
    )
    p.add_argument(
        "--patches",
        metavar="P",
        help="series to apply: an mbox (lore thread; b4 picks the patches), a "
        "directory of .patch files (optional `series` file), or a git range A..B",
    )
    p.add_argument(
        "--config",
        dest="fragments",
        action="append",
        default=[],
        metavar="FRAG",
        help="extra Kconfig fragment: a name in configs/kconfig/ or a path "
        "(repeatable; the arch profile's own fragments always apply)",
    )
    p.add_argument("-j", "--jobs", type=int, help="parallel make jobs (default: all cores)")


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(
        tree=args.tree,
        arch=args.arch,
        ref=args.ref,
        patches=args.patches,
        fragments=list(args.fragments),
        jobs=args.jobs,
    )


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "build",
        help="build a kernel (cached by content)",
        description="Build a kernel with tuxmake: tree + patch series + Kconfig "
        "fragments, cached by (commit, series, final config, toolchain).",
    )
    add_build_options(p)
    p.add_argument("--dry-run", action="store_true", help="show what would run, build nothing")
    p.add_argument("--json", action="store_true", help="print the build record as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def run(args: argparse.Namespace) -> int:
    progress.set_quiet(args.quiet)
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
