"""Kernel builds: tree + series + fragments -> a bootable image in a content-addressed cache.

The cache key is (tree commit, patchset hash, final .config, toolchain version, image target):
an identical request is a cache hit that compiles nothing. Builds run with tuxmake's Python
API (runtime null, ccache wrapper) in a reused out-of-tree build dir per (tree, arch, final
config) with a stable environment, so a change rebuilds only what it touched, and a config
step that is skipped when its inputs are known. The tree lock covers apply + build: two kto
processes using the same tree take turns. Whether a build runs in the sandbox, and which
cache domain it reads and writes, is build/trust.py's decision (`_resolve_inputs`), for
every driver alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator import __version__, progress
from orchestrator.build import kconfig
from orchestrator.build.builddirs import (
    BUILDING_MARK,
    build_dir_for,
    config_build_dir,
    evict,
    prune_kept_vmlinux,
    write_new,
)
from orchestrator.build.cache import (
    OWNER_SEP,
    artifacts_root,
    cache_key,
    cached,
    config_key,
    read_config,
    read_index,
    request_key,
    sandbox_ccache,
    work_dir,
    write_config,
    write_index,
)
from orchestrator.build.estimate import BuildProgress
from orchestrator.build.patches import Series, apply_series, load_series
from orchestrator.build.record import BuildResult, write_record
from orchestrator.build.trees import Tree, resolve_tree, tree_lock
from orchestrator.build.trust import TRUSTED, Trust, decide, require_sandbox
from orchestrator.build.tuxmake_run import (
    Sandbox,
    Step,
    copy_beneath,
    errors_excerpt,
    open_beneath,
    run_tuxmake,
    tuxmake_build,
)
from orchestrator.config.arch import ArchProfile, load_profile
from orchestrator.errors import BuildError
from orchestrator.proc import require_tool, tool_version
from orchestrator.records.layout import BUILD_LOG
from orchestrator.symbolize.elf import NotElf, read_elf


@dataclass
class BuildRequest:
    tree: str
    arch: str
    ref: str | None = None
    patches: str | None = None
    fragments: list[str] = field(default_factory=list)  # on top of the profile's own
    jobs: int | None = None
    sandbox: bool | None = None  # None: build/trust.py decides
    trusted_tree: bool = False  # --trusted: the user declares a --tree PATH trusted
    i_trust_this_series: bool = False  # lets --no-sandbox build a series from a mail

    def command_line(self) -> str:
        from orchestrator.records.reproduce import build_args

        args = build_args(
            self.ref,
            self.patches,
            self.fragments,
            self.sandbox,
            self.trusted_tree,
            self.i_trust_this_series,
        )
        return shlex.join(["kto", "build", "--tree", self.tree, "--arch", self.arch, *args])


def toolchain_version(profile: ArchProfile) -> str:
    return tool_version(profile.build.cc, profile.build.cc_package)


def resolve_fragments(profile: ArchProfile, extra: list[str]) -> list[kconfig.Fragment]:
    names = list(profile.build.fragments) + [f for f in extra if f not in profile.build.fragments]
    return [kconfig.find_fragment(n) for n in names]


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
        str(work_dir(req.tree, profile.name) / "configs" / "<hash of the final config>" / "build"),
        "config",
        f"make:{profile.build.kernel_image}",
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


@dataclass
class _Inputs:
    """Everything a build depends on, resolved before the tree lock is taken."""

    req: BuildRequest
    profile: ArchProfile
    fragments: list[kconfig.Fragment]
    toolchain: str
    tree: Tree
    series: Series
    timings: dict[str, float]
    t0: float
    trust: Trust
    sandbox: Sandbox | None = None  # the sandbox of an untrusted build
    owner: str = ""  # series_owner

    @property
    def domain(self) -> str:
        return self.trust.domain

    @property
    def config_scope(self) -> str:
        """The config cache's domain: an untrusted series' config step is its own."""
        return f"{self.domain}{OWNER_SEP}{self.owner}" if self.owner else self.domain

    @property
    def timestamp(self) -> str:
        """KBUILD_BUILD_TIMESTAMP: the base commit's date, the same for every series on it."""
        return "@" + self.tree.git.out("show", "-s", "--format=%ct", self.tree.base_commit)


