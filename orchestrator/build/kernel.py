"""Kernel builds: tree + series + fragments -> a bootable image in a content-addressed cache.

The cache key is (tree commit, patchset hash, final .config, toolchain version, image target):
an identical request is a cache hit that compiles nothing. Builds run with tuxmake's Python
API (runtime null, ccache wrapper) in one reused out-of-tree build dir per tree and arch, so
changes rebuild incrementally. The tree lock covers apply + build: two kto processes using
the same tree take turns.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__, atomic, progress
from orchestrator.build import kconfig
from orchestrator.build.estimate import BuildProgress
from orchestrator.build.patches import Series, apply_series, load_series
from orchestrator.build.record import BuildResult, load_record, write_record
from orchestrator.build.trees import Tree, resolve_tree, tree_lock
from orchestrator.config.arch import ArchProfile, load_profile
from orchestrator.errors import BuildError, InfraError
from orchestrator.paths import cache_dir
from orchestrator.proc import require_tool, run
from orchestrator.results.layout import BUILD_LOG


@dataclass
class BuildRequest:
    tree: str
    arch: str
    ref: str | None = None
    patches: str | None = None
    fragments: list[str] = field(default_factory=list)  # on top of the profile's own
    jobs: int | None = None

    def command_line(self) -> str:
        argv = ["kto", "build", "--tree", self.tree, "--arch", self.arch]
        if self.ref:
            argv += ["--ref", self.ref]
        if self.patches:
            argv += ["--patches", self.patches]
        for f in self.fragments:
            argv += ["--config", f]
        return shlex.join(argv)


def artifacts_root() -> Path:
    return cache_dir() / "builds"


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    if keep == text and len(text) < 40:
        return keep
    return f"{keep[-24:]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def work_dir(tree_name: str, arch: str) -> Path:
    """Reused per (tree, arch): out-of-tree build dir + patch staging, for incremental builds."""
    return artifacts_root() / "work" / _slug(tree_name) / arch


def toolchain_version(profile: ArchProfile) -> str:
    cc = require_tool(profile.build.cc, profile.build.cc_package)
    return run([cc, "--version"]).stdout.splitlines()[0].strip()


def cache_key(
    tree_commit: str, series_hash: str, config_text: str, toolchain: str, image_target: str
) -> str:
    h = hashlib.sha256()
    for part in (tree_commit, series_hash, config_text, toolchain, image_target):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def request_key(
    base_commit: str,
    series_hash: str,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    toolchain: str,
) -> str:
    """The inputs of a build before configuring: they determine the final config, so an
    index from this key to the cache key lets a repeated request skip apply + config."""
    parts = [
        base_commit,
        series_hash,
        profile.build.kconfig_base,
        profile.build.tuxmake_arch,
        profile.build.kernel_image,
        toolchain,
        *(f.sha256() for f in fragments),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _read_index(root: Path, rkey: str) -> str | None:
    try:
        return (root / "requests" / rkey).read_text().strip() or None
    except OSError:
        return None


def _write_index(root: Path, rkey: str, key: str) -> None:
    atomic.write_text(root / "requests" / rkey, key + "\n")


def _cached(
    root: Path,
    key: str | None,
    timings: dict[str, float],
    t0: float,
    why: str,
    req: BuildRequest,
) -> BuildResult | None:
    if not key:
        return None
    record = load_record(root / key)
    if not record or record.get("status") != "PASS":
        return None
    progress.say(f"cache hit {key} ({why}): nothing to compile")
    record["cache_hit"] = True
    # The artifact answers this request too; its reproducer is this request's command line.
    record["built_by"] = record.get("reproducer")
    record["reproducer"] = req.command_line()
    record["durations_this_request"] = {**timings, "total": round(time.monotonic() - t0, 3)}
    return BuildResult(record, root / key)


BUILDING_MARK = ".kto-building"


def _discard_if_interrupted(build_dir: Path) -> None:
    """A build killed mid-compile can leave truncated objects that make trusts afterwards
    ("member ... in archive is not an object"): such a build dir is started afresh."""
    mark = build_dir / BUILDING_MARK
    if mark.exists():
        progress.say(f"the last build in {build_dir} was interrupted: starting it clean")
        shutil.rmtree(build_dir)


def resolve_fragments(profile: ArchProfile, extra: list[str]) -> list[kconfig.Fragment]:
    names = list(profile.build.fragments) + [f for f in extra if f not in profile.build.fragments]
    return [kconfig.find_fragment(n) for n in names]


def _tuxmake_build(
    tree: Tree,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    build_dir: Path,
    out_dir: Path,
    targets: list[str],
    jobs: int | None,
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
        # tuxmake's ccache wrapper sets CCACHE_DIR (~/.ccache); the base dir makes hits
        # independent of where the tree lives.
        environment={"CCACHE_BASEDIR": str(tree.worktree)},
        kconfig=profile.build.kconfig_base,
        kconfig_add=[str(f.path) for f in fragments],
        kernel_image=profile.build.kernel_image,
        targets=targets,
        jobs=jobs or os.cpu_count() or 2,
        quiet=True,
        auto_cleanup=False,
    )


def _last_log_line(log: Path) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 400))
            lines = fh.read().decode(errors="replace").strip().splitlines()
        return f"({lines[-1].strip()[:70]})" if lines else ""
    except OSError:
        return ""


def _run_tuxmake(
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

    with progress.phase(label, timings, key=key, ticker=ticker, every=20):
        try:
            build.run()
        except Exception as exc:  # tuxmake raises its own exception types on setup problems
            raise InfraError(f"tuxmake could not run the {label} step: {exc}") from exc


def _errors_excerpt(log: Path, limit: int = 12) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    errs = [ln for ln in lines if "error:" in ln or "Error " in ln or ln.startswith("make")]
    return "\n".join((errs or lines)[-limit:])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plan(req: BuildRequest) -> dict[str, Any]:
    """What `build` would do, without touching trees or compilers (for --dry-run)."""
    profile = load_profile(req.arch)
    fragments = resolve_fragments(profile, req.fragments)
    argv = [
        "tuxmake",
        "--runtime",
        "null",
        "--target-arch",
        profile.build.tuxmake_arch,
        "--toolchain",
        "gcc",
        "--wrapper",
        "ccache",
        "--kconfig",
        profile.build.kconfig_base,
    ]
    for f in fragments:
        argv += ["--kconfig-add", str(f.path)]
    argv += [
        "--kernel-image",
        profile.build.kernel_image,
        "--directory",
        f"<tree {req.tree}>",
        "--build-dir",
        str(work_dir(req.tree, profile.name) / "build"),
        "config",
        "kernel",
    ]
    return {
        "tree": req.tree,
        "ref": req.ref or "HEAD",
        "arch": profile.name,
        "patches": req.patches or "(none)",
        "fragments": [str(f.path) for f in fragments],
        "steps": [
            f"prepare tree {req.tree} (extract + commit once, if a named Debian tree)",
            f"git am -3 the series from {req.patches} on branch kto/work"
            if req.patches
            else "check out the tree's commit on branch kto/work",
            "tuxmake config; verify every fragment option is in the final .config",
            f"look up the build cache under {artifacts_root()}",
            "on a miss: " + shlex.join(argv),
        ],
    }


def build(req: BuildRequest) -> BuildResult:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    profile = load_profile(req.arch)
    fragments = resolve_fragments(profile, req.fragments)
    for frag in fragments:
        kconfig.parse_fragment(frag)  # bad lines fail before any slow work
    toolchain = toolchain_version(profile)
    require_tool("ccache")

    with progress.phase(f"tree {req.tree}", timings, key="tree"):
        tree = resolve_tree(req.tree, req.ref)
    with progress.phase("read patch series", timings, key="series"):
        series: Series = load_series(req.patches, tree)
    if series.patches:
        progress.say(
            f"series {series.hash}: {len(series.patches)} patch(es): "
            + "; ".join(f"{p.nm} {p.subject}" for p in series.patches[:5])
        )

    root = artifacts_root()
    rkey = request_key(tree.base_commit, series.hash, profile, fragments, toolchain)
    hit = _cached(
        root, _read_index(root, rkey), timings, t0, "same inputs as an earlier build", req
    )
    if hit:
        return hit
    work = work_dir(tree.name, profile.name)
    with tree_lock(tree):
        with progress.phase("apply series", timings, key="apply"):
            head = apply_series(tree, series, work / "patches")

        staging = root / f".staging-{os.getpid()}-{int(time.time() * 1000)}"
        build_dir = work / "build"
        _discard_if_interrupted(build_dir)
        (build_dir / ".config").unlink(missing_ok=True)  # tuxmake reuses an existing .config
        cfg_build = _tuxmake_build(
            tree, profile, fragments, build_dir, staging / "config", ["config"], req.jobs
        )
        _run_tuxmake(cfg_build, staging / "config" / BUILD_LOG, "config", timings, "config")
        config_file = build_dir / ".config"
        if cfg_build.failed or not config_file.exists():
            raise BuildError(
                f"config step failed for {profile.name}:\n"
                f"{_errors_excerpt(staging / 'config' / BUILD_LOG)}",
                hint=f"full log: {staging / 'config' / BUILD_LOG}",
            )
        config_text = config_file.read_text()
        kconfig.verify(fragments, config_text, config_file)

        key = cache_key(
            tree.base_commit, series.hash, config_text, toolchain, profile.build.kernel_image
        )
        final = root / key
        hit = _cached(root, key, timings, t0, "same final config as an earlier build", req)
        if hit:
            shutil.rmtree(staging, ignore_errors=True)
            _write_index(root, rkey, key)
            return hit

        out = staging / "out"
        # Removed only when make has finished (pass or fail), never on a kill or an interrupt.
        (build_dir / BUILDING_MARK).write_text(f"{os.getpid()}\n")
        kbuild = _tuxmake_build(
            tree, profile, fragments, build_dir, out, ["config", "kernel"], req.jobs
        )
        estimate = BuildProgress(build_dir, work)
        label = f"build {profile.name} kernel"
        _run_tuxmake(kbuild, out / BUILD_LOG, label, timings, "kernel", estimate)
        (build_dir / BUILDING_MARK).unlink(missing_ok=True)
        meta = (
            json.loads((out / "metadata.json").read_text())
            if (out / "metadata.json").exists()
            else {}
        )
        image = out / profile.build.kernel_image
        if kbuild.failed or not image.exists():
            failed_dir = (
                root / "failed" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile.name}-{key[:8]}"
            )
            failed_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out), failed_dir)
            shutil.rmtree(staging, ignore_errors=True)
            raise BuildError(
                f"{profile.name} kernel build failed ({tree.name} {tree.describe}, series "
                f"{series.hash}):\n{_errors_excerpt(failed_dir / BUILD_LOG)}",
                hint=f"full log: {failed_dir / BUILD_LOG}",
            )
        estimate.done()  # only a build that worked is a yardstick for the next one
        results = meta.get("results", {})
        record = {
            "kto_version": __version__,
            "status": "PASS",
            "key": key,
            "cache_hit": False,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "reproducer": req.command_line(),
            "tuxmake_reproducer": meta.get("build", {}).get("reproducer_cmdline"),
            "inputs": {
                "tree": tree.name,
                "repo": str(tree.repo),
                "worktree": str(tree.worktree),
                "ref": tree.ref,
                "base_commit": tree.base_commit,
                "describe": tree.describe,
                "head_commit": head,
                "arch": profile.name,
                "kconfig_base": profile.build.kconfig_base,
                "fragments": [
                    {"name": f.name, "path": str(f.path), "sha256": f.sha256()} for f in fragments
                ],
                "series": series.summary(),
            },
            "toolchain": {"cc": profile.build.cc, "version": toolchain},
            "durations": {**timings, "total": round(time.monotonic() - t0, 3)},
            "tuxmake": {
                "version": meta.get("tuxmake", {}).get("version"),
                "status": results.get("status"),
                "targets": results.get("targets"),
                "duration": results.get("duration"),
                "compiler": meta.get("compiler"),
            },
            "warnings": results.get("warnings", 0),
            "errors": results.get("errors", 0),
            "artifacts": {
                "kernel": {
                    "path": image.name,
                    "sha256": _sha256(image),
                    "size": image.stat().st_size,
                },
                "config": {"path": "config", "sha256": _sha256(out / "config")},
                "build_log": {"path": BUILD_LOG},
            },
        }
        write_record(out, record)
        if final.exists():
            shutil.rmtree(final)  # an incomplete entry (no PASS record) from a killed run
        out.rename(final)
        shutil.rmtree(staging, ignore_errors=True)
        _write_index(root, rkey, key)
        return BuildResult(record, final)
