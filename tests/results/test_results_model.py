"""Loading run directories: real recorded runs, half-written ones, run ids, waivers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, UserError
from orchestrator.records import waivers
from orchestrator.records.model import list_runs, load_run, previous_run, resolve_run
from orchestrator.records.verdict import Status

from .runs import DATA, PANIC_X86, SMOKE_RUN, SMOKE_X86, edit_json, make_run


def test_recorded_runs_load_with_keys_and_verdicts() -> None:
    run = load_run(DATA / "20261123-125344-boot-x86_64-9d94")
    (job,) = run.jobs
    assert job.key == ("debian-6.1", "tinyconfig+debug", "x86_64", "command")
    assert job.status is Status.FAIL and job.title == "kernel panic: sysrq triggered crash"
    assert job.findings[0]["kind"] == "panic" and not job.missing
    assert run.missing == ["run.json: missing (a run from before run records, or killed)"]
    assert run.label == "boot-x86_64"

    smoke = load_run(SMOKE_RUN)
    assert not smoke.missing and smoke.record["inputs"]["tree"] == "debian-6.1"
    assert [j.status for j in smoke.jobs] == [Status.PASS]
    assert "Run /init" in smoke.jobs[0].console_tail(400)


def test_job_killed_mid_run_is_error_and_marked(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20261123-140000-run-x86_64-0001", [(SMOKE_X86, "x86_64-smoke", {})])
    job_dir = run / "x86_64-smoke"
    # What boot.py leaves when killed during the guest phase: a RUNNING record, no findings.
    doc = json.loads((job_dir / "job.json").read_text())
    for key in ("verdict", "outcome", "durations"):
        doc.pop(key)
    doc["status"] = "RUNNING"
    (job_dir / "job.json").write_text(json.dumps(doc))
    (job_dir / "findings.json").unlink()
    (job,) = load_run(run).jobs
    assert job.status is Status.ERROR and job.raw_status == "RUNNING"
    assert "did not finish" in job.reason
    assert job.missing == ["findings.json: missing", "job.json: status RUNNING, no verdict"]


def test_mail_and_revert_folders_are_not_jobs(tmp_path: Path) -> None:
    """A night's mails (kto report --mail, the bot's culprit mails) and a bisect's revert
    series live in the run dir: read as jobs, each was a MISS that failed the run."""
    run = make_run(tmp_path, "20261123-140000-run-x86_64-0002", [(SMOKE_X86, "x86_64-smoke", {})])
    (run / "mail").mkdir()
    (run / "mail" / "digest.eml").write_text("From: kto\n\nx\n")
    (run / "revert").mkdir()
    (run / "revert" / "0001-revert.patch").write_text("x")
    loaded = load_run(run)
    assert [j.name for j in loaded.jobs] == ["x86_64-smoke"]
    assert [str(j.status) for j in loaded.jobs] == ["PASS"]


def test_truncated_json_and_missing_record(tmp_path: Path) -> None:
    run = make_run(
        tmp_path,
        "20261123-140000-run-x86_64-0002",
        [(PANIC_X86, "x86_64-command", {}), (SMOKE_X86, "x86_64-smoke", {})],
    )
    findings = run / "x86_64-command" / "findings.json"
    findings.write_text(findings.read_text()[:300])  # killed mid-write (no atomic rename)
    (run / "x86_64-smoke" / "job.json").unlink()
    (run / "run.json").write_text('{"run_id": "x')
    loaded = load_run(run)
    panic, smoke = loaded.jobs[0], loaded.jobs[1]
    assert loaded.missing[0].startswith("run.json: unreadable JSON")
    # The findings survive in job.json's verdict copy.
    assert panic.status is Status.FAIL and panic.findings[0]["kind"] == "panic"
    assert panic.missing[0].startswith("findings.json: unreadable JSON")
    assert smoke.status is Status.MISS and smoke.missing == ["job.json: missing"]
    assert smoke.test == "smoke" and smoke.arch == "x86_64"  # from the folder name


def test_empty_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "20261123-140000-run-x86_64-0003"
    run.mkdir()
    loaded = load_run(run)
    assert loaded.jobs == [] and any("no job folders" in m for m in loaded.missing)
    assert loaded.worst() is Status.MISS


def test_resolve_run_ids_prefixes_and_unknown(tmp_path: Path) -> None:
    for rid in ("20261123-120000-run-x86_64-aaaa", "20261123-130000-run-x86_64-bbbb"):
        (tmp_path / rid).mkdir()
    (tmp_path / "latest").symlink_to("20261123-130000-run-x86_64-bbbb")
    assert resolve_run("latest", tmp_path).name == "20261123-130000-run-x86_64-bbbb"
    assert resolve_run("20261123-12", tmp_path).name == "20261123-120000-run-x86_64-aaaa"
    assert list_runs(tmp_path) == sorted(p.name for p in tmp_path.iterdir() if p.name[0] == "2")
    with pytest.raises(UserError) as exc:
        resolve_run("nope", tmp_path)
    assert exc.value.exit_code == 2
    assert "20261123-120000-run-x86_64-aaaa" in str(exc.value)
    with pytest.raises(UserError, match="ambiguous"):
        resolve_run("20261123", tmp_path)


def test_previous_run_has_the_same_label(tmp_path: Path) -> None:
    for rid in (
        "20261123-100000-run-x86_64-0001",
        "20261123-110000-run-arm64-0002",
        "20261123-120000-run-x86_64-0003",
    ):
        shutil.copytree(SMOKE_RUN, tmp_path / rid)
        edit_json(tmp_path / rid / "run.json", run_id=rid, label="run-" + rid.split("-")[3])
    new = load_run(tmp_path / "20261123-120000-run-x86_64-0003")
    assert previous_run(new) == tmp_path / "20261123-100000-run-x86_64-0001"
    assert previous_run(load_run(tmp_path / "20261123-100000-run-x86_64-0001")) is None


def test_waived_finding_does_not_fail_but_stays_visible() -> None:
    known = waivers.parse(
        {"waivers": [{"title": "kernel panic: sysrq triggered crash", "reason": "the test"}]},
        "test",
    )
    (job,) = load_run(PANIC_X86.parent, known).jobs
    # The panic stopped the test: without it the console says "not finished", an ERROR.
    assert job.status is Status.ERROR and job.raw_status == "FAIL"
    assert job.waived == ["kernel panic: sysrq triggered crash"]
    assert "waived" in job.reason and job.findings  # still listed
    scoped = waivers.parse(
        {"waivers": [{"title": job.waived[0], "reason": "r", "arches": ["arm64"]}]}, "t"
    )
    assert load_run(PANIC_X86.parent, scoped).jobs[0].status is Status.FAIL


def test_waiver_file_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("waivers:\n  - title: x\n    reason: y\n    arch: [x86_64]\n")
    with pytest.raises(ConfigError, match=r"waivers\[0\]: unknown key\(s\) arch"):
        waivers.load(bad)
    bad.write_text("waivers:\n  - title: x\n")
    with pytest.raises(ConfigError, match="reason"):
        waivers.load(bad)
    assert waivers.load(tmp_path / "absent.yaml").items == []
    assert waivers.load().source.endswith("configs/waivers.yaml")  # the shipped file parses


def test_config_name_is_the_same_on_every_arch() -> None:
    from orchestrator.records.model import config_name

    def build(arch: str) -> dict:
        names = [f"base-{arch}", f"net-{arch}", "debug", "mm.stress"]
        return {"inputs": {"kconfig_base": "tinyconfig", "fragments": [{"name": n} for n in names]}}

    assert config_name(build("arm64"), "arm64") == "tinyconfig+net+debug+mm_stress"
    assert config_name(build("sparc64"), "sparc64") == config_name(build("arm64"), "arm64")
    assert config_name({}, "x86_64") == "unknown"


def test_previous_run_is_the_same_job_not_just_the_same_arch(tmp_path: Path) -> None:
    # Two series tested on x86_64 in turn: each compares with its own last run only.
    runs = {
        "20261123-100000-run-x86_64-0001": "series-a",
        "20261123-110000-run-x86_64-0002": "series-b",
        "20261123-120000-run-x86_64-0003": "series-a",
        "20261123-130000-run-x86_64-0004": "series-c",
    }
    for rid, key in runs.items():
        shutil.copytree(SMOKE_RUN, tmp_path / rid)
        edit_json(tmp_path / rid / "run.json", run_id=rid, label="run-x86_64", compare_key=key)
    third = load_run(tmp_path / "20261123-120000-run-x86_64-0003")
    assert previous_run(third) == tmp_path / "20261123-100000-run-x86_64-0001"
    assert previous_run(load_run(tmp_path / "20261123-130000-run-x86_64-0004")) is None
    assert previous_run(load_run(tmp_path / "20261123-110000-run-x86_64-0002")) is None
