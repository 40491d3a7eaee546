"""Run the real `kto` CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def kto(
    *args: str, timeout: float = 1800, results: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`results`: the run directories go there (KTO_RESULTS), not into the checkout."""
    env = {**os.environ, "KTO_RESULTS": str(results)} if results else None
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
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
