"""A job as data: what to build, how to boot it, what to run and judge, which repeat.

Every driver (`kto run`, `kto boot`, the nightly matrix, the bisect driver) describes its work
as JobSpecs and hands each to job.runner.run_job; nothing else builds, boots or judges. A
spec is immutable and has a stable id: the hash of its sorted fields, so the same work asked
for twice (tonight and last night, or by two drivers) has the same id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orchestrator.digest import hexdigest

DEFAULT_TEST = "smoke"
DEFAULT_GRACE = 15.0  # seconds from a fatal report to QEMU exit, evidence included (job/fatal)
COMMAND_TEST = "command"  # the job name of `kto boot -- CMD`


@dataclass(frozen=True)
class BootOptions:
    """How the guest is booted and judged: vCPUs, memory, timeouts, SSH work, patterns."""

    smp: int | None = None  # None: min(2, the machine's maximum)
    memory: str | None = None  # None: the arch profile's
    accel: str = "auto"
    append: tuple[str, ...] = ()  # extra kernel parameters (after the test's: they win)
    patterns: tuple[str, ...] = ()  # extra console regexes reported as findings
    test_timeout: float | None = None  # None: the test's own limit
    boot_timeout: float | None = None  # None: outcome.Timeouts' default
    silence_timeout: float | None = None
    fatal_grace: float = DEFAULT_GRACE  # a fatal finding ends the job this soon (0: never)
    network: bool = False
    ssh_commands: tuple[str, ...] = ()
    fetch: tuple[str, ...] = ()


_LATER_FIELDS = ("trusted_tree", "i_trust_this_series", "expect")


@dataclass(frozen=True)
class JobSpec:
    """One job as every driver states it: what to build, what to boot, what to run."""

    arch: str
    tree: str | None = None  # a kernels/trees.yaml name or a git tree path; None: the default
    ref: str | None = None
    patches: str | None = None  # an mbox, a directory of patches, or a git range
    fragments: tuple[str, ...] = ()  # Kconfig fragments on top of the arch profile's
    sandbox: bool | None = None  # build in the sandbox; None: build/trust.py decides
    kernel: str | None = None  # a prebuilt image or `kto build` dir: nothing is built
    test: str = DEFAULT_TEST
    command: str | None = None  # `kto boot -- CMD`: run CMD instead of a test
    duration: int | None = None
    test_args: tuple[tuple[str, str], ...] = ()  # run.sh key=value overrides
    boot: BootOptions = field(default_factory=BootOptions)
    repeat: int = 0
    trusted_tree: bool = False  # --trusted: the user declares the --tree PATH trusted
    i_trust_this_series: bool = False  # lets --no-sandbox build a series from a mail
    expect: tuple[str, ...] = ()  # finding titles the job must produce (XFAIL when it does)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Fields added later are left out at their defaults: older specs keep their id.
        for k in _LATER_FIELDS:
            if not d[k]:
                del d[k]
        return d

    @property
    def id(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hexdigest(text.encode())[:16]

    @property
    def test_name(self) -> str:
        """What ran: the test, or "command" for `kto boot -- CMD`."""
        return COMMAND_TEST if self.command else self.test

    @property
    def name(self) -> str:
        """The job's folder name in its run directory."""
        suffix = f"-r{self.repeat}" if self.repeat else ""
        return f"{self.arch}-{self.test_name}{suffix}"

    def with_repeat(self, repeat: int) -> JobSpec:
        return replace(self, repeat=repeat)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        """The inverse of to_dict (job.json keeps the spec: a job can be re-run from it)."""
        boot = dict(d.get("boot") or {})
        for k in ("append", "patterns", "ssh_commands", "fetch"):
            boot[k] = tuple(boot.get(k) or ())
        return cls(
            **{
                **{k: v for k, v in d.items() if k != "boot"},
                "fragments": tuple(d.get("fragments") or ()),
                "expect": tuple(d.get("expect") or ()),
                "test_args": tuple(tuple(kv) for kv in d.get("test_args") or ()),
                "boot": BootOptions(**boot),
            }
        )
