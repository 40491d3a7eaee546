"""The Finding record: one problem found on a console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    kind: str  # warning, bug, oops, panic, gpf, hung_task, rcu_stall, kasan, custom, ...
    title: str  # syzkaller-compatible title, e.g. "WARNING in __mmdrop"
    first_line: int  # 1-based line of the log where the report starts
    last_line: int  # 1-based line of the last report line seen
    report: str = ""  # the extracted report text (console prefixes removed)
    function: str | None = None  # guilty frame
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    taint: str | None = None  # taint flags ("GW"); "" = "Not tainted"; None = not printed
    corrupted: bool = False
    corrupted_reason: str = ""
    alt_titles: list[str] = field(default_factory=list)
    panicked: bool = False  # "Kernel panic - not syncing" seen inside the report

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "function": self.function,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "cpu": self.cpu,
            "pid": self.pid,
            "comm": self.comm,
            "taint": self.taint,
            "corrupted": self.corrupted,
            "corrupted_reason": self.corrupted_reason,
            "alt_titles": list(self.alt_titles),
            "panicked": self.panicked,
            "report": self.report,
        }