def _resolve_inputs(req: BuildRequest) -> _Inputs:
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
    # Code nobody declared trusted is someone else's code run on this host (Makefiles,
    # scripts, host tools): the one policy decides, for every driver.
    trust = decide(
        tree.name,
        tree.trusted or req.trusted_tree,
        series.kind,
        req.sandbox,
        req.i_trust_this_series,
    )
    box = None
    owner = series_owner(trust, series)
    if trust.sandbox:
        require_sandbox()  # exit 6 naming what is missing: never a silent unsandboxed build
        git_dir = tree.repo / ".git"
        ccache = sandbox_ccache(work_dir(tree.name, profile.name, trust.domain, owner))
        box = Sandbox(ccache, read_only=(git_dir,) if git_dir.exists() else ())
        progress.say(f"building in the sandbox ({trust.reason})")
    elif trust.reason.startswith("--no-sandbox,"):
        progress.say(f"NOT sandboxed: {trust.reason}")
    return _Inputs(req, profile, fragments, toolchain, tree, series, timings, t0, trust, box, owner)


def series_owner(trust: Trust, series: Series) -> str:
    """Whose code a sandboxed build runs beyond its tree's: a series from a mail or a patch
    dir, named by its hash. Each owner has its own work dir (build dirs, the config step's
    scratch dir with its host tools), compiler cache and config key: a hostile series that
    plants an object, a host tool or a .config there changes no other series' build. A
    tree's own commits and ranges (trusted or not) are the tree's: their builds share."""
    if not trust.sandbox or series.kind not in ("mbox", "dir"):
        return ""
    return series.hash[:16]


KCONFIG_INPUTS = ("Kconfig", "scripts/kconfig/", "configs/")  # what can change a .config


def touches_kconfig(tree: Tree, head: str) -> bool:
    """Does the applied series change anything the config step reads (a Kconfig file, the
    kconfig tools, a defconfig)? If not, its final config is the base tree's."""
    if head == tree.base_commit:
        return False
    names = tree.git.out("diff", "--name-only", tree.base_commit, head).splitlines()
    return any(
        Path(n).name.startswith("Kconfig") or any(k in n for k in KCONFIG_INPUTS[1:]) for n in names
    )


def _configure(i: _Inputs, work: Path, staging: Path, head: str) -> str:
    """The final .config (base + fragments + olddefconfig), every fragment option checked.

    The config step runs in its own scratch dir, never in a build dir, and is skipped when
    the same inputs on the same base commit configured before and the series changes no
    Kconfig input (a one-line fix rebuilds at the speed of make, not of make + config).
    """
    ckey = config_key(i.tree.base_commit, i.profile, i.fragments, i.toolchain, i.config_scope)
    trusted_ckey = config_key(i.tree.base_commit, i.profile, i.fragments, i.toolchain)
    reusable = not touches_kconfig(i.tree, head)
    # A trusted build's config serves an untrusted one too, never the other way round.
    known = (read_config(trusted_ckey) or read_config(ckey)) if reusable else None
    if known is not None:
        progress.say("config: the same as an earlier build of these inputs (step skipped)")
        i.timings["config"] = 0.0
        return known
    scratch = work / "kconfig"
    (scratch / ".config").unlink(missing_ok=True)  # tuxmake reuses an existing .config
    log = staging / "config" / BUILD_LOG
    cfg = Step(
        tuxmake_build(
            i.tree,
            i.profile,
            i.fragments,
            scratch,
            staging / "config",
            ["config"],
            i.req.jobs,
            i.timestamp,
        ),
        i.sandbox,
    )
    run_tuxmake(cfg, log, "config", i.timings, "config")
    config_file = scratch / ".config"
    try:  # not through a link the sandboxed step may have left in its place
        with os.fdopen(open_beneath(scratch, ".config"), errors="replace") as fh:
            config_text = None if cfg.failed else fh.read()
    except OSError:
        config_text = None
    if config_text is None:
        raise BuildError(
            f"config step failed for {i.profile.name}:\n{errors_excerpt(log)}",
            hint=f"full log: {log}",
        )
    kconfig.verify(i.fragments, config_text, config_file)
    if reusable:
        write_config(ckey, config_text)
    return config_text


