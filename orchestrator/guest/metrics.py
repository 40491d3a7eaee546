"""Console metric parsers a test can name in test.yaml `metrics:` (rcutorture's statistics)."""

from __future__ import annotations

import re
from typing import Any

_RCU_STATS = re.compile(
    r"(?P<type>\w+)-torture: rtc: \S+ (?:ver|VER): (?P<ver>\d+) .*?"
    r"onoff: (?P<offok>\d+)/(?P<offtry>\d+):(?P<onok>\d+)/(?P<ontry>\d+)"
)
_RCU_PIPE = re.compile(r"(?P<type>\w+)-torture: Reader Pipe: ((?:\s+\d+)+)")
_RCU_START = re.compile(r"(?P<type>\w+)-torture:--- Start of test")
_RCU_END = re.compile(r"(?P<type>\w+)-torture:--- End of test: (?P<result>[A-Z_]+)")


def number(v: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


class RcutortureStats:
    """rcutorture's periodic statistics -> metrics (the last stats block wins)."""

    def __init__(self) -> None:
        self.m: dict[str, Any] = {}

    def feed(self, line: str) -> None:
        if s := _RCU_STATS.search(line):
            self.m.update(
                torture_type=s["type"],
                grace_periods=int(s["ver"]),
                stats_lines=self.m.get("stats_lines", 0) + 1,
                onoff={
                    "offline_successes": int(s["offok"]),
                    "offline_attempts": int(s["offtry"]),
                    "online_successes": int(s["onok"]),
                    "online_attempts": int(s["ontry"]),
                },
            )
        elif p := _RCU_PIPE.search(line):
            pipe = [int(x) for x in p.group(2).split()]
            self.m["reader_pipe"] = pipe
            # Readers that saw more than one grace period elapse: > 0 is a too-short GP.
            self.m["reader_pipe_errors"] = sum(pipe[2:])
        elif s := _RCU_START.search(line):
            self.m["started"] = True
        elif s := _RCU_END.search(line):
            self.m["end"] = s["result"]

    def metrics(self, duration: int | None) -> dict[str, Any]:
        out = dict(self.m)
        if duration and "grace_periods" in out:
            out["grace_periods_per_s"] = round(out["grace_periods"] / duration, 2)
        return out


METRIC_PARSERS = {"rcutorture": RcutortureStats}
