"""Out-of-tree build directories: one per (tree, arch, final .config), least recently used
evicted beyond a disk cap, so switching between configs (default and a matrix cell's
fragments, a bisect going back and forth) never rebuilds the world.

    <cache>/builds/[untrusted/]work/<tree>/<arch>[+<owner>]/
                               (untrusted/: sandboxed builds'; +<owner>: one series' own)
      patches/                 the series as `git am` files
      ccache/                  a sandboxed build's compiler cache
      kconfig/                 scratch dir of the config step (kconfig host tools stay built)
      configs/<cfg>/build/     the build dir for the final config whose hash is <cfg>
      configs/<cfg>/used       touched at every use: the LRU clock
      progress.json            the last builds' cost (build/estimate.py)

Each cached kernel (<cache>/builds/<key>/) keeps its own vmlinux for decoding its findings;
those are capped too (KTO_VMLINUX_GB, default 10), oldest removed first: an old kernel's
findings then say "frames not decoded" instead of filling the disk night after night.

The cap (KTO_BUILD_DIRS_GB, default 30) counts every tree's and arch's build dirs; eviction
takes only dirs of the tree being built (its lock is held, so no other kto process is using
them) and never the one in use. A build directory whose last make was killed starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from orchestrator import progress
from orchestrator.build.cache import OWNER_SEP, artifacts_root
from orchestrator.build.trust import UNTRUSTED

BUILDING_MARK = ".kto-building"
DEFAULT_CAP_GB = 30.0
DEFAULT_VMLINUX_CAP_GB = 10.0


def config_hash(config_text: str) -> str:
    return hashlib.sha256(config_text.encode()).hexdigest()[:12]


def build_dir_for(work: Path, config_text: str, seed: Path | None = None) -> Path:
    """The build dir of this final config, with its .config in place (mtime kept when the
    content is unchanged: a rewritten .config makes kbuild re-run syncconfig).

    `seed`: another domain's work dir (the trusted one, for a sandboxed build) whose build
    dir of this config, if any, starts this one as a copy: the first untrusted build of a
    tree is then incremental too. Never the other way round (build/trust.py)."""
    build_dir = config_build_dir(work, config_text)
    entry = build_dir.parent
    discard_if_interrupted(build_dir)
    if seed is not None and not build_dir.exists():
        _seed(config_build_dir(seed, config_text), build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    (entry / "used").write_text(f"{time.time():.0f}\n")
    config = build_dir / ".config"
    if config.is_symlink() or not config.is_file() or config.read_text() != config_text:
        write_new(config, config_text)
    return build_dir


def config_build_dir(work: Path, config_text: str) -> Path:
    return work / "configs" / config_hash(config_text) / "build"


def write_new(path: Path, text: str) -> None:
    """Write a file kto owns into a dir a sandboxed build may have written: never through a
    link or into a file someone else left there (the old entry is removed first)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _seed(src: Path, build_dir: Path) -> None:
    if not src.is_dir() or (src / BUILDING_MARK).exists():
        return
    partial = build_dir.with_name(build_dir.name + ".seeding")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with progress.phase(f"seed the sandbox's build dir from {src} (once per config)"):
        res = subprocess.run(
            ["cp", "-a", "--reflink=auto", str(src), str(partial)], capture_output=True
        )
    if res.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        return
    partial.rename(build_dir)


def discard_if_interrupted(build_dir: Path) -> None:
    """A build killed mid-compile can leave truncated objects that make trusts afterwards
    ("member ... in archive is not an object"): such a build dir is started afresh."""
    if (build_dir / BUILDING_MARK).exists():
        progress.say(f"the last build in {build_dir} was interrupted: starting it clean")
        shutil.rmtree(build_dir)


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def _cap_bytes(var: str = "KTO_BUILD_DIRS_GB", default: float = DEFAULT_CAP_GB) -> int:
    try:
        gb = float(os.environ.get(var, default))
    except ValueError:
        gb = default
    return int(gb * (1 << 30))


def prune_kept_vmlinux(root: Path, keep: Path, cap: int | None = None) -> list[Path]:
    """Remove the oldest cached kernels' kept vmlinux files (never `keep`'s) until they
    all fit under the cap."""
    cap = _cap_bytes("KTO_VMLINUX_GB", DEFAULT_VMLINUX_CAP_GB) if cap is None else cap
    kept = []
    for path in root.glob("*/vmlinux"):
        with contextlib.suppress(OSError):
            st = path.stat()
            kept.append((st.st_mtime, st.st_blocks * 512, path))
    total = sum(size for _, size, _ in kept)
    removed = []
    for _, size, path in sorted(kept):
        if total <= cap:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size
        removed.append(path)
    if removed:
        progress.say(f"kept vmlinux files over {cap >> 30} GiB: removed the {len(removed)} oldest")
    return removed


def evict(tree_work: Path, keep: Path, cap: int | None = None) -> list[Path]:
    """Remove least recently used config build dirs of one tree (work/<tree>/, whose lock
    the caller holds; never `keep`) until all build dirs together are under the cap."""
    cap = _cap_bytes() if cap is None else cap
    others = 0
    for root in (artifacts_root(), artifacts_root() / UNTRUSTED):
        for used in (root / "work").glob("*/*/configs/*/used"):
            if not used.is_relative_to(tree_work):
                others += _size(used.parent)
    entries = []
    for used in tree_work.glob("*/configs/*/used"):
        try:
            when = float(used.read_text().strip() or 0)
        except (OSError, ValueError):
            when = 0.0
        entries.append((when, used.parent))
    sizes = {e: _size(e) for _, e in entries}
    total = others + sum(sizes.values())
    removed = []
    for _, entry in sorted(entries):
        if total <= cap:
            break
        if entry == keep or keep.is_relative_to(entry):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total -= sizes[entry]
        removed.append(entry)
        progress.say(f"build dirs over {cap >> 30} GiB: evicted {entry} (least recently used)")
    # A series' own work dir (its compiler cache, config scratch, patches) goes once it has
    # no build dir: its last one evicted, or none ever made (a series that did not apply or
    # configure). Nothing of a series no longer built stays behind.
    for owner_work in tree_work.glob(f"*{OWNER_SEP}*"):
        if not keep.is_relative_to(owner_work) and not any(owner_work.glob("configs/*/used")):
            shutil.rmtree(owner_work, ignore_errors=True)
    return removed