def _compile(
    i: _Inputs, build_dir: Path, out: Path, key: str, box: Sandbox | None
) -> dict[str, Any]:
    """make the kernel image into `out`; tuxmake's metadata. A failure keeps its log."""
    # Removed only when make has finished (pass or fail), never on a kill or an interrupt.
    write_new(build_dir / BUILDING_MARK, f"{os.getpid()}\n")
    kbuild = Step(
        tuxmake_build(
            i.tree,
            i.profile,
            i.fragments,
            build_dir,
            out,
            # Not tuxmake's `kernel` target: it depends on `default`, a second full make pass
            # (a no-op that costs ~7 s on a tiny kernel, more on a real one) for every build.
            ["config", f"make:{i.profile.build.kernel_image}"],
            i.req.jobs,
            i.timestamp,
        ),
        box,
    )
    # Every owner's builds of this tree+arch estimate from one history (kto writes it).
    estimate = BuildProgress(build_dir, work_dir(i.tree.name, i.profile.name, i.domain))
    label = f"build {i.profile.name} kernel"
    run_tuxmake(kbuild, out / BUILD_LOG, label, i.timings, "kernel", estimate)
    (build_dir / BUILDING_MARK).unlink(missing_ok=True)
    meta_file = out / "metadata.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if not kbuild.failed:
        with contextlib.suppress(OSError):  # a regular file, reached through no link
            copy_beneath(build_dir, i.profile.build.image_path, out / i.profile.build.kernel_image)
    if kbuild.failed or not (out / i.profile.build.kernel_image).exists():
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{i.profile.name}-{key[:8]}"
        failed_dir = artifacts_root() / "failed" / stamp
        failed_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), failed_dir)
        raise BuildError(
            f"{i.profile.name} kernel build failed ({i.tree.name} {i.tree.describe}, series "
            f"{i.series.hash}):\n{errors_excerpt(failed_dir / BUILD_LOG)}",
            hint=f"full log: {failed_dir / BUILD_LOG}",
        )
    estimate.done()  # only a build that worked is a yardstick for the next one
    return meta


def keep_vmlinux(build_dir: Path, out: Path, untrusted: bool = False) -> Path | None:
    """The build dir is reused by the next build of this config (another series, a bisect
    step), which relinks its vmlinux: each cached kernel keeps its own. A hard link costs
    no disk (ld writes a new file rather than rewriting the old one in place); a copy is
    the fallback across file systems."""
    src, dst = build_dir / "vmlinux", out / "vmlinux"
    if src.is_symlink() or not src.is_file():
        return None
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        copy_beneath(build_dir, "vmlinux", dst)
    if untrusted:
        # The link is also the untrusted build dir's vmlinux: kto's now, and read-only, so
        # the next sandboxed build can replace it there but never rewrite the cached one.
        if os.geteuid() == 0:
            os.lchown(dst, 0, 0)
        os.chmod(dst, 0o444)
    return dst


def debug_facts(
    vmlinux: Path | None, recorded_as: Path, build_dir: Path, source_dir: Path
) -> dict[str, Any]:
    """Where a job decodes its kernel's stack frames (orchestrator/symbolize): the kernel's
    own vmlinux (`recorded_as`, where the cache entry will hold it), its build id (a check
    that it is the same link) and whether it has line tables at all."""
    try:
        info = read_elf(vmlinux) if vmlinux else None
    except (OSError, NotElf):
        info = None
    return {
        "vmlinux": str(recorded_as) if info else None,
        "build_dir": str(build_dir),
        "source_dir": str(source_dir),
        "build_id": info.build_id if info else None,
        "debug_info": info.has_debug_line if info else False,
    }


