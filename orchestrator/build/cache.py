"""The build cache: content-addressed kernel builds and the index that makes repeats free.

<cache>/builds/<key>/ holds one build (key: tree commit, patchset hash, final .config,
toolchain version, image target); requests/<rkey> maps the inputs known *before*
configuring (commit, series, profile, fragment contents, toolchain) to a key, so a repeated
request is a hit that neither applies a series nor runs the config step. work/<tree>/<arch>/
is the reused out-of-tree build directory, for incremental builds.

Builds that ran in the sandbox (build/trust.py: the untrusted domain) have their own work
dirs and compiler caches under untrusted/, and their own keys: a trusted request never finds
an artifact, a config or a build dir an untrusted build made. Within the untrusted domain
each series from a mail or a patch dir is an owner of its own (work dir, compiler cache,
config key): one stranger's series cannot change what another's build runs or produces.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import atomic, progress
from orchestrator.build import kconfig
from orchestrator.build.record import BuildResult, load_record
from orchestrator.build.trust import TRUSTED, UNTRUSTED
from orchestrator.config.arch import ArchProfile
from orchestrator.paths import cache_dir

if TYPE_CHECKING:
    from orchestrator.build.kernel import BuildRequest


def artifacts_root() -> Path:
    return cache_dir() / "builds"


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    if keep == text and len(text) < 40:
        return keep
    return f"{keep[-24:]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def domain_root(domain: str = TRUSTED) -> Path:
    """Where a trust domain's reused state lives (work dirs, the untrusted compiler cache)."""
    return artifacts_root() if domain == TRUSTED else artifacts_root() / UNTRUSTED


OWNER_SEP = "+"  # work/<tree>/<arch>+<owner>: an untrusted series' own work dir


def work_dir(tree_name: str, arch: str, domain: str = TRUSTED, owner: str = "") -> Path:
    """Reused per (tree, arch, trust domain, owner): out-of-tree build dirs, the config
    step's scratch dir, patch staging and, for a sandboxed build, its compiler cache.
    `owner`: the series (its hash) an untrusted build runs beyond the tree's own code."""
    arch_dir = f"{arch}{OWNER_SEP}{owner}" if owner else arch
    return domain_root(domain) / "work" / _slug(tree_name) / arch_dir


def sandbox_ccache(work: Path) -> Path:
    """The compiler cache of a sandboxed build: its work dir's own (trusted builds use
    tuxmake's ~/.ccache), so no other series' build reads what this one wrote."""
    return work / "ccache"


def _domain(domain: str) -> list[str]:
    # Trusted keys are what they always were (no cache is invalidated by the domains).
    return [] if domain == TRUSTED else [domain]


def cache_key(
    tree_commit: str,
    series_hash: str,
    config_text: str,
    toolchain: str,
    image_target: str,
    domain: str = TRUSTED,
) -> str:
    h = hashlib.sha256()
    for part in (tree_commit, series_hash, config_text, toolchain, image_target, *_domain(domain)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def request_key(
    base_commit: str,
    series_hash: str,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    toolchain: str,
    domain: str = TRUSTED,
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
        *_domain(domain),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def read_index(root: Path, rkey: str) -> str | None:
    try:
        return (root / "requests" / rkey).read_text().strip() or None
    except OSError:
        return None


def write_index(root: Path, rkey: str, key: str) -> None:
    atomic.write_text(root / "requests" / rkey, key + "\n")


def cached(
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
    # Same patches (same hash) maybe from another file: the record names this request's.
    series = (record.get("inputs") or {}).get("series")
    if isinstance(series, dict) and series.get("source") != (req.patches or ""):
        series["built_from"] = series.get("source")
        series["source"] = req.patches or ""
    record["durations_this_request"] = {**timings, "total": round(time.monotonic() - t0, 3)}
    return BuildResult(record, root / key)


def config_key(
    base_commit: str,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    toolchain: str,
    domain: str = TRUSTED,
) -> str:
    """What a final .config depends on when a series changes no Kconfig input."""
    parts = [
        "config",
        base_commit,
        profile.build.kconfig_base,
        profile.build.tuxmake_arch,
        toolchain,
        *(f.sha256() for f in fragments),
        *_domain(domain),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def read_config(ckey: str) -> str | None:
    try:
        return (artifacts_root() / "configs" / ckey).read_text()
    except OSError:
        return None


def write_config(ckey: str, config_text: str) -> None:
    atomic.write_text(artifacts_root() / "configs" / ckey, config_text)
