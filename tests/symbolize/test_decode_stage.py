"""The job's decode step: findings.json gains `symbolized`, from the build record's paths;
nothing that goes wrong there touches the findings or the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.config.arch import load_profile
from orchestrator.job import decode_stage
from orchestrator.symbolize.decode import inputs_from_build_record
from orchestrator.symbolize.elf import build_id
from tests.symbolize.test_decode import build, marker_line, report_for


def job_with_finding(tmp: Path) -> tuple[Path, dict]:
    (tmp / "src").mkdir()
    prog = build("x86_64", tmp / "src")
    job = tmp / "job"
    job.mkdir()
    finding = {
        "kind": "bug",
        "title": "BUG in outer",
        "function": "outer",
        "report": report_for(prog),
    }
    (job / "findings.json").write_text(json.dumps({"findings": [finding]}))
    record = {
        "inputs": {"worktree": str(prog.dir), "head_commit": None, "base_commit": None},
        "debug": {
            "vmlinux": str(prog.binary),
            "build_dir": str(prog.dir),
            "source_dir": str(prog.dir),
            "build_id": build_id(prog.binary),
        },
    }
    return job, record


def test_findings_json_gains_the_decoded_frames(tmp_path: Path) -> None:
    job, record = job_with_finding(tmp_path)
    decode_stage.decode_findings(job, record, load_profile("x86_64"))
    (f,) = json.loads((job / "findings.json").read_text())["findings"]
    assert f["title"] == "BUG in outer"  # the parser's fields stay as they were
    assert f["symbolized"]["guilty"]["line"] == marker_line("OUTER_CALL")


def test_a_decoder_crash_is_recorded_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, record = job_with_finding(tmp_path)
    before = json.loads((job / "findings.json").read_text())

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("kto bug")

    monkeypatch.setattr("orchestrator.symbolize.decode.symbolize_with", boom)
    decode_stage.decode_findings(job, record, load_profile("x86_64"))
    after = json.loads((job / "findings.json").read_text())
    assert after["findings"] == before["findings"]
    assert after["symbolize_error"] == "RuntimeError: kto bug"


def test_no_findings_no_work(tmp_path: Path) -> None:
    (tmp_path / "findings.json").write_text('{"findings": []}')
    decode_stage.decode_findings(tmp_path, None, load_profile("x86_64"))
    assert json.loads((tmp_path / "findings.json").read_text()) == {"findings": []}


def test_an_old_build_record_has_no_vmlinux() -> None:
    """Records from before build.json had `debug` give the tree, and no vmlinux."""
    inputs = inputs_from_build_record({"inputs": {"worktree": "/t", "head_commit": "abc"}})
    assert inputs.vmlinux is None and inputs.source_dir == Path("/t") and inputs.commit == "abc"
