"""A night whose reports cannot be written is never green: `kto matrix` exits 3 and names
the file; the job records stay on disk. The matrix's only cell is a SKIP (sparc64 has one
CPU, rcutorture-onoff needs two), so nothing is built or booted."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from orchestrator import atomic
from orchestrator.cli import main

MATRIX = """name: reportfail
trees: [debian-6.1]
series: [none]
arches: [sparc64]
configs: [default]
tests: [rcutorture-onoff]
"""


@pytest.fixture
def matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX)
    return path


def _run_dir(tmp_path: Path) -> Path:
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def test_a_full_disk_while_writing_the_report_is_exit_3_naming_it(
    matrix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real = atomic.write_text

    def write_text(path: Path, text: str, durable: bool = True) -> None:
        if path.name == "report.html":
            raise atomic.write_error(path, OSError(errno.ENOSPC, "No space left on device"))
        real(path, text, durable)

    monkeypatch.setattr(atomic, "write_text", write_text)
    assert main(["matrix", str(matrix)]) == 3
    err = capsys.readouterr().err
    run = _run_dir(tmp_path)
    assert f"cannot write {run / 'report.html'}: No space left on device" in err, err
    (job,) = [p for p in run.iterdir() if (p / "job.json").is_file()]
    assert json.loads((job / "job.json").read_text())["status"] == "SKIP"


def test_a_bug_while_writing_the_report_is_exit_3_not_a_green_night(
    matrix: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from orchestrator.results import junit

    def broken(*_args: object, **_kw: object) -> str:
        raise RuntimeError("a bug in a renderer")

    monkeypatch.setattr(junit, "render", broken)
    assert main(["matrix", str(matrix)]) == 3
    err = capsys.readouterr().err
    assert "a bug in a renderer" in err and "internal error" in err, err
