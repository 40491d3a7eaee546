"""Arch profiles (configs/arch/<arch>.yaml): everything kto knows about an architecture.

Validated on load; an error names the file and the key at fault. Adding an arch means adding
a file: the folder listing is the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UserError
from .paths import configs_dir


@dataclass(frozen=True)
class BuildProfile:
    tuxmake_arch: str
    kernel_image: str
    image_path: str
    kconfig_base: str
    fragments: tuple[str, ...]
    cc: str
    cc_package: str


@dataclass(frozen=True)
class QemuProfile:
    binary: str
    package: str
    machine: str
    cpu: dict[str, str]
    console: str
    earlycon: str
    max_cpus: int
    memory: str
    cmdline: str
    initrd_compression: str
    status_serial: str
    nic: str
    nic_onboard: bool
    timeout_scale: float


@dataclass(frozen=True)
class ArchProfile:
    name: str
    description: str
    build: BuildProfile
    qemu: QemuProfile
    path: Path = field(compare=False)
    # named fragment sets a test can ask for (`kconfig: [stress]` in test.yaml)
    fragment_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)


def arch_dir() -> Path:
    return configs_dir() / "arch"


def known_arches() -> list[str]:
    return sorted(p.stem for p in arch_dir().glob("*.yaml"))


def _section(data: dict[str, Any], key: str, cls: type, path: Path) -> Any:
    sec = data.get(key)
    if not isinstance(sec, dict):
        raise ConfigError(f"{path}: `{key}` must be a mapping")
    fields = cls.__dataclass_fields__
    unknown = set(sec) - set(fields)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {key}.{', '.join(sorted(unknown))}")
    missing = [f for f in fields if f not in sec]
    if missing:
        raise ConfigError(f"{path}: missing key {key}.{missing[0]}")
    values = {}
    for name, f in fields.items():
        v = sec[name]
        typ = f.type if isinstance(f.type, str) else f.type.__name__
        if typ.startswith("tuple"):
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"{path}: {key}.{name} must be a list of strings")
            v = tuple(v)
        elif typ.startswith("dict"):
            if not isinstance(v, dict) or not v:
                raise ConfigError(f"{path}: {key}.{name} must be a non-empty mapping")
            v = {str(a): str(b) for a, b in v.items()}
        elif typ == "bool":
            if not isinstance(v, bool):
                raise ConfigError(f"{path}: {key}.{name} must be true or false")
        elif typ == "int":
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{path}: {key}.{name} must be a positive integer")
        elif typ == "float":
            if not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"{path}: {key}.{name} must be a positive number")
            v = float(v)
        elif not isinstance(v, str):
            raise ConfigError(f"{path}: {key}.{name} must be a string")
        values[name] = v
    return cls(**values)


def load_profile_file(path: Path) -> ArchProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read arch profile: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    name = data.get("name")
    if name != path.stem:
        raise ConfigError(f"{path}: `name` is {name!r}, must match the file name {path.stem!r}")
    sets = data.get("fragment_sets", {})
    if not isinstance(sets, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in sets.values()
    ):
        raise ConfigError(
            f"{path}: `fragment_sets` must map a set name to a list of fragment names"
        )
    return ArchProfile(
        name=name,
        fragment_sets={str(k): tuple(v) for k, v in sets.items()},
        description=str(data.get("description", "")),
        build=_section(data, "build", BuildProfile, path),
        qemu=_section(data, "qemu", QemuProfile, path),
        path=path,
    )


@cache
def load_profile(arch: str) -> ArchProfile:
    path = arch_dir() / f"{arch}.yaml"
    if not path.exists():
        raise UserError(f"unknown arch {arch!r}", hint=f"known arches: {', '.join(known_arches())}")
    return load_profile_file(path)
