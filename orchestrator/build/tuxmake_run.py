"""Running tuxmake (Python API, runtime null, ccache wrapper) for one build step.

A step runs in this process, or, for a series kto should not trust (one from a mail or an
mbox, and every matrix build), in a bubblewrap sandbox: a copy of this process's view of
the file system read-only, writable only where the build writes (the tree's worktree, the
build dir, the step's output dir, the compiler cache; TMPDIR a dir of the step), no network,
and it dies with kto. A patch's Makefile that reaches outside fails its build there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator import progress
from orchestrator.build import kconfig
from orchestrator.build.estimate import BuildProgress
from orchestrator.build.trees import Tree
from orchestrator.config.arch import ArchProfile
from orchestrator.errors import InfraError, KtoError
from orchestrator.orphan import reaper
from orchestrator.proc import require_tool


def tuxmake_build(
    tree: Tree,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    build_dir: Path,
    out_dir: Path,
    targets: list[str],
    jobs: int | None,
    timestamp: str,
) -> dict[str, Any]:
    """The arguments of tuxmake's Build for one step (data: it may run in a sandbox)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    return dict(
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


def _ccache_dir() -> Path:
    # tuxmake's ccache wrapper sets CCACHE_DIR=~/.ccache for the build
    return Path.home() / ".ccache"


def sandbox_argv(params: dict[str, Any]) -> list[str]:
    """bwrap around `python -m orchestrator.build.tuxmake_run PARAMS`."""
    bwrap = require_tool("bwrap", "bubblewrap")
    writable = [params["tree"], params["build_dir"], params["output_dir"], str(_ccache_dir())]
    # /tmp stays read-only (kto itself may live there): temp files go to a dir of the step.
    tmp = Path(params["output_dir"]) / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for w in [*writable, str(tmp)]:
        Path(w).mkdir(parents=True, exist_ok=True)
        argv += ["--bind", w, w]
    argv += ["--setenv", "TMPDIR", str(tmp)]
    # A pid namespace: when bwrap goes (its parent killed), the kernel kills everything in
    # it; without one, make and its compilers outlive the build in their new session.
    argv += ["--unshare-net", "--unshare-ipc", "--unshare-pid", "--die-with-parent"]
    argv += ["--new-session"]
    return [*argv, "--", sys.executable, "-m", "orchestrator.build.tuxmake_run"]


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


class Step:
    """One tuxmake step, here or in the sandbox; `failed` as tuxmake's Build says."""

    def __init__(self, params: dict[str, Any], sandbox: bool) -> None:
        self.params = params
        self.sandbox = sandbox
        self.failed = True

    def run(self) -> None:
        if not self.sandbox:
            from tuxmake.build import Build  # heavy import: only when building

            build = Build(**self.params)
            build.run()
            # tuxmake turns SIGINT/SIGTERM into a failed command and goes on: kto stops.
            if getattr(build, "interrupted", False):
                raise InfraError("the build was interrupted (SIGINT/SIGTERM)")
            self.failed = bool(build.failed)
            return
        res = subprocess.run(
            sandbox_argv(self.params),
            input=json.dumps(self.params),
            capture_output=True,
            text=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        log = Path(self.params["output_dir"]) / "build.log"
        if res.returncode not in (0, 1) or (res.returncode == 1 and not log.exists()):
            raise InfraError(
                f"the build sandbox failed (exit {res.returncode}): "
                f"{(res.stderr or res.stdout).strip()[-500:]}",
                hint="is bubblewrap installed and are user namespaces allowed? "
                "(--no-sandbox builds without it)",
            )
        self.failed = res.returncode != 0


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
        except KtoError:
            raise
        except Exception as exc:  # tuxmake raises its own exception types on setup problems
            raise InfraError(f"tuxmake could not run the {label} step: {exc}") from exc


def errors_excerpt(log: Path, limit: int = 12) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    errs = [
        ln
        for ln in lines
        if "error:" in ln or "Error " in ln or "*** " in ln or ln.startswith("make")
    ]
    return "\n".join((errs or lines)[-limit:])


def _main() -> int:
    """Inside the sandbox: run one step from its parameters on stdin; 1 if it failed."""
    from tuxmake.build import Build

    build = Build(**json.loads(sys.stdin.read()))
    build.run()
    return 1 if build.failed else 0


if __name__ == "__main__":
    sys.exit(_main())
