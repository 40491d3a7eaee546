"""One boot of a guest test: what it adds to the kernel command line and run.sh, its
duration and time limit, and the part of the job record that says so."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.build.fragment_params import fragment_cmdline
from orchestrator.build.record import fragment_names
from orchestrator.errors import UserError
from orchestrator.guest.monitor import WorkloadMonitor
from orchestrator.guest.testspec import GuestTest, args_string, merge_cmdline


@dataclass
class WorkloadPlan:
    test: GuestTest
    duration: int | None
    cmdline: list[str]
    args: str
    time_limit: int
    hz: int
    hz_source: str
    monitor: WorkloadMonitor

    def record(self) -> dict[str, Any]:
        return {
            "test": self.test.name,
            "duration_s": self.duration,
            "cmdline": self.cmdline,
            "args": self.args,
            "time_limit_s": self.time_limit,
            "hz": self.hz,
            "hz_source": self.hz_source,
            "end": self.test.end,
            "pass": {
                "required": [r.regex for r in self.test.criteria.required],
                "results": list(self.test.criteria.results),
                "forbidden": [p.regex for p in self.test.criteria.forbidden],
            },
        }


DEFAULT_HZ = 250  # tinyconfig's CONFIG_HZ on all three arches (checked in 6.1)


def kernel_hz(config_text: str | None) -> tuple[int, str]:
    if config_text:
        m = re.search(r"^CONFIG_HZ=(\d+)$", config_text, re.M)
        if m:
            return int(m.group(1)), "kernel .config"
    return DEFAULT_HZ, f"assumed {DEFAULT_HZ} (no .config beside the kernel)"


def plan(
    test: GuestTest,
    arch: str,
    accel: str,
    *,
    duration: int | None = None,
    arg_overrides: dict[str, str] | None = None,
    build_record: dict[str, Any] | None = None,
    config_text: str | None = None,
) -> WorkloadPlan:
    frags = fragment_names(build_record)
    if frags is not None:
        lacking = [f for f in test.fragments_for(arch) if f not in frags]
        if lacking:
            raise UserError(
                f"guest test {test.name!r} needs Kconfig fragment(s) {', '.join(lacking)} "
                "and this kernel was built without them",
                hint=f"`kto run --test {test.name}` adds them to the build; or "
                + " ".join(f"--config {f}" for f in lacking),
            )
    dur = test.duration_for(arch, accel, duration)
    hz, hz_source = kernel_hz(config_text)
    cmdline = merge_cmdline(fragment_cmdline(frags or []), test.render_cmdline(dur, hz))
    args = args_string(test.render_args(dur, arg_overrides or {}))
    return WorkloadPlan(
        test,
        dur,
        cmdline,
        args,
        test.time_limit(dur),
        hz,
        hz_source,
        WorkloadMonitor(test, dur),
    )
