#!/usr/bin/env python3
"""What debug info (configs/kconfig/debug-info.config) costs: build time and disk, per arch.

Per arch, on debian-6.1:

- cold, with debug info: `kto build` of the default kernel (every kto kernel has the
  fragment), when its final config is new to the cache: every compile is a ccache miss
  (the -g flags are new). Its `kernel` step is the number; run it right after a change of
  the fragment, or with KTO_CACHE / CCACHE_DIR pointing somewhere empty;
- cold, without: the same final config with debug info turned off (olddefconfig), made
  from scratch in a temporary build dir with the same make line and an empty ccache
  (CCACHE_DIR in the temp dir): the same all-miss compile as kto's cold build;
- incremental: a one-line change to init/main.c rebuilt in each of the two build dirs
  (median of --incremental runs): what a bisect step or the next series pays;
- disk: the build dir, the vmlinux, the kernel image.

A kto build that was already cached is reported as such (no cold number for it), unless
--raw-on: then the with-debug-info config is also made from scratch in a temporary build
dir with an empty ccache, exactly like the one without (a cold number any time).

    .venv/bin/python bench/debuginfo.py [--arches x86_64,arm64,sparc64] [--incremental 2]
                                        [--raw-on]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rebuild import base_timestamp, change_text, next_n, raw_make  # noqa: E402

from orchestrator import progress  # noqa: E402
from orchestrator.build.builddirs import config_hash  # noqa: E402
from orchestrator.build.cache import work_dir  # noqa: E402
from orchestrator.build.kernel import BuildRequest, build  # noqa: E402
from orchestrator.build.trees import resolve_tree  # noqa: E402
from orchestrator.config.arch import load_profile  # noqa: E402

DEBUG_OFF = {
    "CONFIG_DEBUG_INFO_NONE": "CONFIG_DEBUG_INFO_NONE=y",
    "CONFIG_DEBUG_INFO_DWARF5": "# CONFIG_DEBUG_INFO_DWARF5 is not set",
}


def without_debug_info(config: str) -> str:
    keep = [
        ln
        for ln in config.splitlines()
        if not any(ln.startswith((k + "=", f"# {k} ")) for k in DEBUG_OFF)
    ]
    return "\n".join([*keep, *DEBUG_OFF.values()]) + "\n"


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout
    return int(out.split()[0])


def mib(n: float) -> str:
    return f"{n / (1 << 20):7.0f} MiB"


def incremental(arch: str, worktree: Path, build_dir: Path, ts: str, n: int, env: dict) -> float:
    main_c = worktree / "init" / "main.c"
    original = main_c.read_text()
    runs = []
    try:
        for _ in range(n):
            main_c.write_text(original + change_text(next_n()))
            runs.append(raw_make(arch, worktree, build_dir, ts, env_extra=env))
    finally:
        main_c.write_text(original)
        raw_make(arch, worktree, build_dir, ts, env_extra=env)  # back to the tree as it is
    return statistics.median(runs)


def bench_arch(arch: str, n: int, raw_on: bool = False) -> dict[str, object]:
    profile = load_profile(arch)
    on = build(BuildRequest(tree="debian-6.1", arch=arch))
    record = on.record
    tree = resolve_tree("debian-6.1")
    worktree = tree.worktree
    ts = base_timestamp(tree)
    config_on = (on.dir / "config").read_text()
    dir_on = work_dir(tree.name, arch) / "configs" / config_hash(config_on) / "build"
    row: dict[str, object] = {
        "arch": arch,
        "cached": on.cache_hit,
        "cold_on_s": record["durations"]["kernel"],
    }
    tmp = Path(tempfile.mkdtemp(prefix=f"kto-bench-debuginfo-{arch}-"))
    try:
        dir_off = tmp / "build"
        dir_off.mkdir()
        (dir_off / ".config").write_text(without_debug_info(config_on))
        env = {"CCACHE_DIR": str(tmp / "ccache")}
        raw_make(arch, worktree, dir_off, ts, target="olddefconfig", env_extra=env)
        final_off = (dir_off / ".config").read_text()
        assert "CONFIG_DEBUG_INFO=y" not in final_off, "debug info is still on"
        row["cold_off_s"] = raw_make(arch, worktree, dir_off, ts, env_extra=env)
        if raw_on:
            scratch = tmp / "build-on"
            scratch.mkdir()
            (scratch / ".config").write_text(config_on)
            env_on = {"CCACHE_DIR": str(tmp / "ccache-on")}
            row["cold_on_s"] = raw_make(arch, worktree, scratch, ts, env_extra=env_on)
            row["cached"] = False
            shutil.rmtree(scratch, ignore_errors=True)
        row["incr_off_s"] = incremental(arch, worktree, dir_off, ts, n, env)
        row["incr_on_s"] = incremental(arch, worktree, dir_on, ts, n, {})
        image = profile.build.image_path
        row["disk_off"], row["disk_on"] = du(dir_off), du(dir_on)
        row["vmlinux_off"] = (dir_off / "vmlinux").stat().st_size
        row["vmlinux_on"] = (dir_on / "vmlinux").stat().st_size
        row["image_off"] = (dir_off / image).stat().st_size
        row["image_on"] = (dir_on / image).stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arches", default="x86_64,arm64,sparc64")
    ap.add_argument("--incremental", type=int, default=2)
    ap.add_argument("--raw-on", action="store_true", help="cold-build the debug config raw too")
    args = ap.parse_args()
    progress.set_quiet(True)
    for arch in args.arches.split(","):
        r = bench_arch(arch, args.incremental, args.raw_on)
        cold = (
            "kto build was cached: no cold number"
            if r["cached"]
            else f"{r['cold_on_s']:.0f}s vs {r['cold_off_s']:.0f}s "
            f"= {float(r['cold_on_s']) / float(r['cold_off_s']):.2f}x"  # type: ignore[arg-type]
        )
        print(f"{arch}: cold build with/without debug info {cold}")
        print(
            f"  one-line change: {r['incr_on_s']:.1f}s vs {r['incr_off_s']:.1f}s "
            f"= {float(r['incr_on_s']) / float(r['incr_off_s']):.2f}x"  # type: ignore[arg-type]
        )
        for what in ("disk", "vmlinux", "image"):
            on, off = int(r[f"{what}_on"]), int(r[f"{what}_off"])  # type: ignore[call-overload]
            print(f"  {what:8} {mib(on)} vs {mib(off)} = {on / off:.2f}x")
        print(f"  {json.dumps(r)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
