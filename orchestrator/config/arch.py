"""Arch profiles (configs/arch/<arch>.yaml): everything kto knows about an architecture.

Validated on load by the shared schema loader; an error names file:line and the key at
fault. Adding an arch means adding a file: the folder listing is the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from orchestrator.config.schema import load_as, read_yaml
from orchestrator.errors import ConfigError, UserError
from orchestrator.paths import configs_dir


@dataclass(frozen=True)
class TargetFacts:
    """Facts about the target arch itself: its tools' triplet, ELF machine, uname."""

    triplet: str  # GNU triplet of the arch's cross tools
    elf_machine: int  # e_machine of every guest binary
    uname_machine: str
    host_aliases: tuple[str, ...]  # platform.machine() names of a host of this arch
    kvm_cpu_flags: tuple[str, ...]  # cpuinfo flags meaning hardware virtualisation (or none)
    # What a stack trace's return addresses are: False (x86_64, arm64) = the instruction after
    # the call, so symbolizing looks one byte back; True (sparc64: %i7) = the call itself.
    return_address_is_call: bool = False


@dataclass(frozen=True)
class BuildProfile:
    """How kto builds a kernel for the arch: tuxmake arch, image, base config, fragments."""

    tuxmake_arch: str
    kernel_image: str  # the make target
    image_path: str  # where make leaves it, in the build directory
    kconfig_base: str
    fragments: tuple[str, ...]
    cc: str
    cc_package: str


@dataclass(frozen=True)
class QemuProfile:
    """How kto boots the arch in QEMU: binary, machine, CPU, console, kernel parameters."""

    binary: str
    package: str
    machine: str
    cpu: dict[str, str]
    console: str
    earlycon: str
    max_cpus: int
    memory: str
    cmdline: str
    initrd_compression: str = field(metadata={"choices": ("gzip", "none")})
    status_serial: str = ""
    nic: str = ""
    nic_onboard: bool = False
    timeout_scale: float = 1.0


@dataclass(frozen=True)
class BusyboxSource:
    """Where the guest's static busybox comes from: the host, a .deb, or a source build."""

    source: str = field(metadata={"choices": ("host", "deb", "build")})
    package: str = ""  # what to install when it is missing
    path: str = ""  # source: host
    deb: str = ""  # source: deb (a glob under <cache>/debs)
    member: str = ""  # source: deb (the file inside the package)
    dsc: str = ""  # source: build (a glob under <cache>/busybox/src)
    config: tuple[str, ...] = ()  # source: build (Debian config parts, concatenated)


@dataclass(frozen=True)
class ArchProfile:
    """One configs/arch/<name>.yaml, validated."""

    name: str
    target: TargetFacts
    build: BuildProfile
    qemu: QemuProfile
    busybox: BusyboxSource
    description: str = ""
    # named fragment sets a test can ask for (`kconfig: [stress]` in test.yaml)
    fragment_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: Path = field(default=Path(), compare=False, init=False)


def arch_dir() -> Path:
    return configs_dir() / "arch"


def known_arches() -> list[str]:
    return sorted(p.stem for p in arch_dir().glob("*.yaml"))


def load_profile_file(path: Path) -> ArchProfile:
    data = read_yaml(path, "arch profile")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an arch profile must be a mapping")
    sets = data.get("fragment_sets", {})
    if not isinstance(sets, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in sets.values()
    ):
        raise ConfigError(
            f"{path}: `fragment_sets` must map a set name to a list of fragment names"
        )
    plain = {k: v for k, v in data.items() if k != "fragment_sets"}
    profile = load_as(ArchProfile, plain, path)
    if profile.name != path.stem:
        raise ConfigError(
            f"{path}: `name` is {profile.name!r}, must match the file name {path.stem!r}"
        )
    object.__setattr__(profile, "fragment_sets", {str(k): tuple(v) for k, v in sets.items()})
    object.__setattr__(profile, "path", path)
    return profile


@cache
def load_profile(arch: str) -> ArchProfile:
    path = arch_dir() / f"{arch}.yaml"
    if not path.exists():
        raise UserError(f"unknown arch {arch!r}", hint=f"known arches: {', '.join(known_arches())}")
    return load_profile_file(path)


def all_profiles() -> list[ArchProfile]:
    return [load_profile(a) for a in known_arches()]


def arch_of_host(machine: str) -> str:
    """The kto arch of a host whose platform.machine() is `machine` (itself if unknown)."""
    for p in all_profiles():
        if machine in p.target.host_aliases:
            return p.name
    return machine
