"""Attack: a series whose Makefile fills the disk, with one huge file and then with many
big ones, in the only place it may write (its build dir). One file stops at
KTO_SANDBOX_FILE_GB (RLIMIT_FSIZE); kto watches the file system's free space and kills the
step once it shrank by KTO_SANDBOX_DISK_GB, then removes what the step wrote; the build
fails saying why.

Not run against the code before issue 27 (it fills the disk of a shared machine): there a
patch directory was built without a sandbox, as root (who may also use ext4's reserved
blocks), and nothing limited what a build wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration


def _free() -> int:
    from orchestrator.build.cache import artifacts_root

    st = os.statvfs(artifacts_root())
    return st.f_bfree * st.f_frsize


def test_filling_the_disk_is_stopped_and_cleaned_up(tmp_path: Path) -> None:
    mib = 1 << 20
    assert _free() > 8 * 1024 * mib, "needs 8 GiB free: the test writes up to ~1 GiB"
    block = (
        "KTO_OBJ := $(or $(O),$(CURDIR))\n"
        "KTO_RESULT := $(shell dd if=/dev/zero of=$(KTO_OBJ)/kto-big bs=1M count=400 2>&1 "
        "| grep -o 'File too large'; "
        "for i in $$(seq 200); do dd if=/dev/zero of=$(KTO_OBJ)/kto-junk$$i bs=1M count=50 "
        "status=none || break; done; echo filled)\n"
    )
    patches = hostile.series(tmp_path, block, "fill-disk")
    free0 = _free()
    env = {"KTO_SANDBOX_DISK_GB": "0.5", "KTO_SANDBOX_FILE_GB": "0.25"}
    res = hostile.build(patches, env=env, timeout=600)
    assert res.returncode == 5, res.stderr[-2000:]
    assert "used more than 0.5 GiB of disk (KTO_SANDBOX_DISK_GB)" in res.stderr, res.stderr[-2000:]
    # What the step wrote is gone again (other jobs on the machine may write meanwhile).
    assert free0 - _free() < 400 * mib, f"{(free0 - _free()) / mib:.0f} MiB still used"
