"""The nightly matrix as data: configs/matrix/<name>.yaml -> cells -> JobSpecs.

    name: nightly                       # the matrix; runs of it are compared night to night
    trees: [debian-6.1, {name: mine, path: /src/linux, ref: master}]
    series:                             # "none": the tree as it is
      - none
      - {name: mmu-fix, patches: kernels/series/some-series}
    arches: [x86_64, arm64, sparc64]
    configs:                            # Kconfig fragments on top of the arch profile's
      - default                         # = no extra fragments
      - {name: oops-panics, fragments: [panic-on-oops]}
    tests:
      - smoke
      - {name: hotplug, duration: 20, repeats: 2, args: {mode: random}}
    repeats: 1                          # default for tests that do not say
    exclude: [{arch: sparc64, test: hotplug}]   # cells dropped (a test.yaml skip is a SKIP)
    include: [{tree: debian-6.12, arch: x86_64, test: smoke}]   # cells added to the product
    fatal_grace: 15                     # BootOptions for every job (optional)
    waivers:                            # noise this matrix chooses to ignore (as in
      - {title: "WARNING in x", reason: "...", trees: [debian-6.1+mmu-fix]}  # waivers.yaml)
    expect:                             # findings cells must produce (a seeded bug kto has
      - {title: "WARNING in y", reason: "...", trees: [debian-6.1+seed], tests: [hotplug]}
                                        # to catch): XFAIL when caught, FAIL when not

A cell is (tree, series, config, arch, test); its id is the JobSpec id of its first repeat,
stable night to night as long as the YAML says the same. Errors name file:line and key.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.config.arch import known_arches
from orchestrator.config.schema import Checker, Mapping, line_of, read_yaml
from orchestrator.errors import ConfigError
from orchestrator.paths import REPO_ROOT, configs_dir
from orchestrator.records.spec import BootOptions, JobSpec

AXES = ("tree", "series", "config", "arch", "test")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class TreeAxis:
    name: str
    tree: str  # what JobSpec.tree gets: a trees.yaml name or a path
    ref: str | None = None


@dataclass(frozen=True)
class SeriesAxis:
    name: str
    patches: str | None = None  # None: the tree as it is


@dataclass(frozen=True)
class ConfigAxis:
    name: str
    fragments: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestAxis:
    name: str
    duration: int | None = None
    repeats: int = 1
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Cell:
    tree: TreeAxis
    series: SeriesAxis
    config: ConfigAxis
    arch: str
    test: TestAxis
    expect: tuple[str, ...] = ()  # finding titles its jobs must produce (`expect:` entries)

    def labels(self) -> dict[str, str]:
        return {
            "tree": self.tree.name,
            "series": self.series.name,
            "config": self.config.name,
            "arch": self.arch,
            "test": self.test.name,
        }

    def job(self, boot: BootOptions, repeat: int = 0) -> JobSpec:
        return JobSpec(
            arch=self.arch,
            tree=self.tree.tree,
            ref=self.tree.ref,
            patches=self.series.patches,
            fragments=self.config.fragments,
            test=self.test.name,
            duration=self.test.duration,
            test_args=self.test.args,
            boot=boot,
            repeat=repeat,
            expect=self.expect,
        )

    @property
    def folder(self) -> str:
        """The cell's job folders are <folder>-r<repeat>, readable and unique in a run."""
        return ".".join(self.labels()[a] for a in AXES)


@dataclass
class Matrix:
    name: str
    path: Path
    cells: list[Cell]
    repeats: dict[Cell, int]
    boot: BootOptions = field(default_factory=BootOptions)
    waivers: list[dict[str, Any]] = field(default_factory=list)  # expected findings

    def jobs(self) -> list[tuple[Cell, JobSpec]]:
        return [(c, c.job(self.boot, r)) for c in self.cells for r in range(self.repeats[c])]

    def cell_id(self, cell: Cell) -> str:
        return cell.job(self.boot, 0).id


def matrix_dir() -> Path:
    return configs_dir() / "matrix"


def resolve_matrix_path(arg: str) -> Path:
    """A path, or a name in configs/matrix/ (`nightly` -> configs/matrix/nightly.yaml)."""
    p = Path(arg)
    if p.is_file():
        return p
    named = matrix_dir() / f"{arg}.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(q.stem for q in matrix_dir().glob("*.yaml"))) or "none"
    raise ConfigError(f"matrix {arg!r}: no such file", hint=f"a path, or one of: {known}")


def _name(c: Checker, parent: Any, key: str, v: Any) -> str:
    if not isinstance(v, str) or not NAME_RE.match(v):
        raise c.fail(parent, key, "must be a name (letters, digits, _.+-)")
    return v


def _list(c: Checker, data: dict[str, Any], key: str, required: bool = True) -> list[Any]:
    v = data.get(key)
    if v is None and not required:
        return []
    if not isinstance(v, list) or (required and not v):
        raise c.fail(data, key, "must be a non-empty list")
    return v


