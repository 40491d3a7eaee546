"""Attack: a series whose Makefile writes outside its build: /var/tmp, /etc, kto's own code,
the tree's sources (which the next trusted build of the tree would compile) and root's
home. In the sandbox the host is read-only, /root and /tmp are private and empty, and the
tree is bound read-only: every write fails and nothing on the host changes.

Before issue 27 a patch directory was built without a sandbox, as root: every write
succeeded."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration


def test_a_series_cannot_write_outside_its_build(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    targets = [
        Path("/var/tmp") / f"kto-attack-{tag}",
        Path("/etc") / f"kto-attack-{tag}",
        hostile.REPO / "orchestrator" / f"kto_attack_{tag}.py",
        Path.home() / f"kto-attack-{tag}",
    ]
    tree = hostile.tree()
    init = tree.worktree / "init" / "main.c"
    saved = init.read_bytes()
    before = hashlib.sha256(saved).hexdigest()
    writes = "; ".join(f"touch {t} 2>/dev/null && echo WROTE {t}" for t in targets)
    block = (
        f"KTO_RESULT := $(shell {writes}; "
        f"echo 'int kto_attack;' >> {init} 2>/dev/null && echo WROTE-TREE; echo tried)\n"
    )
    try:
        res = hostile.build(hostile.series(tmp_path, block, "write-outside"))
        got = hostile.said(res)
        assert res.returncode == 5, res.stderr[-2000:]
        assert got == "tried", got
        for t in targets:
            assert not t.exists(), f"the series wrote {t}"
        assert hashlib.sha256(init.read_bytes()).hexdigest() == before, "the tree was changed"
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
        if init.read_bytes() != saved:  # the shared tree must not stay changed if this failed
            init.write_bytes(saved)
