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
from typing import TYPE_CHECKING, Any

from orchestrator.parser.findings import Finding
from orchestrator.parser.patterns import CustomPattern

if TYPE_CHECKING:
    from orchestrator.parser.stream import ConsoleParser

__all__ = ["ConsoleParser", "CustomPattern", "Finding", "parse_file", "parse_text"]


def __getattr__(name: str) -> Any:
    # The stream parser and its tables load on first use: a test description (which names
    # CustomPattern) is read before QEMU starts, the console only once it runs.
    if name == "ConsoleParser":
        from orchestrator.parser.stream import ConsoleParser

        return ConsoleParser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CHUNK = 1 << 20
_MAX_CARRY = 1 << 16  # longer "lines" (binary garbage) are cut


def parse_text(
    text: str, custom_patterns: list[str | CustomPattern] | tuple[str | CustomPattern, ...] = ()
) -> list[Finding]:
    from orchestrator.parser.stream import ConsoleParser

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
    from orchestrator.parser.stream import ConsoleParser

    parser = ConsoleParser(custom_patterns)
    for line in iter_lines(path):
        parser.feed(line)
    parser.finish()
    return parser.findings
