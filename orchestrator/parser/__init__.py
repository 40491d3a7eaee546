"""Kernel console/dmesg parser: typed findings with syzkaller-compatible titles.

Pure: no processes, no file writes (parse_file only reads).

    p = ConsoleParser(custom_patterns=[r"created two mmu_notifier's"])
    for line in console:
        for finding in p.feed(line):
            ...
    p.finish()
"""

from __future__ import annotations

import codecs
import os

from orchestrator.parser.findings import Finding
from orchestrator.parser.stream import ConsoleParser, CustomPattern

__all__ = ["ConsoleParser", "CustomPattern", "Finding", "parse_file", "parse_text"]

_CHUNK = 1 << 20
_MAX_CARRY = 1 << 16  # longer "lines" (binary garbage) are cut


def parse_text(
    text: str, custom_patterns: list[str | CustomPattern] | tuple[str | CustomPattern, ...] = ()
) -> list[Finding]:
    parser = ConsoleParser(custom_patterns)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        parser.feed(line)
    parser.finish()
    return parser.findings


def iter_lines(path: str | os.PathLike[str]):
    """Lines of a file of any size or content, in bounded memory (undecodable bytes replaced)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    overflow = False
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                parts = text.split("\n")
                if len(parts) == 1:
                    if not overflow:
                        carry += parts[0]
                        if len(carry) > _MAX_CARRY:
                            carry, overflow = carry[:_MAX_CARRY], True
                else:
                    first = parts[0] if not overflow else ""
                    yield (carry + first)[:_MAX_CARRY]
                    yield from parts[1:-1]
                    carry, overflow = parts[-1][:_MAX_CARRY], len(parts[-1]) > _MAX_CARRY
            if not chunk:
                break
    if carry:
        yield carry


def parse_file(
    path: str | os.PathLike[str],
    custom_patterns: list[str | CustomPattern] | tuple[str | CustomPattern, ...] = (),
) -> list[Finding]:
    parser = ConsoleParser(custom_patterns)
    for line in iter_lines(path):
        parser.feed(line)
    parser.finish()
    return parser.findings
