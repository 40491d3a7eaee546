"""The `kto` command line that runs a recorded job again, from job.json's JobSpec (pure).

`kto run` for a job kto built; `kto boot KERNEL` for one given a prebuilt kernel. Only
options that differ from the defaults are spelled out, so the line reads like one a person
would type (and stays short enough for a mail).
"""

from __future__ import annotations

import shlex
from typing import Any

from orchestrator.records.spec import DEFAULT_GRACE, DEFAULT_TEST, JobSpec


def kto_command(spec_dict: dict[str, Any]) -> str | None:
    """The reproducer of a job.json `job` field; None when it is not a readable JobSpec."""
    try:
        spec = JobSpec.from_dict(spec_dict)
    except (TypeError, ValueError):
        return None
    if spec.kernel:
        argv = ["kto", "boot", spec.kernel, "--arch", spec.arch]
    else:
        argv = ["kto", "run", "--arch", spec.arch]
        if spec.tree:
            argv += ["--tree", spec.tree]
        if spec.ref:
            argv += ["--ref", spec.ref]
        if spec.patches:
            argv += ["--patches", spec.patches]
        for frag in spec.fragments:
            argv += ["--config", frag]
        if spec.sandbox is not None:
            argv.append("--sandbox" if spec.sandbox else "--no-sandbox")
    if spec.test != DEFAULT_TEST and not spec.command:
        argv += ["--test", spec.test]
    if spec.duration is not None:
        argv += ["--duration", str(spec.duration)]
    for key, value in spec.test_args:
        argv += ["--arg", f"{key}={value}"]
    b = spec.boot
    if b.smp is not None:
        argv += ["--smp", str(b.smp)]
    if b.memory:
        argv += ["--mem", b.memory]
    if b.accel != "auto":
        argv += ["--accel", b.accel]
    for arg in b.append:
        argv += ["--append", arg]
    for pattern in b.patterns:
        argv += ["--pattern", pattern]
    for title in spec.expect:
        argv += ["--expect", title]
    if b.fatal_grace != DEFAULT_GRACE:
        argv += ["--fatal-grace", f"{b.fatal_grace:g}"]
    if b.network:
        argv.append("--network")
    line = shlex.join(argv)
    if spec.command:
        line += " -- " + spec.command  # already a shell-quoted command line
    return line
