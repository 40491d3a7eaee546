"""The QEMU command line, built by one pure function from (arch profile, boot spec).

Nothing here starts a process: the argv is data, printed in every run record as a
reproducer and tested exhaustively.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config.arch import ArchProfile
from orchestrator.errors import UserError
from orchestrator.guest.protocol import STATUS_PORT

# QEMU's own seccomp filter: no obsolete system calls, no setuid/setgid, no fork/exec, no
# scheduler/affinity changes. A guest that takes over QEMU (a TCG or device model bug) is
# left with QEMU's ordinary system calls, as an unprivileged uid (vm/session.py).
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


@dataclass
class BootSpec:
    """One boot's inputs to the QEMU argv: kernel, initrd, vCPUs, memory, accelerator."""

    kernel: Path
    initrd: Path
    smp: int = 2
    memory: str | None = None
    accel: str = "tcg"  # already resolved: "kvm" | "tcg"
    append: list[str] = field(default_factory=list)
    status_path: Path | None = None  # host file for the guest's status channel
    ssh_port: int | None = None  # 127.0.0.1:PORT on the host forwards to the guest's sshd
    extra: list[str] = field(default_factory=list)


def kernel_cmdline(profile: ArchProfile, spec: BootSpec) -> str:
    q = profile.qemu
    parts = [f"console={q.console}", q.earlycon, q.cmdline, "rdinit=/init", *spec.append]
    return " ".join(p for p in parts if p)


def effective_smp(profile: ArchProfile, smp: int) -> int:
    if smp < 1:
        raise UserError(f"--smp {smp}: need at least one CPU")
    if smp > profile.qemu.max_cpus:
        raise UserError(
            f"--smp {smp}: QEMU's {profile.qemu.machine} for {profile.name} supports at most "
            f"{profile.qemu.max_cpus} CPU(s)",
            hint=f"use --smp {profile.qemu.max_cpus}",
        )
    return smp


def build_argv(profile: ArchProfile, spec: BootSpec) -> list[str]:
    q = profile.qemu
    cpu = q.cpu.get(spec.accel) or q.cpu.get("tcg") or next(iter(q.cpu.values()))
    argv = [
        q.binary,
        "-M",
        q.machine,
        "-accel",
        spec.accel,
        "-cpu",
        cpu,
        "-m",
        spec.memory or q.memory,
    ]
    smp = effective_smp(profile, spec.smp)
    if q.max_cpus > 1:  # sun4u rejects -smp entirely beyond 1; leave it out there
        argv += ["-smp", str(smp)]
    argv += [
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        kernel_cmdline(profile, spec),
        # -nographic muxes serial + monitor on stdio: Ctrl-A b sends a BREAK (SysRq),
        # Ctrl-A c reaches the monitor. -no-reboot turns a reboot/panic into an exit.
        "-nographic",
        "-no-reboot",
        "-sandbox",
        SANDBOX,
    ]
    if spec.status_path and q.status_serial:
        argv += [
            "-device",
            f"{q.status_serial},id=ktoser",
            "-chardev",
            f"file,id=ktostatus,path={spec.status_path}",
            "-device",
            f"virtserialport,bus=ktoser.0,chardev=ktostatus,name={STATUS_PORT}",
        ]
    if spec.ssh_port:
        # User networking; the only way in is a forward bound to the host's loopback.
        user = f"user,id=ktonet,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22"
        if q.nic_onboard:  # the board's own NIC (sun4u's sunhme) is configured with -nic
            argv += ["-nic", f"{user},model={q.nic}"]
        else:
            argv += ["-netdev", user, "-device", f"{q.nic},netdev=ktonet"]
    argv += spec.extra
    return argv


def reproducer(argv: list[str]) -> str:
    return shlex.join(argv)
