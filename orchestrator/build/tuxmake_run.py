"""Running tuxmake (Python API, runtime null, ccache wrapper) for one build step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator import progress
from orchestrator.build import kconfig
from orchestrator.build.estimate import BuildProgress
from orchestrator.build.trees import Tree
from orchestrator.config.arch import ArchProfile
from orchestrator.errors import InfraError
from orchestrator.orphan import reaper


def tuxmake_build(
    tree: Tree,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    build_dir: Path,
    out_dir: Path,
    targets: list[str],
    jobs: int | None,
    timestamp: str,
) -> Any:
    from tuxmake.build import Build  # heavy import: only when building

    out_dir.mkdir(parents=True, exist_ok=True)
    return Build(
        tree=str(tree.worktree),
        output_dir=str(out_dir),
        build_dir=str(build_dir),
        target_arch=profile.build.tuxmake_arch,
        toolchain="gcc",
        wrapper="ccache",
        runtime="null",
        environment=stable_environment(tree, timestamp),
        kconfig=profile.build.kconfig_base,
        kconfig_add=[str(f.path) for f in fragments],
        kernel_image=profile.build.kernel_image,
        # "make:<target>" is a pass-through `make <target>` (tuxmake's make_target).
        targets=[t for t in targets if not t.startswith("make:")],
        make_target=[t.removeprefix("make:") for t in targets if t.startswith("make:")] or None,
        jobs=jobs or os.cpu_count() or 2,
        quiet=True,
        auto_cleanup=False,
    )


def stable_environment(tree: Tree, timestamp: str) -> dict[str, str]:
    """Environment values that feed compile command lines or generated headers, fixed per
    tree, so that a rebuild recompiles only what a patch changed (see docs/architecture.md).

    - CCACHE_BASEDIR: tuxmake's ccache wrapper sets CCACHE_DIR (~/.ccache); the base dir
      makes hits independent of where the tree lives;
    - KCFLAGS empty: tuxmake's default puts the build directory into every compile command,
      so a build directory could never move and two config directories never share ccache;
    - KBUILD_BUILD_TIMESTAMP / _VERSION / _USER / _HOST: tuxmake's timestamp is the tree
      HEAD's (new with every applied series) and kbuild counts links in .version, each of
      which rewrites include/generated/compile.h and recompiles init/version.o.
    """
    return {
        "CCACHE_BASEDIR": str(tree.worktree),
        "KCFLAGS": "",
        "KBUILD_BUILD_TIMESTAMP": timestamp,
        "KBUILD_BUILD_VERSION": "1",
        "KBUILD_BUILD_USER": "kto",
        "KBUILD_BUILD_HOST": "kto",
    }


def _last_log_line(log: Path) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 400))
            lines = fh.read().decode(errors="replace").strip().splitlines()
        return f"({lines[-1].strip()[:70]})" if lines else ""
    except OSError:
        return ""


def run_tuxmake(
    build: Any,
    log: Path,
    label: str,
    timings: dict[str, float],
    key: str,
    estimate: BuildProgress | None = None,
) -> None:
    def ticker() -> str:
        tail = _last_log_line(log)
        return estimate.ticker(tail) if estimate else tail

    with progress.phase(label, timings, key=key, ticker=ticker, every=20), reaper():
        try:
            build.run()
        except Exception as exc:  # tuxmake raises its own exception types on setup problems
            raise InfraError(f"tuxmake could not run the {label} step: {exc}") from exc


def errors_excerpt(log: Path, limit: int = 12) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    errs = [ln for ln in lines if "error:" in ln or "Error " in ln or ln.startswith("make")]
    return "\n".join((errs or lines)[-limit:])
