"""Known findings (configs/waivers.yaml): they do not fail a job, but reports still show them.

A waiver is a finding title, optionally limited to trees, configs, arches or tests of the
matrix, and a reason a reader can check ("fixed upstream by <sha>, not in debian-6.1").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.schema import BadYAML, safe_load
from orchestrator.errors import ConfigError
from orchestrator.paths import configs_dir

SCOPES = ("trees", "configs", "arches", "tests")


@dataclass(frozen=True)
class Waiver:
    title: str
    reason: str
    scope: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def applies(self, key: tuple[str, str, str, str]) -> bool:
        # key is (tree, config, arch, test), the order of SCOPES.
        return all(
            not self.scope.get(name) or value in self.scope[name]
            for name, value in zip(SCOPES, key, strict=True)
        )


@dataclass
class Waivers:
    items: list[Waiver] = field(default_factory=list)
    source: str = ""

    def match(self, title: str, key: tuple[str, str, str, str]) -> Waiver | None:
        return next((w for w in self.items if w.title == title and w.applies(key)), None)


def default_path() -> Path:
    return configs_dir() / "waivers.yaml"


def parse(doc: Any, source: str) -> Waivers:
    if doc is None:
        return Waivers([], source)
    if not isinstance(doc, dict) or not isinstance(doc.get("waivers", []), list):
        raise ConfigError(f"{source}: expected a mapping with a `waivers:` list")
    items = []
    for i, entry in enumerate(doc.get("waivers") or []):
        where = f"{source}: waivers[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            raise ConfigError(f"{where}: needs a `title:` string (a finding title)")
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise ConfigError(f"{where}: needs a `reason:` (why this finding is known)")
        unknown = set(entry) - {"title", "reason", *SCOPES}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                hint=f"allowed: title, reason, {', '.join(SCOPES)}",
            )
        scope: dict[str, tuple[str, ...]] = {}
        for name in SCOPES:
            value = entry.get(name)
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{name}: expected a list of names")
            scope[name] = tuple(value)
        items.append(Waiver(entry["title"], entry["reason"], scope))
    return Waivers(items, source)


def load(path: Path | None = None) -> Waivers:
    path = path or default_path()
    if not path.exists():
        return Waivers([], str(path))
    try:
        doc = safe_load(path.read_text())
    except BadYAML as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return parse(doc, str(path))
