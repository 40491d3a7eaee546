"""What happened on a guest's console, and the time limits it ran under: pure data.

Kept apart from the pexpect session (vm/session.py) so verdicts, results and reports load
these records without importing any process machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timeouts:
    """The console session's limits, in seconds, before the arch's timeout scale."""

    boot: float = 120.0  # QEMU start -> BOOT_OK marker
    test: float = 300.0  # TEST_START -> TEST_END
    silence: float = 120.0  # no console output at all
    poweroff: float = 30.0  # TEST_END -> QEMU exit

    def scaled(self, factor: float) -> Timeouts:
        return Timeouts(
            self.boot * factor, self.test * factor, self.silence * factor, self.poweroff * factor
        )


@dataclass
class ConsoleOutcome:
    """What the console session saw: markers, exit status, how and why it ended."""

    boot_ok: bool = False
    boot_seconds: float | None = None
    test_started: bool = False
    test_rc: int | None = None
    test_seconds: float | None = None
    poweroff_marker: bool = False
    rebooted: bool = False
    qemu_exit: int | None = None
    qemu_signal: int | None = None
    killed: str | None = None  # why kto killed the guest (a timeout, an interrupt)
    stopped: str | None = None  # kto stopped a healthy guest (its own work failed)
    ended_early: str | None = None  # kto stopped the guest: a fatal finding decided the verdict
    sysrq_sent: bool = False
    sysrq_answered: bool = False
    last_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lines: int = 0
    bytes: int = 0
    dropped_bytes: int = 0  # console output beyond the console.log cap (not on disk)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}
