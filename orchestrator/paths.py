"""Where kto keeps its data files, caches and results."""

from __future__ import annotations

import os
from pathlib import Path

# The repository root: data files (configs/, kernels/, guest-tests/) live beside the package.
REPO_ROOT = Path(__file__).resolve().parent.parent


def configs_dir() -> Path:
    return REPO_ROOT / "configs"


def kernels_dir() -> Path:
    return REPO_ROOT / "kernels"


def guest_tests_dir() -> Path:
    return REPO_ROOT / "guest-tests"


def cache_dir() -> Path:
    """Per-user cache shared by all checkouts, so a fresh clone (CI) still gets warm builds."""
    env = os.environ.get("KTO_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "kto"


def results_dir() -> Path:
    env = os.environ.get("KTO_RESULTS")
    return Path(env) if env else REPO_ROOT / "results"
