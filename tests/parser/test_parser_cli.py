"""`kto parse`: JSON shape, exit codes, custom patterns."""

from __future__ import annotations

import json
from pathlib import Path

import parser_snippets as s
import pytest

from orchestrator.cli import main


def _log(tmp_path: Path, text: str, name: str = "console.log") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_json_findings_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path, s.stamp(s.X86_WARNING + s.BAD_RSS))
    assert main(["parse", "--format", "json", str(log)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["title"] for f in doc["findings"]] == [
        "WARNING in __mmdrop",
        "BUG: Bad rss-counter state",
        "BUG: non-zero pgtables_bytes on freeing mm",
    ]
    first = doc["findings"][0]
    for key in ("kind", "function", "first_line", "last_line", "report", "cpu", "pid", "comm"):
        assert key in first
    assert (first["kind"], first["function"], first["first_line"]) == ("warning", "__mmdrop", 2)


def test_clean_log_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path, "[    0.000000] Linux version 6.1.0\n")
    assert main(["parse", "--format", "json", str(log)]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": []}


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.log"
    assert main(["parse", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_bad_pattern_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path, "x\n")
    assert main(["parse", "--pattern", "(", str(log)]) == 2
    assert "--pattern" in capsys.readouterr().err


def test_custom_pattern_and_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path, "[    5.000000] FEAS-HOTPLUG-END cycles=10 failures=2\n")
    assert main(["parse", "--pattern", "failures=[1-9]", str(log)]) == 1
    out = capsys.readouterr().out
    assert "custom" in out and "failures=NUM" in out


def test_several_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _log(tmp_path, s.stamp(s.X86_GPF), "a.log")
    b = _log(tmp_path, "clean\n", "b.log")
    assert main(["parse", "--format", "json", str(a), str(b)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(d["log"], len(d["findings"])) for d in doc["logs"]] == [(str(a), 1), (str(b), 0)]
