"""Test-specific console patterns (test.yaml `pass.forbidden`, `--pattern`).

A module of its own so a test description loads without the parser's tables (guest/testspec.py
runs before QEMU starts; the parser is loaded once the guest runs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CustomPattern:
    """A test-specific console pattern; a match becomes a ``kind`` finding."""

    regex: str
    name: str | None = None  # title; default: the matched text, normalised
    kind: str = "custom"
