"""Run the real `kto` CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KTO_ARGV = [sys.executable, "-m", "orchestrator.cli"]  # the CLI as a user runs it, this venv


def kto(
    *args: str, timeout: float = 1800, results: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`results`: the run directories go there (KTO_RESULTS), not into the checkout."""
    env = {**os.environ, "KTO_RESULTS": str(results)} if results else None
    return subprocess.run(
        [*KTO_ARGV, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kto_json(*args: str, timeout: float = 1800) -> dict[str, Any]:
    res = kto(*args, "--json", timeout=timeout)
    assert res.returncode == 0, f"kto {' '.join(args)} failed ({res.returncode}):\n{res.stderr}"
    return json.loads(res.stdout)


def kto_run(*args: str, results: Path | None = None) -> tuple[int, dict[str, Any], str]:
    """`kto run ARGS`: exit status, the job record (its directory under "_dir"), output."""
    res = kto("run", *args, results=results)
    out = res.stdout + res.stderr[-4000:]
    line = next((ln for ln in res.stdout.splitlines() if ln.strip().startswith("record:")), None)
    assert line, f"no record line (exit {res.returncode}):\n{out}"
    record = Path(line.split(":", 1)[1].strip())
    job = json.loads(record.read_text())
    job["_dir"] = record.parent
    return res.returncode, job, out


def added_line(patch: Path, text: str) -> tuple[str, int]:
    """The file and new-file line number of the patch's added line containing `text`."""
    file, line = "", 0
    for row in patch.read_text().splitlines():
        if row.startswith("+++ b/"):
            file = row[6:]
        elif row.startswith("@@"):
            line = int(row.split("+")[1].split(",")[0].split()[0]) - 1
        elif file and line and not row.startswith("-"):
            line += 1
            if row.startswith("+") and text in row:
                return file, line
    raise AssertionError(f"{text!r} is not an added line of {patch}")


def decoded_guilty(job: dict[str, Any]) -> dict[str, Any]:
    """The first finding's decoded guilty frame, from the job's findings.json."""
    doc = json.loads((job["_dir"] / "findings.json").read_text())
    sym = doc["findings"][0]["symbolized"]
    assert sym["decoded"] and sym["guilty"], sym["notes"]
    return {**sym["guilty"], "maintainers": sym["maintainers"]}
