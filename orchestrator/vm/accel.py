"""Choosing the accelerator: KVM only when it is real and fast for this guest.

A /dev/kvm that exists is not enough: PVM (kvm_pvm, a page-table-based software KVM) runs a
stock kernel ~1000x slower than hardware KVM, and cross-arch guests can never use KVM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.arch import arch_of_host, known_arches, load_profile
from orchestrator.errors import UserError


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator for a boot, and why."""

    accel: str  # "kvm" | "tcg"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"accel": self.accel, "reason": self.reason}


@dataclass(frozen=True)
class HostFacts:
    """What the host offers for KVM: its arch, /dev/kvm, PVM, CPU flags."""

    arch: str
    kvm_dev: bool  # /dev/kvm exists and is read-write for us
    pvm: bool  # software KVM (PVM) module loaded
    cpu_flags: frozenset[str]

    @classmethod
    def probe(cls, root: Path = Path("/")) -> HostFacts:
        dev = root / "dev" / "kvm"
        flags: set[str] = set()
        try:
            for line in (root / "proc" / "cpuinfo").read_text().splitlines():
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
        except OSError:
            pass
        return cls(
            # what platform.machine() reads, without importing platform (~1.7 ms here)
            arch=arch_of_host(os.uname().machine),
            kvm_dev=dev.exists() and os.access(dev, os.R_OK | os.W_OK),
            pvm=(root / "sys" / "module" / "kvm_pvm").exists(),
            cpu_flags=frozenset(flags),
        )


def kvm_problem(guest_arch: str, host: HostFacts) -> str | None:
    """Why KVM is not (usefully) available for this guest, or None if it is."""
    if host.arch != guest_arch:
        return f"guest arch {guest_arch} differs from host arch {host.arch}"
    if not host.kvm_dev:
        return "/dev/kvm is missing or not accessible"
    if host.pvm:
        return (
            "/dev/kvm is PVM (software KVM, /sys/module/kvm_pvm): a stock kernel runs "
            "~1000x slower than under TCG"
        )
    # The cpuinfo flags that say hardware virtualisation is present (arch profile).
    wanted = load_profile(host.arch).target.kvm_cpu_flags if host.arch in known_arches() else ()
    if wanted and not any(f in host.cpu_flags for f in wanted):
        return f"the host CPU shows no hardware virtualisation flag ({'/'.join(wanted)})"
    return None


def choose_accel(requested: str, guest_arch: str, host: HostFacts | None = None) -> AccelChoice:
    if requested == "tcg":  # nothing about the host matters (no probe: every profile loads)
        return AccelChoice("tcg", "requested with --accel tcg")
    host = host or HostFacts.probe()
    problem = kvm_problem(guest_arch, host)
    if requested == "kvm":
        if problem and host.arch != guest_arch:
            raise UserError(f"--accel kvm is impossible: {problem}", hint="use --accel tcg")
        if problem:
            return AccelChoice("kvm", f"requested with --accel kvm despite: {problem}")
        return AccelChoice("kvm", "requested with --accel kvm")
    if requested != "auto":
        raise UserError(f"unknown accelerator {requested!r}", hint="use auto, kvm or tcg")
    if problem:
        return AccelChoice("tcg", problem)
    return AccelChoice("kvm", f"hardware KVM on a {host.arch} host")
