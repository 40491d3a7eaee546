"""Which Debian package provides a host tool: configs/host/tools.yaml, plus the per-arch
tools (cross compiler, QEMU binary) that the arch profiles name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from orchestrator.config.schema import load_file_as
from orchestrator.paths import configs_dir


@dataclass(frozen=True)
class ToolList:
    tools: dict[str, str]


@cache
def _tool_packages() -> dict[str, str]:
    from orchestrator.config.arch import all_profiles

    path = configs_dir() / "host" / "tools.yaml"
    packages = dict(load_file_as(ToolList, path, "host tool list").tools)
    for p in all_profiles():
        packages.setdefault(p.build.cc, p.build.cc_package)
        packages.setdefault(f"{p.target.triplet}-gcc", p.build.cc_package)
        packages.setdefault(p.qemu.binary, p.qemu.package)
        # addr2line and nm decode stack frames (orchestrator/symbolize): the cross binutils,
        # which the cross gcc package depends on.
        for tool in ("addr2line", "nm"):
            packages.setdefault(f"{p.target.triplet}-{tool}", binutils_package(p.target.triplet))
    return packages


def binutils_package(triplet: str) -> str:
    """Debian's cross binutils package of a GNU triplet (x86_64-linux-gnu ->
    binutils-x86-64-linux-gnu: Debian package names have no underscores)."""
    return f"binutils-{triplet.replace('_', '-')}"


def package_for(tool: str) -> str:
    return _tool_packages().get(tool, f"the package that provides `{tool}`")
