"""A git that kto does not start itself (get_maintainer.pl's `git ls-files`) still runs
nothing the repository configures: the overrides travel in the environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestrator.git import git_safe_env


def test_a_planted_fsmonitor_does_not_run_under_the_safe_environment(tmp_path: Path) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "f").write_text("x")
    subprocess.run(["git", "add", "f"], cwd=repo, check=True)
    hook = tmp_path / "fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    subprocess.run(["git", "config", "core.fsmonitor", str(hook)], cwd=repo, check=True)

    def ls_files(env: dict[str, str]) -> None:
        subprocess.run(["git", "status", "--porcelain"], cwd=repo, env=env, capture_output=True)

    ls_files({**os.environ, **git_safe_env()})
    assert not marker.exists(), "the repository's fsmonitor ran under kto's environment"
    ls_files(dict(os.environ))  # the same call without it: the planted command runs
    assert marker.exists()
