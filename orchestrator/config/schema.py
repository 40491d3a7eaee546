"""One loader for kto's YAML data files: syntax, size and shape errors name file:line:key.

`read_yaml` parses a file with line numbers kept on every mapping; `load_as` checks a parsed
mapping against a frozen dataclass (field types: str, int, float, bool, tuple[str, ...],
dict[str, str], a nested dataclass, or a mapping of names to one), so every profile-like
file (arch profiles, busybox sources, the dropbear recipe, the host tool list) is validated
the same way and an error reads `configs/arch/x86_64.yaml:12: qemu.max_cpus: must be ...`.

Parsed documents are kept in the cache, by content (<cache>/yaml/): every kto command reads
a few of these files before it does anything, and importing PyYAML alone costs more than
reading them all back. A document that does not parse is never kept: its error is the same
every time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
import os
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.digest import hexdigest
from orchestrator.errors import ConfigError, KtoError

T = TypeVar("T")

MAX_BYTES = 1 << 20  # kto's own files are a few KiB; anything this big is not one of them


class Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class BadYAML(Exception):
    """A document PyYAML cannot parse (str: PyYAML's message; __cause__: its error)."""


# Bump when the encoding below changes.
_CACHE_FORMAT = "1"
_yaml_stamp: str | None = None


def _pyyaml_stamp() -> str:
    """Which PyYAML (its file and mtime) and Python parsed a cached document."""
    global _yaml_stamp
    if _yaml_stamp is None:
        # The first yaml/__init__.py on sys.path, as import would find it, by stat alone
        # (importlib.util.find_spec costs each kto start ~0.5 ms).
        origin, mtime = "", 0
        for entry in sys.path:
            init = os.path.join(entry or ".", "yaml", "__init__.py")
            try:
                mtime = os.stat(init).st_mtime_ns
            except OSError:
                continue
            origin = init
            break
        _yaml_stamp = f"{_CACHE_FORMAT}\0{sys.version}\0{origin}\0{mtime}"
    return _yaml_stamp


def _encode(v: Any) -> Any:
    """Parsed YAML as marshal keeps it: a line-numbered Mapping becomes a tuple (YAML
    itself never makes one)."""
    if isinstance(v, Mapping):
        return (v.line, v.key_lines, {k: _encode(x) for k, x in v.items()})
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_encode(x) for x in v]
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, tuple):
        line, key_lines, items = v
        out = Mapping((k, _decode(x)) for k, x in items.items())
        out.line, out.key_lines = line, key_lines
        return out
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _cached(text: str, kind: str, parse: Callable[[str], Any]) -> Any:
    """parse(text), kept in the cache by (content, kind, PyYAML, Python)."""
    from orchestrator.paths import cache_dir

    key = hexdigest(f"{_pyyaml_stamp()}\0{kind}\0{text}".encode())[:32]
    path = cache_dir() / "yaml" / f"{key}.marshal"
    try:
        return _decode(marshal.loads(path.read_bytes()))
    except (OSError, EOFError, ValueError, TypeError):
        pass  # not cached yet (or by another Python): parse
    data = parse(text)
    try:
        blob = marshal.dumps(_encode(data))
    except ValueError:  # a value marshal cannot keep (a YAML date): parse it every time
        return data
    from orchestrator import atomic

    with contextlib.suppress(KtoError):  # a read-only cache: parse every time
        atomic.write_bytes(path, blob, durable=False)
    return data


def _parse_plain(text: str) -> Any:
    import yaml

    # libyaml's parser when PyYAML was built with it: the same documents, ~10x faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise BadYAML(str(exc)) from exc


def safe_load(text: str) -> Any:
    """yaml.safe_load (libyaml's parser when available), cached; BadYAML if it fails."""
    return _cached(text, "plain", _parse_plain)


_line_loader: Any = None


