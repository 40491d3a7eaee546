"""`kto report` and `kto compare` on run directories, and the HTML report in a real
headless chromium (skipped only when chromium is not installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from orchestrator.cli import main

from .runs import DATA, PANIC_X86, SMOKE_X86, as_pass, make_run


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    make_run(
        root,
        "20261123-100000-run-x86_64-0001",
        [(PANIC_X86, "x86_64-smoke", {**as_pass(), "test": "smoke"})],
    )
    make_run(
        root,
        "20261123-110000-run-x86_64-0002",
        [
            (PANIC_X86, "x86_64-smoke", {"test": "smoke"}),
            (SMOKE_X86, "x86_64-boot", {"test": "boot"}),
        ],
    )
    return root


def test_unknown_run_lists_available(results: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "20991231"]) == 2
    err = capsys.readouterr().err
    assert "20991231 is not a run" in err
    assert "20261123-100000-run-x86_64-0001" in err and "20261123-110000-run-x86_64-0002" in err


def test_report_writes_everything_and_finds_the_regression(
    results: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", "20261123-11"]) == 0
    out = capsys.readouterr().out
    run = results / "20261123-110000-run-x86_64-0002"
    for name in ("junit.xml", "kcidb.json", "report.html", "summary.json"):
        assert (run / name).is_file(), name
    assert "regressions vs 20261123-100000-run-x86_64-0001: tests 1 new" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "FAIL" and summary["counts"] == {"FAIL": 1, "PASS": 1}
    assert summary["regressions"]["counts"]["test"]["new"] == 1
    html = (run / "report.html").read_text()
    # Regressions come before the matrix.
    assert html.index("<h2>Regressions</h2>") < html.index("<h2>Matrix</h2>")
    # Every relative link points at a file of the run (the report works from disk).
    for href in re.findall(r'href="([^"#]+)"', html):
        assert (run / href).is_file(), href

    assert main(["compare", "20261123-100000-run-x86_64-0001", "20261123-11"]) == 1
    assert "NEW   test" in capsys.readouterr().out
    assert main(["compare", "20261123-11", "20261123-10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["test"]["fixed"] == 1


def test_report_on_half_written_run(results: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(
        results,
        "20261123-120000-run-x86_64-0003",
        [(SMOKE_X86, "x86_64-smoke", {"status": "RUNNING"}), (PANIC_X86, "x86_64-command", {})],
    )
    (run / "x86_64-smoke" / "findings.json").unlink()
    job = run / "x86_64-command" / "job.json"
    job.write_text(job.read_text()[:500])  # truncated mid-write
    (run / "run.json").unlink()
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "missing: run.json: missing" in out
    assert "missing: x86_64-smoke: findings.json: missing" in out
    assert "missing: x86_64-command: job.json: unreadable JSON" in out
    summary = json.loads((run / "summary.json").read_text())
    assert {j["name"]: j["status"] for j in summary["jobs"]} == {
        "x86_64-smoke": "ERROR",
        "x86_64-command": "MISS",
    }
    html = (run / "report.html").read_text()
    assert "Incomplete run record" in html and "job.json: status RUNNING" in html


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not installed (make setup installs it)")
    with tempfile.TemporaryDirectory(prefix="kto-chromium-") as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_html_report_renders_in_chromium(results: Path, tmp_path: Path) -> None:
    assert main(["report", "20261123-11"]) == 0
    html = results / "20261123-110000-run-x86_64-0002" / "report.html"
    dom = chromium("--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The browser parsed it: the grid is there, with a cell linking to the console log.
    assert "<h2>Matrix</h2>" in dom.stdout
    assert 'href="x86_64-smoke/console.log"' in dom.stdout
    assert "kernel panic: sysrq triggered crash" in dom.stdout
    png = tmp_path / "report.png"
    shot = chromium(f"--screenshot={png}", "--window-size=1200,900", html.as_uri())
    assert shot.returncode == 0 and png.stat().st_size > 10_000, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_runs_report_without_errors(tmp_path: Path) -> None:
    for src in DATA.iterdir():
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        assert main(["report", str(dst)]) == 0


def test_html_shows_workload_metrics(results: Path) -> None:
    metrics = {
        "hotplug": {"status": "PASS", "cycles_per_s": 33.63, "online_failures": 0},
        "rcutorture": {
            "grace_periods": 360,
            "onoff": {"offline_successes": 5},
            "reader_pipe": [1, 2],
        },
    }
    make_run(
        results,
        "20261123-150000-run-x86_64-aaaa",
        [(SMOKE_X86, "x86_64-hotplug", {"metrics": metrics})],
    )
    assert main(["report", "20261123-150000-run-x86_64-aaaa"]) == 0
    html = (results / "20261123-150000-run-x86_64-aaaa" / "report.html").read_text()
    assert "cycles_per_s 33.63" in html and "online_failures 0" in html
    assert "onoff.offline_successes 5" in html
    assert "reader_pipe" not in html  # lists stay in job.json
