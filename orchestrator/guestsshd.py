"""dropbear for the guest: a static sshd per arch, cross-built once from Debian's source.

Static glibc resolves root from /etc/passwd without NSS modules, so the binary runs alone in
kto's initramfs on all three arches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import atomic, progress
from .errors import MissingDependency
from .locks import file_lock
from .paths import cache_dir, configs_dir
from .proc import require_tool, run
from .profiles import ArchProfile

RECIPE_FILE = "host/dropbear.yaml"


@cache
def recipe() -> dict[str, Any]:
    return yaml.safe_load((configs_dir() / RECIPE_FILE).read_text())


def source_dsc() -> Path:
    found = sorted((cache_dir() / "dropbear" / "src").glob("dropbear_*.dsc"))
    if not found:
        raise MissingDependency(
            "the dropbear source package (for the guest's sshd)",
            "dropbear source (apt-get source, fetched by make setup)",
        )
    return found[-1]


def dropbear_for(profile: ArchProfile) -> Path:
    """Path of a static dropbear for the arch (built once per source + recipe + compiler)."""
    dsc = source_dsc()
    triplet = recipe()["host_triplet"][profile.name]
    cc = require_tool(f"{triplet}-gcc", profile.build.cc_package)
    cc_version = run([cc, "--version"]).stdout.splitlines()[0]
    key_src = json.dumps([dsc.read_text(), recipe(), cc_version], sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    out = cache_dir() / "dropbear" / profile.name / key / "dropbear"
    if out.is_file():
        return out
    with file_lock(
        cache_dir() / "locks" / f"dropbear-{profile.name}.lock",
        f"the {profile.name} dropbear build",
    ):
        if not out.is_file():
            _build(profile.name, dsc, triplet, cc, out)
    return out


def _build(arch: str, dsc: Path, triplet: str, cc: str, out: Path) -> None:
    r = recipe()
    work = out.parent.parent / "build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    timings: dict[str, float] = {}
    try:
        src = work / "src"
        with progress.phase(
            f"dropbear for {arch}: cross-build from {dsc.name} (once, cached)", timings, key="total"
        ):
            run([require_tool("dpkg-source", "dpkg-dev"), "-x", dsc, src])
            (src / "localoptions.h").write_text(r["localoptions"])
            run(
                ["sh", "./configure", f"--host={triplet}", f"CC={cc}", *r["configure"]],
                cwd=src,
                timeout=600,
            )
            run(
                ["make", f"-j{os.cpu_count() or 1}", "PROGRAMS=dropbear", "STATIC=1"],
                cwd=src,
                timeout=1800,
            )
        atomic.write_bytes(out, (src / "dropbear").read_bytes())
        os.chmod(out, 0o755)
        atomic.write_json(
            out.parent / "build.json",
            {
                "dsc": dsc.name,
                "triplet": triplet,
                "seconds": timings["total"],
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