def _parse_with_lines(text: str) -> Any:
    """Every mapping a Mapping, with the lines of its keys; BadYAML if it fails."""
    global _line_loader
    import yaml

    if _line_loader is None:

        class LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
            pass

        def construct_mapping(loader: Any, node: Any) -> Mapping:
            out = Mapping()
            out.line = node.start_mark.line + 1
            out.key_lines = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                out[key] = loader.construct_object(value_node, deep=True)
                out.key_lines[str(key)] = key_node.start_mark.line + 1
            return out

        LineLoader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
        )
        _line_loader = LineLoader
    try:
        return yaml.load(text, Loader=_line_loader)
    except yaml.YAMLError as exc:
        raise BadYAML(str(exc)) from exc


def read_yaml(path: Path, what: str = "data file", allow_empty: bool = False) -> Any:
    """Parse `path`; syntax errors, oversized and empty files are ConfigErrors with a line."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{path}: {size} bytes is too big for a kto {what} (limit {MAX_BYTES})",
                hint="is this the right file?",
            )
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    try:
        data = _cached(text, "lines", _parse_with_lines)
    except BadYAML as bad:
        cause = bad.__cause__
        mark = getattr(cause, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(cause, "problem", None) or str(cause).splitlines()[0]
        hint = "YAML indents with spaces, never tabs" if "\t" in text else None
        raise ConfigError(f"{where}: not valid YAML ({problem})", hint=hint) from cause
    if data is None and not allow_empty:
        raise ConfigError(f"{path}: empty {what}", hint="see the comments in the shipped file")
    return data


def line_of(data: Any, key: str) -> int | None:
    if isinstance(data, Mapping):
        return data.key_lines.get(key) or data.line or None
    return None


class Checker:
    """Errors that name file:line and the dotted key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, parent: Any, key: str, what: str) -> ConfigError:
        leaf = key.rsplit(".", 1)[-1].split("[")[0]
        line = line_of(parent, leaf)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {key}: {what}")

    def mapping(self, value: Any, parent: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(parent, key, "must be a mapping")
        return value


def _is_dataclass(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _value(c: Checker, tp: Any, v: Any, parent: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_dataclass(tp):
        return load_as(tp, c.mapping(v, parent, key), c.path, prefix=f"{key}.")
    if origin is tuple:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise c.fail(parent, key, "must be a list of strings")
        return tuple(v)
    if origin is dict:
        m = c.mapping(v, parent, key)
        if not m:
            raise c.fail(parent, key, "must not be empty")
        if _is_dataclass(args[1]):
            return {str(k): _value(c, args[1], x, m, f"{key}.{k}") for k, x in m.items()}
        if not all(
            isinstance(x, str | int | float) and not isinstance(x, bool) for x in m.values()
        ):
            raise c.fail(parent, key, "must map names to strings")
        return {str(k): str(x) for k, x in m.items()}
    if tp is bool:
        if not isinstance(v, bool):
            raise c.fail(parent, key, "must be true or false")
        return v
    if tp is int:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise c.fail(parent, key, "must be a positive integer")
        return v
    if tp is float:
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise c.fail(parent, key, "must be a positive number")
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise c.fail(parent, key, "must be a string")
        return v
    raise TypeError(f"schema: unsupported field type {tp!r} for {key}")


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """typing.get_type_hints evaluates every annotation: once per class."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def load_as(cls: type[T], data: Any, path: Path, prefix: str = "") -> T:
    """`data` (a parsed mapping) as a `cls` instance; unknown, missing, mistyped keys fail.

    Fields with a default are optional; `metadata={"choices": (...)}` limits a string.
    """
    c = Checker(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.') or 'the file'} must be a mapping")
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise c.fail(
            data,
            prefix + unknown[0],
            f"unknown key (known: {', '.join(fields)})",
        )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            no_default = f.default is dataclasses.MISSING and (
                f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(f"{path}:{getattr(data, 'line', 0) or 1}: missing key {key}")
            continue
        tp = hints[name]
        if isinstance(tp, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        values[name] = _value(c, tp, data[name], data, key)
        choices = f.metadata.get("choices")
        if choices and values[name] not in choices:
            raise c.fail(data, key, f"must be one of {', '.join(choices)}")
    return cls(**values)


def load_file_as(cls: type[T], path: Path, what: str) -> T:
    return load_as(cls, read_yaml(path, what), path)