def _entry(c: Checker, parent: Any, key: str, v: Any, allowed: set[str]) -> dict[str, Any]:
    if isinstance(v, str):
        # A plain name in a list: errors point at the line of the list's key.
        m = Mapping({"name": v})
        m.line = line_of(parent, key.split("[")[0]) or 0
        m.key_lines = {}
        return m
    if not isinstance(v, dict) or "name" not in v:
        raise c.fail(parent, key, "must be a name or a mapping with `name`")
    unknown = sorted(set(v) - allowed)
    if unknown:
        raise c.fail(v, f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(allowed))})")
    return v


def _trees(c: Checker, data: dict[str, Any]) -> list[TreeAxis]:
    from orchestrator.build.trees import load_tree_specs

    named, _ = load_tree_specs()
    out = []
    for i, v in enumerate(_list(c, data, "trees")):
        key = f"trees[{i}]"
        e = _entry(c, data, key, v, {"name", "path", "ref"})
        name = _name(c, e, f"{key}.name", e["name"])
        if "path" in e:
            path = Path(str(e["path"])).expanduser()
            path = path if path.is_absolute() else (REPO_ROOT / path)
            if not (path / ".git").exists():
                raise c.fail(e, f"{key}.path", f"{path} is not a git tree")
            out.append(TreeAxis(name, str(path), e.get("ref")))
        elif name in named:
            out.append(TreeAxis(name, name, e.get("ref")))
        else:
            raise c.fail(
                e, f"{key}.name", f"unknown tree {name!r} (known: {', '.join(named)}; or a path)"
            )
    return out


def _series(c: Checker, data: dict[str, Any]) -> list[SeriesAxis]:
    out = []
    for i, v in enumerate(data.get("series") or ["none"]):
        key = f"series[{i}]"
        e = _entry(c, data, key, v, {"name", "patches"})
        name = _name(c, e, f"{key}.name", e["name"])
        patches = e.get("patches")
        if patches is None:
            if name != "none":
                raise c.fail(e, key, "needs `patches` (or is the name `none`)")
            out.append(SeriesAxis(name))
            continue
        p = Path(str(patches)).expanduser()
        if not p.is_absolute() and ".." not in str(patches):
            p = REPO_ROOT / p
        if not p.exists() and ".." not in str(patches):
            raise c.fail(e, f"{key}.patches", f"{p} does not exist")
        out.append(SeriesAxis(name, str(p) if p.exists() else str(patches)))
    return out


def _configs(c: Checker, data: dict[str, Any]) -> list[ConfigAxis]:
    from orchestrator.build.kconfig import find_fragment

    out = []
    for i, v in enumerate(data.get("configs") or ["default"]):
        key = f"configs[{i}]"
        e = _entry(c, data, key, v, {"name", "fragments"})
        frags = e.get("fragments") or []
        if not isinstance(frags, list) or not all(isinstance(f, str) for f in frags):
            raise c.fail(e, f"{key}.fragments", "must be a list of fragment names")
        for f in frags:
            try:
                find_fragment(f)
            except ConfigError as exc:
                raise c.fail(e, f"{key}.fragments", exc.message) from exc
            except Exception as exc:
                raise c.fail(e, f"{key}.fragments", str(exc)) from exc
        out.append(ConfigAxis(_name(c, e, f"{key}.name", e["name"]), tuple(frags)))
    return out


def _tests(c: Checker, data: dict[str, Any], default_repeats: int) -> list[TestAxis]:
    from orchestrator.guest.testspec import load_test

    out = []
    for i, v in enumerate(_list(c, data, "tests")):
        key = f"tests[{i}]"
        e = _entry(c, data, key, v, {"name", "duration", "repeats", "args"})
        name = _name(c, e, f"{key}.name", e["name"])
        try:
            load_test(name)
        except ConfigError:
            raise
        except Exception as exc:
            raise c.fail(e, f"{key}.name", str(exc).splitlines()[0]) from exc
        args = e.get("args") or {}
        if not isinstance(args, dict):
            raise c.fail(e, f"{key}.args", "must map run.sh argument names to values")
        for k, n in (("duration", e.get("duration")), ("repeats", e.get("repeats"))):
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise c.fail(e, f"{key}.{k}", "must be a positive integer")
        out.append(
            TestAxis(
                name,
                e.get("duration"),
                e.get("repeats") or default_repeats,
                tuple((str(k), str(a)) for k, a in args.items()),
            )
        )
    return out


def _rules(c: Checker, data: dict[str, Any], key: str) -> list[dict[str, str]]:
    rules = []
    for i, r in enumerate(_list(c, data, key, required=False)):
        if not isinstance(r, dict) or not r or set(r) - set(AXES):
            raise c.fail(data, f"{key}[{i}]", f"must map some of {', '.join(AXES)} to names")
        rules.append({str(k): str(v) for k, v in r.items()})
    return rules


