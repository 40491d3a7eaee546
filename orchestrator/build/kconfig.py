"""Kconfig fragments: find them, and check that the final .config has what they asked for.

olddefconfig silently drops options whose dependencies are not met; kto makes that an error
naming the option, the fragment and the line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.build.fragment_params import fragments_dir, known_fragments
from orchestrator.errors import KconfigDropped, UserError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Fragment:
    name: str
    path: Path

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Request:
    option: str
    value: str | None  # None: "is not set"
    fragment: str
    line: int


def find_fragment(name_or_path: str) -> Fragment:
    """A fragment by name (configs/kconfig/NAME.config) or by path."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return Fragment(path.stem, path.resolve())
    named = fragments_dir() / f"{name_or_path.removesuffix('.config')}.config"
    if named.is_file():
        return Fragment(named.stem, named)
    raise UserError(
        f"config fragment {name_or_path!r} not found (neither a file nor configs/kconfig/"
        f"{name_or_path}.config)",
        hint=f"known fragments: {', '.join(known_fragments())}",
    )


def parse_fragment(frag: Fragment) -> list[Request]:
    reqs = []
    for no, raw in enumerate(frag.path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _SET.match(line)
        if m:
            reqs.append(Request(m.group(1), m.group(2), frag.name, no))
            continue
        m = _UNSET.match(line)
        if m:
            reqs.append(Request(m.group(1), None, frag.name, no))
            continue
        if line.startswith("#"):
            continue
        raise UserError(
            f"{frag.path}:{no}: not a Kconfig line: {raw!r}",
            hint="use CONFIG_FOO=y|m|<value> or `# CONFIG_FOO is not set`",
        )
    return reqs


def parse_config(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        m = _SET.match(line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def _satisfied(req: Request, final: dict[str, str]) -> bool:
    have = final.get(req.option)
    if req.value is None or req.value == "n":
        return have is None or have == "n"
    if req.value == "m":
        return have in ("m", "y")  # without MODULES a tristate can only be built in
    return have == req.value


def dropped_options(fragments: list[Fragment], config_text: str) -> list[tuple[Request, str]]:
    """Requests the final config does not honour, with what the config has instead.

    Later fragments override earlier ones, as merge_config.sh does.
    """
    final = parse_config(config_text)
    wanted: dict[str, Request] = {}
    for frag in fragments:
        for req in parse_fragment(frag):
            wanted[req.option] = req
    bad = []
    for req in wanted.values():
        if not _satisfied(req, final):
            bad.append((req, final.get(req.option, "not set")))
    return bad


def verify(fragments: list[Fragment], config_text: str, config_path: Path) -> None:
    bad = dropped_options(fragments, config_text)
    if not bad:
        return
    lines = [
        f"{r.option}={r.value if r.value is not None else 'n'} (from {r.fragment}.config "
        f"line {r.line}) ended up as {have}"
        for r, have in bad
    ]
    raise KconfigDropped(
        f"{len(bad)} Kconfig option(s) requested by the fragments are not in the final "
        f"config {config_path}:\n  " + "\n  ".join(lines),
        hint="the option has unmet dependencies or no longer exists in this tree: add its "
        "dependencies to the fragment (see the option's `depends on` in Kconfig) or drop it",
    )
