"""The guest's static busybox per arch, from where the arch profile's `busybox:` says.

Debian's busybox-static for the arches Debian ships (installed on the host, or a fetched
.deb); sparc64 (not in Debian main) is cross-built once from Debian's busybox source package
with Debian's own static config, so all arches run the same busybox version.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from orchestrator import atomic
from orchestrator.config.arch import ArchProfile
from orchestrator.errors import InfraError, MissingDependency
from orchestrator.guest.debsrc import check_static_elf, cross_built, dsc_version, newest_dsc
from orchestrator.paths import cache_dir
from orchestrator.proc import require_tool, run

# Bump when the cross-build steps change, so a cached busybox is rebuilt.
RECIPE_VERSION = "3"


def busybox_for(profile: ArchProfile) -> Path:
    """Path of a static busybox for the arch (fetched/unpacked/built once, then cached),
    checked to be a static binary of the arch."""
    path = busybox_path(profile)
    check_static_elf(path.read_bytes(), profile.target.elf_machine, str(path))
    return path


def busybox_path(profile: ArchProfile) -> Path:
    """Where the arch's busybox is (fetched/unpacked/built first if need be), unchecked."""
    spec = profile.busybox
    if spec.source == "host":
        path = Path(spec.path)
        if not path.is_file():
            raise MissingDependency(f"{path} (static busybox)", spec.package)
    elif spec.source == "deb":
        path = _from_deb(profile)
    else:
        path = _cross_build(profile)
    return path


def _from_deb(profile: ArchProfile) -> Path:
    spec = profile.busybox
    found = sorted((cache_dir() / "debs").glob(spec.deb))
    if not found:
        raise MissingDependency(f"{cache_dir() / 'debs' / spec.deb}", spec.package)
    deb = found[-1]
    out = (
        cache_dir()
        / "busybox"
        / profile.name
        / re.sub(r"[^A-Za-z0-9_.+-]", "_", deb.name)
        / "busybox"
    )
    if out.is_file():
        return out
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kto-deb-") as tmp:
        run([require_tool("dpkg-deb", "dpkg"), "-x", deb, tmp])
        member = Path(tmp) / spec.member
        if not member.is_file():
            raise InfraError(f"{deb}: has no {spec.member}")
        atomic.write_bytes(out, member.read_bytes())
    return out


def _cross_build(profile: ArchProfile) -> Path:
    spec = profile.busybox
    dsc = newest_dsc("busybox", spec.dsc, spec.package)
    prefix = f"{profile.target.triplet}-"
    require_tool(f"{prefix}gcc", profile.build.cc_package)
    make = require_tool("make")
    # No timestamps, as in Debian's own build: the same source gives the same binary, so the
    # initramfs cache key is stable across hosts.
    env = {
        "KCONFIG_NOTIMESTAMP": "1",
        "BB_EXTRA_VERSION": f"Debian {dsc_version(dsc)}, kto cross-build",
    }
    recipe = json.dumps([RECIPE_VERSION, list(spec.config), prefix, env], sort_keys=True)

    def steps(src: Path) -> Path:
        # Debian's static flavour config, exactly as busybox-static on other arches.
        (src / ".config").write_text("".join((src / part).read_text() for part in spec.config))
        # oldconfig asks about nothing new for Debian's own config; answer defaults anyway.
        run([make, "-C", src, "oldconfig"], input="\n" * 5000, env=env)
        jobs = f"-j{os.cpu_count() or 1}"
        run([make, "-C", src, jobs, f"CROSS_COMPILE={prefix}", "busybox"], env=env, timeout=3600)
        return src / "busybox"

    return cross_built("busybox", profile.name, dsc, recipe, profile.target.elf_machine, steps)