def _matches(cell: Cell, rule: dict[str, str]) -> bool:
    labels = cell.labels()
    return all(labels[k] == v for k, v in rule.items())


def load_matrix(path: Path) -> Matrix:
    data = read_yaml(path, "matrix")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a matrix must be a mapping")
    c = Checker(path)
    allowed = {
        "name",
        "trees",
        "series",
        "arches",
        "configs",
        "tests",
        "repeats",
        "exclude",
        "include",
        "fatal_grace",
        "waivers",
        "expect",
    }
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise c.fail(data, unknown[0], f"unknown key (known: {', '.join(sorted(allowed))})")
    name = _name(c, data, "name", data.get("name", path.stem))
    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise c.fail(data, "repeats", "must be a positive integer")
    arches = _list(c, data, "arches")
    for i, a in enumerate(arches):
        if a not in known_arches():
            raise c.fail(data, f"arches[{i}]", f"unknown arch {a!r} ({', '.join(known_arches())})")
    trees, series, configs = _trees(c, data), _series(c, data), _configs(c, data)
    tests = _tests(c, data, repeats)
    exclude, include = _rules(c, data, "exclude"), _rules(c, data, "include")
    cells = [
        Cell(t, s, k, a, x)
        for t, s, k, a, x in itertools.product(trees, series, configs, arches, tests)
        if not any(_matches(Cell(t, s, k, a, x), r) for r in exclude)
    ]
    for i, rule in enumerate(include):
        picked = _included(c, data, i, rule, trees, series, configs, tests)
        for cell in picked:
            if cell in cells:
                continue
            if any(_matches(cell, r) for r in exclude):
                raise c.fail(data, f"include[{i}]", "conflicts with an exclude rule")
            cells.append(cell)
    if not cells:
        line = line_of(data, "exclude") or 1
        raise ConfigError(f"{path}:{line}: the matrix expands to no cells (exclude took all)")
    grace = data.get("fatal_grace")
    boot = BootOptions() if grace is None else BootOptions(fatal_grace=float(grace))
    from orchestrator.records.waivers import parse as parse_waivers

    waivers = data.get("waivers") or []
    parse_waivers({"waivers": waivers}, str(path))  # checked here, applied in the reports
    # The same entries as waivers (title, reason, scope), but part of each cell's jobs: the
    # job itself judges XFAIL or FAIL, so every driver and report sees the same verdict.
    expected = parse_waivers({"waivers": data.get("expect") or []}, f"{path}: expect")
    cells = [
        replace(cell, expect=tuple(w.title for w in expected.items if w.applies(_key(cell))))
        for cell in cells
    ]
    return Matrix(
        name, path, cells, {cell: cell.test.repeats for cell in cells}, boot, list(waivers)
    )


def _key(cell: Cell) -> tuple[str, str, str, str]:
    """The (tree, config, arch, test) a waiver or expectation scope names: the tree row
    is tree+series, as the reports show it."""
    series = cell.series.name
    tree = cell.tree.name + ("" if series == "none" else f"+{series}")
    return (tree, cell.config.name, cell.arch, cell.test.name)


def _included(
    c: Checker,
    data: dict[str, Any],
    i: int,
    rule: dict[str, str],
    trees: list[TreeAxis],
    series: list[SeriesAxis],
    configs: list[ConfigAxis],
    tests: list[TestAxis],
) -> list[Cell]:
    """An include rule names each axis (or takes every value of an unnamed one)."""

    def pick(axis: str, values: list[Any]) -> list[Any]:
        if axis not in rule:
            return values
        chosen = [v for v in values if (v if isinstance(v, str) else v.name) == rule[axis]]
        if not chosen:
            raise c.fail(data, f"include[{i}].{axis}", f"{rule[axis]!r} is not on the axis")
        return chosen

    arches = rule.get("arch")
    if arches and arches not in known_arches():
        raise c.fail(data, f"include[{i}].arch", f"unknown arch {arches!r}")
    arch_values = [arches] if arches else list(data.get("arches") or [])
    return [
        Cell(t, s, k, a, x)
        for t, s, k, a, x in itertools.product(
            pick("tree", trees),
            pick("series", series),
            pick("config", configs),
            arch_values,
            pick("test", tests),
        )
    ]


def describe(m: Matrix) -> dict[str, Any]:
    """The matrix as run.json keeps it: cells with ids, labels and repeats."""
    return {
        "name": m.name,
        "file": str(m.path),
        "cells": [
            {"id": m.cell_id(c), **c.labels(), "repeats": m.repeats[c], "folder": c.folder}
            for c in m.cells
        ],
    }


def with_repeats(m: Matrix, cell: Cell, repeats: int) -> Matrix:
    return replace(m, repeats={**m.repeats, cell: repeats})
