"""`kto parse LOG...`: print the findings of saved console logs.

Exit codes: 0 no findings, 1 findings, 2 bad input (missing/unreadable file, bad regex).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from orchestrator.errors import UserError
from orchestrator.records import exits

DESCRIPTION = (
    "Parse kernel console logs (raw serial output, dmesg, mail-quoted logs) "
    "and print findings with syzkaller-compatible titles."
)

EPILOG = (
    "Exit codes: 0 nothing found, 1 findings, 2 bad input. JSON output is "
    '{"findings": [...]} (one log) or {"logs": [{"log": PATH, "findings": [...]}]} '
    "(several); the first finding's title is the log's title."
)


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("logs", nargs="+", metavar="LOG", help="console log file ('-' for stdin)")
    cmd.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    cmd.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="extra console pattern reported as a 'custom' finding (repeatable)",
    )
    cmd.add_argument(
        "--with-report",
        action="store_true",
        help="text format: also print each finding's extracted report",
    )


def run(args: argparse.Namespace) -> int:
    from orchestrator.parser import (
        ConsoleParser,
        parse_file,
    )  # imported here: `kto --help` stays light

    for pattern in args.pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(f"invalid --pattern {pattern!r}: {exc}") from exc
    results = []
    for path in args.logs:
        if path == "-":
            parser = ConsoleParser(args.pattern)
            for line in sys.stdin:
                parser.feed(line)
            parser.finish()
            findings = parser.findings
        else:
            try:
                findings = parse_file(path, args.pattern)
            except FileNotFoundError as exc:
                raise UserError(f"log file not found: {path}") from exc
            except IsADirectoryError as exc:
                raise UserError(f"log path is a directory, not a file: {path}") from exc
            except OSError as exc:
                raise UserError(f"cannot read log file {path}: {exc.strerror}") from exc
        results.append((path, findings))

    if args.format == "json":
        if len(results) == 1:
            doc: dict = {"findings": [f.to_dict() for f in results[0][1]]}
        else:
            doc = {"logs": [{"log": p, "findings": [f.to_dict() for f in fs]} for p, fs in results]}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for path, findings in results:
            _print_text(path, findings, args.with_report)
    return exits.of_findings(any(fs for _, fs in results))


def _print_text(path: str, findings: list, with_report: bool) -> None:
    if not findings:
        print(f"{path}: no findings")
        return
    print(f"{path}: {len(findings)} finding(s); title: {findings[0].title}")
    for f in findings:
        flags = " [corrupted]" if f.corrupted else ""
        where = f"lines {f.first_line}-{f.last_line}"
        print(f"  {f.kind:<15} {f.title}  ({where}){flags}")
        if with_report:
            for line in f.report.rstrip("\n").split("\n"):
                print(f"      | {line}")
