#!/usr/bin/env python3
"""Rebuild cost: `kto build` vs a raw incremental `make` in the same build directory.

Alternating kto and raw make, N times each, on one tree and arch (default debian-6.1,
x86_64), for:

- one-line change: a new function appended to init/main.c (a real compile and link, not a
  comment ccache could skip). kto gets it as a one-patch series (`kto build --patches DIR`),
  raw make as an edit of the same worktree, in the build directory kto uses;
- no-op: kto asked for the same thing again; raw make with nothing changed;
- config switch: the change on the default config and on default + panic-on-oops in turn.
  kto keeps one build directory per final config; raw make switches one directory's
  .config (olddefconfig) and rebuilds.

The raw command is the make line tuxmake runs (same variables, same environment as kto's
builds). Prints medians and the kto/raw ratio per scenario. Goal: one-line change <= 1.5x.

    .venv/bin/python bench/rebuild.py [--arch x86_64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import progress  # noqa: E402
from orchestrator.build.builddirs import config_hash  # noqa: E402
from orchestrator.build.cache import work_dir  # noqa: E402
from orchestrator.build.kernel import BuildRequest, build  # noqa: E402
from orchestrator.build.trees import Tree, resolve_tree  # noqa: E402
from orchestrator.build.tuxmake_run import stable_environment  # noqa: E402
from orchestrator.config.arch import load_profile  # noqa: E402

KTO = [sys.executable, "-m", "orchestrator.cli"]
counter = int(time.time())  # every change is new: no build-cache or ccache hit by accident


def change_text(n: int) -> str:
    return f"\nint kto_bench_{n}(void);\nint kto_bench_{n}(void)\n{{\n\treturn {n % 977};\n}}\n"


def next_n() -> int:
    global counter
    counter += 1
    return counter


def series_dir(worktree: Path, tmp: Path) -> Path:
    """A one-patch series (git format-patch shape) appending a new function to init/main.c."""
    n = next_n()
    # Against the tree's base, whatever series the worktree has applied now.
    base = resolve_tree("debian-6.1").base_commit
    original = subprocess.run(
        ["git", "show", f"{base}:init/main.c"], cwd=worktree, capture_output=True, text=True
    ).stdout
    changed = original + change_text(n)
    diff = "diff --git a/init/main.c b/init/main.c\n" + "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True),
            changed.splitlines(keepends=True),
            "a/init/main.c",
            "b/init/main.c",
        )
    )
    d = tmp / f"series-{n}"
    d.mkdir()
    (d / "0001-bench.patch").write_text(
        f"From: kto bench <bench@example.org>\nSubject: [PATCH] init: bench change {n}\n\n"
        f"A one-line change for bench/rebuild.py.\n---\n{diff}"
    )
    return d


def kto_build(arch: str, patches: Path | None, extra: list[str]) -> float:
    argv = [*KTO, "build", "--arch", arch, "-q", *extra]
    if patches:
        argv += ["--patches", str(patches)]
    t0 = time.monotonic()
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    return took


def base_timestamp(tree: Tree) -> str:
    """KBUILD_BUILD_TIMESTAMP as kto sets it: the base commit's time."""
    out = subprocess.run(
        ["git", "show", "-s", "--format=%ct", tree.base_commit],
        cwd=tree.worktree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "@" + out.strip()


def raw_make(
    arch: str,
    worktree: Path,
    build_dir: Path,
    timestamp: str,
    target: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> float:
    p = load_profile(arch)
    cross = f"{p.target.triplet}-"
    argv = [
        "make",
        "--silent",
        "--keep-going",
        f"--jobs={os.cpu_count() or 2}",
        f"O={build_dir}",
        f"ARCH={p.build.tuxmake_arch}",
        f"CROSS_COMPILE={cross}",
        f"CC=ccache {cross}gcc",
        "HOSTCC=ccache gcc",
        target or p.build.kernel_image,
    ]
    tree = resolve_tree("debian-6.1")
    env = {**os.environ, **stable_environment(tree, timestamp), **(env_extra or {})}
    t0 = time.monotonic()
    res = subprocess.run(argv, cwd=worktree, env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    return took


def raw_change(arch: str, worktree: Path, build_dir: Path, timestamp: str) -> float:
    main_c = worktree / "init" / "main.c"
    original = main_c.read_text()
    main_c.write_text(original + change_text(next_n()))
    try:
        return raw_make(arch, worktree, build_dir, timestamp)
    finally:
        main_c.write_text(original)


def report(name: str, kto: list[float], raw: list[float]) -> None:
    m = statistics.median
    print(
        f"{name:18} kto {m(kto):7.2f}s  raw make {m(raw):7.2f}s  ratio {m(kto) / m(raw):5.2f}x"
        f"   (kto {', '.join(f'{x:.1f}' for x in kto)}; raw {', '.join(f'{x:.1f}' for x in raw)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="x86_64")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    progress.set_quiet(True)
    arch = args.arch
    base = build(BuildRequest(tree="debian-6.1", arch=arch))
    tree = resolve_tree("debian-6.1")
    worktree = tree.worktree
    config_text = (base.dir / "config").read_text()
    build_dir = work_dir(tree.name, arch) / "configs" / config_hash(config_text) / "build"
    timestamp = base_timestamp(tree)
    tmp = Path(tempfile.mkdtemp(prefix="kto-bench-rebuild-"))
    print(f"{arch}, {tree.name} {tree.describe}, build dir {build_dir}")
    try:
        kto_build(arch, series_dir(worktree, tmp), [])  # warm: the dir has a patched build
        kto_s, raw_s = [], []
        for _ in range(args.repeat):
            kto_s.append(kto_build(arch, series_dir(worktree, tmp), []))
            raw_s.append(raw_change(arch, worktree, build_dir, timestamp))
        report("one-line change", kto_s, raw_s)

        last = series_dir(worktree, tmp)
        kto_build(arch, last, [])
        kto_s, raw_s = [], []
        for _ in range(args.repeat):
            kto_s.append(kto_build(arch, last, []))
            raw_s.append(raw_make(arch, worktree, build_dir, timestamp))
        report("no-op", kto_s, raw_s)

        kto_build(arch, series_dir(worktree, tmp), ["--config", "panic-on-oops"])  # warm
        other = build(BuildRequest(tree="debian-6.1", arch=arch, fragments=["panic-on-oops"]))
        configs = [config_text, (other.dir / "config").read_text()]
        kto_s, raw_s = [], []
        scratch = build_dir.parent.parent / "bench-raw" / "build"
        if not scratch.exists():
            shutil.copytree(build_dir, scratch, symlinks=True)
        for i in range(args.repeat * 2):
            extra = ["--config", "panic-on-oops"] if i % 2 else []
            kto_s.append(kto_build(arch, series_dir(worktree, tmp), extra))
            (scratch / ".config").write_text(configs[i % 2])
            raw_s.append(raw_change(arch, worktree, scratch, timestamp))
        report("config switch", kto_s, raw_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
