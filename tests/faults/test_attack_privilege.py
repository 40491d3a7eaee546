"""Attack: a series whose Makefile, running as kto's user (root in CI), remounts the read-only
host rw and writes there, directly and from a user namespace of its own. In the sandbox the
build runs as an unprivileged uid with no capability at all, and the read-only mounts are
locked: nothing on the host changes.

Before issue 27 a patch directory was built without any sandbox (as root: the remount and
the write succeeded), and the sandbox itself kept almost every capability (CapEff
0x1fffeffffff)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration


def test_a_series_cannot_remount_the_host_or_keep_privileges(tmp_path: Path) -> None:
    marker = Path("/usr") / f"kto-attack-{uuid.uuid4().hex}"
    block = (
        "KTO_RESULT := $(shell echo uid=$$(id -u) host-uid=$$(awk '{print $$2}' "
        "/proc/self/uid_map | head -1); grep CapEff /proc/self/status | tr -d '\\t'; "
        f"mount -o remount,bind,rw / 2>/dev/null && echo REMOUNTED; "
        f"touch {marker} 2>/dev/null && echo WROTE-USR; "
        "unshare -Ur true 2>/dev/null && echo NEW-USERNS; "
        "unshare -Urm sh -c 'mount -o remount,bind,rw / && echo USERNS-REMOUNTED; "
        f"touch {marker} && echo USERNS-WROTE' 2>/dev/null)\n"
    )
    try:
        res = hostile.build(hostile.series(tmp_path, block, "remount"))
        got = hostile.said(res)
        assert res.returncode == 5, res.stderr[-2000:]
        assert "CapEff:0000000000000000" in got, got
        assert "uid=0" not in got and "host-uid=0" not in got, got
        for word in ("REMOUNTED", "WROTE", "NEW-USERNS"):
            assert word not in got, got
        assert not marker.exists(), "the series wrote into /usr"
    finally:
        marker.unlink(missing_ok=True)