def _record(
    i: _Inputs, key: str, head: str, meta: dict[str, Any], out: Path, build_dir: Path
) -> dict[str, Any]:
    vmlinux = keep_vmlinux(build_dir, out, untrusted=i.sandbox is not None)
    image = out / i.profile.build.kernel_image
    results = meta.get("results", {})
    tree, profile = i.tree, i.profile
    return {
        "kto_version": __version__,
        "status": "PASS",
        "key": key,
        "cache_hit": False,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reproducer": i.req.command_line(),
        "sandbox": i.trust.sandbox,
        "trust": i.trust.to_record(),
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
                {"name": f.name, "path": str(f.path), "sha256": f.sha256()} for f in i.fragments
            ],
            "series": i.series.summary(),
        },
        "toolchain": {"cc": profile.build.cc, "version": i.toolchain},
        "durations": {**i.timings, "total": round(time.monotonic() - i.t0, 3)},
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
            "kernel": {"path": image.name, "sha256": _sha256(image), "size": image.stat().st_size},
            "config": {"path": "config", "sha256": _sha256(out / "config")},
            "build_log": {"path": BUILD_LOG},
        },
        "debug": debug_facts(vmlinux, artifacts_root() / key / "vmlinux", build_dir, tree.worktree),
    }


def _domains(i: _Inputs) -> list[str]:
    """The domains whose artifacts may serve this build: the trusted one always (kto built
    it from trusted code), its own if that is another."""
    return list(dict.fromkeys([TRUSTED, i.domain]))


def build(req: BuildRequest) -> BuildResult:
    i = _resolve_inputs(req)
    root = artifacts_root()
    rkeys = [
        request_key(i.tree.base_commit, i.series.hash, i.profile, i.fragments, i.toolchain, d)
        for d in _domains(i)
    ]
    rkey = rkeys[-1]
    why = "same inputs as an earlier build"
    for k in rkeys:
        if hit := cached(root, read_index(root, k), i.timings, i.t0, why, req):
            return hit
    work = work_dir(i.tree.name, i.profile.name, i.domain, i.owner)
    with tree_lock(i.tree):
        with progress.phase("apply series", i.timings, key="apply"):
            head = apply_series(i.tree, i.series, work / "patches")
        staging = root / f".staging-{os.getpid()}-{int(time.time() * 1000)}"
        try:
            config_text = _configure(i, work, staging, head)
            image_target = i.profile.build.kernel_image
            keys = [
                cache_key(
                    i.tree.base_commit, i.series.hash, config_text, i.toolchain, image_target, d
                )
                for d in _domains(i)
            ]
            key = keys[-1]
            why = "same final config as an earlier build"
            for k in keys:
                if hit := cached(root, k, i.timings, i.t0, why, req):
                    write_index(root, rkey, k)
                    return hit
            out = staging / "out"
            seed = work_dir(i.tree.name, i.profile.name) if i.sandbox else None
            build_dir = build_dir_for(work, config_text, seed)
            evict(work.parent, keep=build_dir)
            box = i.sandbox
            if box is not None and seed is not None:
                trusted_dir = config_build_dir(seed, config_text)
                if trusted_dir.is_dir() and trusted_dir != build_dir:
                    box = replace(box, build_dir_at=trusted_dir)
            meta = _compile(i, build_dir, out, key, box)
            record = _record(i, key, head, meta, out, build_dir)
            write_record(out, record)
            final = root / key
            if final.exists():
                shutil.rmtree(final)  # an incomplete entry (no PASS record) from a killed run
            out.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        prune_kept_vmlinux(root, keep=final / "vmlinux")
        write_index(root, rkey, key)
        return BuildResult(record, final)
