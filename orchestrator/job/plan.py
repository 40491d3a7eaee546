"""A JobSpec resolved once, before any work: arch profile, guest test, SKIP, fragments, vCPUs.

Every bad input of a job (unknown arch, test, fragment or kernel path; --smp out of range;
--ssh without --network) fails here, as a UserError, before a build starts or a run
directory is made. What the job needs later reads these resolved values, never the files
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config.arch import ArchProfile, load_profile
from orchestrator.errors import UserError
from orchestrator.guest.protocol import RESERVED_TESTS
from orchestrator.records.outcome import Timeouts
from orchestrator.records.spec import JobSpec
from orchestrator.vm.qemu import effective_smp

if TYPE_CHECKING:  # `kto boot -- CMD` loads no test-spec code (issue 12: start-up cost)
    from orchestrator.guest.testspec import GuestTest


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and, when it came from `kto build`, its build record."""

    image: Path
    build_record: dict[str, Any] | None = None

    @property
    def config_text(self) -> str | None:
        config = self.image.parent / "config"
        return config.read_text() if config.is_file() else None


@dataclass(frozen=True)
class JobPlan:
    """A JobSpec resolved: profile, guest test, SKIP reason, fragments, vCPUs, kernel."""

    spec: JobSpec
    profile: ArchProfile
    test: GuestTest | None  # None: a command job (`-- CMD`) or one /init handles itself
    skip: str | None  # why the test cannot run on this arch: a SKIP, nothing built
    tree: str  # the tree name or path, the default applied ("": a given kernel, no build)
    fragments: tuple[str, ...]  # --config fragments + the ones the test needs
    smp: int
    kernel: Kernel | None  # given by the user (`kto boot KERNEL`): nothing to build


def resolve_kernel(path: Path, profile: ArchProfile) -> Kernel:
    """A kernel image, or a build directory with a build.json from `kto build`."""
    from orchestrator.build.record import load_record

    if path.is_dir():
        rec = load_record(path)
        if rec is None:
            raise UserError(
                f"{path}: a directory without a build.json",
                hint="give a kernel image or a `kto build` output directory",
            )
        if rec["inputs"]["arch"] != profile.name:
            raise UserError(
                f"{path}: built for {rec['inputs']['arch']}, not {profile.name}",
                hint=f"use --arch {rec['inputs']['arch']}",
            )
        return Kernel(path / rec["artifacts"]["kernel"]["path"], rec)
    if not path.is_file():
        raise UserError(
            f"kernel {path} does not exist",
            hint="give a kernel image, a `kto build` directory, or omit it to "
            "build the default tree",
        )
    return Kernel(path, None)


def default_smp(profile: ArchProfile) -> int:
    return min(2, profile.qemu.max_cpus)


def plan_job(spec: JobSpec, prebuilt: Path | None = None) -> JobPlan:
    """`prebuilt`: the kernel a driver built for this job already (a `kto build` dir): the
    spec stays what the job is, the driver only saved it the build."""
    profile = load_profile(spec.arch)
    b = spec.boot
    if (b.ssh_commands or b.fetch) and not b.network:
        raise UserError("--ssh and --fetch need --network")
    if b.fatal_grace < 0:
        raise UserError(
            f"--fatal-grace {b.fatal_grace:g}: seconds, 0 or more (0: never stop early)"
        )
    smp = effective_smp(profile, b.smp if b.smp is not None else default_smp(profile))
    test = None
    if not spec.command and spec.test not in RESERVED_TESTS:
        from orchestrator.guest.testspec import load_test

        test = load_test(spec.test)
    skip = test.skip_reason(profile.name) if test else None
    fragments = list(spec.fragments)
    if test and not skip:
        fragments += [f for f in test.fragments_for(profile.name) if f not in fragments]
    given = prebuilt or (Path(spec.kernel) if spec.kernel else None)
    kernel = resolve_kernel(given, profile) if given else None
    if kernel is None and not skip:
        from orchestrator.build.kernel import resolve_fragments

        resolve_fragments(profile, fragments)  # an unknown fragment fails before the build
    tree = spec.tree
    if tree is None and kernel is not None:
        tree = ""  # nothing to build: kernels/trees.yaml is not read
    elif tree is None:
        from orchestrator.build.trees import load_tree_specs

        tree = load_tree_specs()[1]
    return JobPlan(spec, profile, test, skip, tree, tuple(fragments), smp, kernel)


def timeouts(plan: JobPlan, time_limit: int | None) -> Timeouts:
    """The job's limits before the arch's scale: options, else the test's, else defaults.

    time_limit: the workload's (its duration plus allowance), when the test has one.
    """
    t = Timeouts()
    b = plan.spec.boot
    if b.test_timeout:
        t.test = float(b.test_timeout)
    elif time_limit:
        t.test = float(time_limit)
    elif plan.test:
        t.test = float(plan.test.timeout_s)
    if b.boot_timeout:
        t.boot = float(b.boot_timeout)
    if b.silence_timeout:
        t.silence = float(b.silence_timeout)
    elif plan.test and plan.test.silence_s:
        t.silence = float(plan.test.silence_s)
    return t
