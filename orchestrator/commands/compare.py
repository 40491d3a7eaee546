"""`kto compare OLD NEW`: regressions between two runs, per test and per finding title."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator.records import exits, waivers
from orchestrator.records.model import load_run, resolve_run
from orchestrator.results.compare import compare, summary_lines

DESCRIPTION = (
    "Compare two run directories per test (tree, config, arch, test) and per "
    "finding title. Exit 1 when NEW has failures OLD did not have (waived ones aside)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", help="earlier run: id, unique prefix, path")
    p.add_argument("new", nargs="?", default="latest", help="later run (default: latest)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--waivers", type=Path, metavar="FILE", help="known findings file")


def run(args: argparse.Namespace) -> int:
    known = waivers.load(args.waivers)
    old = load_run(resolve_run(args.old), known)
    new = load_run(resolve_run(args.new), known)
    result = compare(old, new)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(summary_lines(result)))
    return exits.of_findings(bool(result.regressions))
