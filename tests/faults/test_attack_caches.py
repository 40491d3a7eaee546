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
        assert "WROTE" not in got, got
        own = artifacts_root() / "untrusted" / "work" / hostile.TREE
        assert got.startswith(f"ccache={own}/x86_64+") and got.endswith("/ccache"), got
        planted = [p for g in ("", "*/", "*/*/", "*/*/*/") for p in Path("/").glob(
            f"{ccache.relative_to('/')}/{g}{tag}")]  # fmt: skip
        planted += list(artifacts_root().glob(f"**/{tag}"))
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
    res = hostile.build(hostile.series(tmp_path, plant, "mallory"))
    assert res.returncode == 5, res.stderr[-2000:]
    planted = hostile.said(res).split()
    assert len(planted) == 2, planted  # both writes succeeded: in her own dirs
    look = (
        f"KTO_RESULT := $(shell for d in {dirs}; do echo $$d; "
        f"ls -a $$d | grep -x {tag} && echo FOUND; done)\n"
    )
    try:
        res = hostile.build(hostile.series(tmp_path, look, "alice"))
        assert res.returncode == 5, res.stderr[-2000:]
        got = hostile.said(res)
        assert "FOUND" not in got, got
        looked = got.split()
        assert len(looked) == 2 and not set(looked) & set(planted), (looked, planted)
    finally:
        for d in planted:
            (Path(d) / tag).unlink(missing_ok=True)
