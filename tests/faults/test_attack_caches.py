"""Attack: a series whose Makefile plants files where a later trusted build would pick them
up: the trusted compiler cache (~/.ccache: a poisoned object a trusted build links), the
trusted build dirs of the same tree (an object make would consider up to date), kto's
kernel cache (another build's kernel) and its config cache. An untrusted build has its own
compiler cache and build dirs (the untrusted domain, build/trust.py); the trusted ones are
not even visible to it. Nor can one mailed series plant anything in what another series'
build runs or links (its build dir, compiler cache, config scratch dir): each has its own.

Before issue 27 a patch directory was built without a sandbox (every write succeeded), and
the mbox sandbox had ~/.ccache writable and shared the trusted build dirs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration


def test_a_series_cannot_write_the_trusted_caches_or_another_builds_dir(tmp_path: Path) -> None:
    from orchestrator.build.cache import artifacts_root, work_dir

    tag = f"kto-attack-{uuid.uuid4().hex}"
    trusted_work = work_dir(hostile.TREE, "x86_64")
    ccache = Path.home() / ".ccache"
    globs = [
        f"{ccache}",
        f"{ccache}/*",
        f"{trusted_work}/configs/*/build",
        f"{trusted_work}/kconfig",
        f"{artifacts_root()}/*",
        f"{artifacts_root()}/configs",
    ]
    writes = "; ".join(
        f"for d in {g}; do touch $$d/{tag} 2>/dev/null && echo WROTE $$d; done" for g in globs
    )
    block = f"KTO_RESULT := $(shell {writes}; echo ccache=$$CCACHE_DIR)\n"
    try:
        res = hostile.build(hostile.series(tmp_path, block, "caches"))
        got = hostile.said(res)
        assert res.returncode == 5, res.stderr[-2000:]
        *wrote, ccache_seen = got.split()
        owners = artifacts_root() / "untrusted" / "work" / hostile.TREE
        assert ccache_seen.startswith(f"ccache={owners}/x86_64+"), got
        assert ccache_seen.endswith("/ccache"), got
        own_work = Path(ccache_seen.removeprefix("ccache=")).parent
        # In the sandbox its own build dir (a copy of the trusted one) is seen at the trusted
        # dir's path: a write there is a write to its own copy. The host says which it was.
        seen_as_own = [str(p) for p in trusted_work.glob("configs/*/build")]
        assert all(w == "WROTE" or w in seen_as_own for w in wrote), got
        planted = [p for g in ("", "*/", "*/*/", "*/*/*/") for p in Path("/").glob(
            f"{ccache.relative_to('/')}/{g}{tag}")]  # fmt: skip
        planted += [p for p in artifacts_root().glob(f"**/{tag}") if not p.is_relative_to(own_work)]
        assert not planted, f"the series wrote {planted}"
    finally:
        for p in [*ccache.glob(f"**/{tag}"), *artifacts_root().glob(f"**/{tag}")]:
            p.unlink(missing_ok=True)


def test_a_series_cannot_plant_anything_in_another_series_build(tmp_path: Path) -> None:
    """Mallory's series leaves a file in every dir its build may write (its build dir, the
    compiler cache, and the config step's scratch dir when that step runs); Alice's later
    series on the same tree, arch and config looks for it in every dir her build may write.
    Before each series had its own, they shared all three: an object or host tool planted
    there was what the next stranger's kernel linked or her build ran."""
    tag = f"kto-planted-{uuid.uuid4().hex}"
    dirs = "$(or $(O),$(CURDIR)) $$CCACHE_DIR"
    plant = f"KTO_RESULT := $(shell for d in {dirs}; do touch $$d/{tag} && echo $$d; done)\n"
    from orchestrator.build.cache import artifacts_root

    owners = artifacts_root() / "untrusted" / "work" / hostile.TREE

    def on_host() -> list[Path]:  # where the plant is, on the host (not as a build saw it)
        return [*owners.glob(f"*/ccache/{tag}"), *owners.glob(f"*/configs/*/build/{tag}")]

    try:
        res = hostile.build(hostile.series(tmp_path, plant, "mallory"))
        assert res.returncode == 5, res.stderr[-2000:]
        assert len(hostile.said(res).split()) == 2, hostile.said(res)
        planted = on_host()
        assert len(planted) == 2, planted  # both writes succeeded: in her own dirs
        look = (
            f"KTO_RESULT := $(shell for d in {dirs}; do echo $$d; "
            f"ls -a $$d | grep -x {tag} && echo FOUND; done)\n"
        )
        res = hostile.build(hostile.series(tmp_path, look, "alice"))
        assert res.returncode == 5, res.stderr[-2000:]
        got = hostile.said(res)
        assert "FOUND" not in got and len(got.split()) == 2, got
        assert sorted(on_host()) == sorted(planted)  # still only in Mallory's
    finally:
        for p in on_host():
            p.unlink(missing_ok=True)
