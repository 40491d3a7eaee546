"""The `kto` command line that runs a recorded job again, from job.json's JobSpec (pure).

`kto run` for a job kto built; `kto boot KERNEL` for one given a prebuilt kernel. Only
options that differ from the defaults are spelled out, so the line reads like one a person
would type (and stays short enough for a mail).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from orchestrator.records.spec import DEFAULT_GRACE, DEFAULT_TEST, JobSpec


def build_args(
    ref: str | None,
    patches: str | None,
    fragments: Sequence[str],
    sandbox: bool | None,
    trusted_tree: bool = False,
    i_trust_this_series: bool = False,
) -> list[str]:
    """The build options of a `kto build` / `kto run` line: the one place the inputs of a
    kernel become a command line (the build record's reproducer and a job's share it).
    The tree comes first in both, where each command line puts it."""
    argv: list[str] = []
    if ref:
        argv += ["--ref", ref]
    if patches:
        argv += ["--patches", patches]
    for frag in fragments:
        argv += ["--config", frag]
    if trusted_tree:
        argv.append("--trusted")
    if sandbox is not None:
        argv.append("--sandbox" if sandbox else "--no-sandbox")
    if i_trust_this_series:
        argv.append("--i-trust-this-series")
    return argv


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
        argv += ["--tree", spec.tree] if spec.tree else []
        argv += build_args(
            spec.ref,
            spec.patches,
            spec.fragments,
            spec.sandbox,
            spec.trusted_tree,
            spec.i_trust_this_series,
        )
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
