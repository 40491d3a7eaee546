"""Matrix YAML: expansion, include/exclude, stable cell ids, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.matrix.driver import build_key, plan_jobs
from orchestrator.matrix.spec import load_matrix, resolve_matrix_path

BASE = """name: t
trees: [debian-6.1, debian-6.12]
series:
  - none
  - {name: warn, patches: kernels/series/broken-offline-warn}
arches: [x86_64, arm64, sparc64]
configs: [default, {name: panics, fragments: [panic-on-oops]}]
tests:
  - smoke
  - {name: hotplug, duration: 10, repeats: 2}
exclude:
  - {arch: sparc64, config: panics}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return p


def test_expansion_with_exclude_and_repeats(tmp_path: Path) -> None:
    m = load_matrix(_write(tmp_path, BASE))
    # 2 trees x 2 series x 2 configs x 3 arches x 2 tests, minus sparc64+panics (2x2x1x1x2)
    assert len(m.cells) == 48 - 8
    jobs = m.jobs()
    assert len(jobs) == sum(2 if c.test.name == "hotplug" else 1 for c in m.cells)
    assert all(not (c.arch == "sparc64" and c.config.name == "panics") for c in m.cells)
    hotplug = next(c for c in m.cells if c.test.name == "hotplug")
    assert [s.repeat for c, s in jobs if c == hotplug] == [0, 1]
    assert hotplug.folder == "debian-6.1.none.default.x86_64.hotplug"


def test_cell_ids_are_stable_and_distinct(tmp_path: Path) -> None:
    a = load_matrix(_write(tmp_path, BASE))
    b = load_matrix(_write(tmp_path, BASE.replace("name: t", "name: t  # same matrix")))
    assert [a.cell_id(c) for c in a.cells] == [b.cell_id(c) for c in b.cells]
    assert len({a.cell_id(c) for c in a.cells}) == len(a.cells)


def test_include_adds_cells_and_conflicts_are_errors(tmp_path: Path) -> None:
    text = (
        BASE
        + "include:\n  - {tree: debian-6.1, series: none, config: default, arch: x86_64,"
        + " test: smoke}\n"
    )
    m = load_matrix(_write(tmp_path, text))
    assert len(m.cells) == 40  # already in the product: not twice
    bad = BASE + "include:\n  - {arch: sparc64, config: panics, test: smoke}\n"
    with pytest.raises(ConfigError, match="conflicts with an exclude rule"):
        load_matrix(_write(tmp_path, bad))


def test_a_test_skipped_on_an_arch_is_a_skip_cell_not_dropped(tmp_path: Path) -> None:
    m = load_matrix(_write(tmp_path, BASE))
    jobs = plan_jobs(m)
    sparc_hotplug = [j for j in jobs if j.spec.arch == "sparc64" and j.spec.test == "hotplug"]
    assert sparc_hotplug and all(j.plan.skip for j in sparc_hotplug)
    # Builds: one per (tree, series, arch, extra fragments), shared by its tests and repeats.
    builds = {build_key(j) for j in jobs if not j.plan.skip}
    assert len(builds) == 2 * 2 * (3 + 2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("x86_64, arm64", "x86_64, vax"),
            r"m.yaml:6: arches\[1\]: unknown arch",
        ),
        (
            lambda t: t.replace("debian-6.12", "debian-9"),
            r"m.yaml:2: trees\[1\].name: unknown tree",
        ),
        (lambda t: t.replace("panic-on-oops", "no-such-frag"), r"configs\[1\].fragments"),
        (lambda t: t.replace("  - smoke\n", "  - nosuchtest\n"), r"tests\[0\].name: unknown guest"),
        (lambda t: t.replace("repeats: 2", "repeats: 0"), r"tests\[1\].repeats: must be a pos"),
        (lambda t: t + "colour: red\n", r"colour: unknown key"),
        (
            lambda t: t.replace(
                "  - {arch: sparc64, config: panics}",
                "  - {tree: debian-6.1}\n  - {tree: debian-6.12}",
            ),
            "expands to no cells",
        ),
        (lambda t: t.replace("arches:", "\tarches:"), "not valid YAML"),
    ],
)
def test_bad_matrix_names_file_line_and_key(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_matrix(_write(tmp_path, edit(BASE)))


def test_shipped_matrices_load() -> None:
    for name in ("quick", "nightly"):
        m = load_matrix(resolve_matrix_path(name))
        assert m.cells and m.name == name
    with pytest.raises(ConfigError, match="no such file"):
        resolve_matrix_path("no-such-matrix")
