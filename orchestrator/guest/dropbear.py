"""dropbear for the guest: a static sshd per arch, cross-built once from Debian's source.

Static glibc resolves root from /etc/passwd without NSS modules, so the binary runs alone in
kto's initramfs on all three arches.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from orchestrator.config.arch import ArchProfile
from orchestrator.config.schema import load_file_as
from orchestrator.guest.debsrc import cross_built, newest_dsc
from orchestrator.paths import configs_dir
from orchestrator.proc import require_tool, run, tool_version

RECIPE_FILE = "host/dropbear.yaml"


@dataclass(frozen=True)
class DropbearRecipe:
    configure: tuple[str, ...]  # ./configure flags
    localoptions: str  # localoptions.h


@cache
def recipe() -> DropbearRecipe:
    return load_file_as(DropbearRecipe, configs_dir() / RECIPE_FILE, "dropbear recipe")


def dropbear_for(profile: ArchProfile) -> Path:
    """Path of a static dropbear for the arch (built once per source + recipe + compiler)."""
    dsc = newest_dsc(
        "dropbear", "dropbear_*.dsc", "dropbear source (apt-get source, fetched by make setup)"
    )
    triplet = profile.target.triplet
    cc = require_tool(f"{triplet}-gcc", profile.build.cc_package)
    cc_version = tool_version(f"{triplet}-gcc", profile.build.cc_package)
    r = recipe()
    key = json.dumps([list(r.configure), r.localoptions, triplet, cc_version], sort_keys=True)

    def steps(src: Path) -> Path:
        (src / "localoptions.h").write_text(r.localoptions)
        run(
            ["sh", "./configure", f"--host={triplet}", f"CC={cc}", *r.configure],
            cwd=src,
            timeout=600,
        )
        run(
            ["make", f"-j{os.cpu_count() or 1}", "PROGRAMS=dropbear", "STATIC=1"],
            cwd=src,
            timeout=1800,
        )
        return src / "dropbear"

    return cross_built("dropbear", profile.name, dsc, key, profile.target.elf_machine, steps)
