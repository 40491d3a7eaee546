"""The matrix builds each distinct kernel once, as a `kto job --build-only` task: the same
build and policy as every job, its outcome read as a typed record (build-outcome.json), never
parsed out of a log. What a build failure becomes (MISS for a series that does not apply,
ERROR for a build task that died) is decided where the build ran, for every job of that
kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.matrix import driver
from orchestrator.matrix.spec import load_matrix

REPO = Path(__file__).resolve().parents[2]
MANGLED = REPO / "tests" / "data" / "mails" / "web-archive-patch.txt"  # does not apply


def _matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, series: str) -> Path:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: buildtask\ntrees: [debian-6.1]\n"
        f"series: [{series}]\n"
        "arches: [x86_64]\nconfigs: [default]\n"
        "tests: [smoke, {name: hotplug, duration: 2}]\n"
    )
    return path


def _records(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(run_dir.glob("*/job.json"))}


@pytest.mark.integration
def test_a_series_that_does_not_apply_is_miss_exit_4_for_every_job_of_its_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = load_matrix(_matrix(tmp_path, monkeypatch, f"{{name: mangled, patches: {MANGLED}}}"))
    night = driver.run_matrix(m, confirm=0)
    recs = _records(night.run_dir)
    assert len(recs) == 2, recs.keys()
    for rec in recs.values():
        assert rec["status"] == "MISS" and rec["stage"] == "build", rec
        assert rec["error"]["exit_code"] == 4, rec["error"]
        assert "does not apply" in rec["error"]["message"], rec["error"]
    # One build task for both jobs, and it said so as data.
    outcomes = list((night.run_dir / driver.STATE).glob("build-*/build-outcome.json"))
    assert len(outcomes) == 1
    assert json.loads(outcomes[0].read_text())["status"] == "MISS"
    assert night.exit_code == 3


def test_a_build_task_that_dies_without_an_outcome_is_an_error_naming_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = load_matrix(_matrix(tmp_path, monkeypatch, "none"))
    real = driver.kto_argv

    def dying(*args: str) -> list[str]:  # the build process is killed before it can say why
        if "--build-only" in args:
            return ["sh", "-c", "echo 'Killed' >&2; exit 137", "kto-build"]
        return real(*args)

    monkeypatch.setattr(driver, "kto_argv", dying)
    night = driver.run_matrix(m, confirm=0)
    recs = _records(night.run_dir)
    assert {r["status"] for r in recs.values()} == {"ERROR"}, recs
    for rec in recs.values():
        assert "the build task exited 137 without an outcome" in rec["error"]["message"]
        assert str(night.run_dir / driver.STATE) in (rec["error"]["hint"] or "")
    assert night.exit_code == 3
