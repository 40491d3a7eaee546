"""Which Debian package provides a host tool (data: configs/host/tools.yaml)."""

from __future__ import annotations

from functools import cache

import yaml

from .paths import configs_dir


@cache
def _tool_packages() -> dict[str, str]:
    with open(configs_dir() / "host" / "tools.yaml") as fh:
        data = yaml.safe_load(fh) or {}
    return {str(k): str(v) for k, v in data.items()}


def package_for(tool: str) -> str:
    return _tool_packages().get(tool, f"the package that provides `{tool}`")
