"""Progress lines are advisory: a dead reader of stderr never stops the work."""

from __future__ import annotations

import io

import pytest

from orchestrator import progress


class _DeadPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_say_survives_a_broken_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "_quiet", False)
    monkeypatch.setattr("sys.stderr", _DeadPipe())
    progress.say("a matrix line nobody reads")  # raised BrokenPipeError before
    assert progress._quiet  # and it stops trying
