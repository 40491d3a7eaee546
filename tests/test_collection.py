"""Every folder under tests/ that holds test files is collected.

pytest prunes folders by `norecursedirs` before it looks at a file, and its default list
holds names a test folder could well have (`build`, `dist`, `venv`): such a folder's tests
would never run and nothing would say so. These tests ask pytest itself (a subprocess, the
way `make test` starts it) which files it collects.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# pytest's default python_files; pyproject.toml does not change it
TEST_FILES = ("test_*.py", "*_test.py")
COUNT_LINE = re.compile(r"^(\S+\.py): \d+$")  # `--collect-only -qq`: "<file>: <n tests>"


def _test_files(root: Path) -> set[Path]:
    """Every test file under root/tests, relative to root."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root / "tests"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if any(fnmatch(name, pattern) for pattern in TEST_FILES):
                found.add((Path(dirpath) / name).relative_to(root))
    return found


def _collected(root: Path) -> set[Path]:
    """The test files pytest collects when started in root with no paths (as `make test`).

    addopts is emptied: its `-m 'not slow'` deselects, and a file with only slow tests would
    look uncollected; markers are not what this checks."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-qq", "-o", "addopts="]
    res = subprocess.run(
        [*argv, "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # 0: collected; anything else (2: a module failed to import) would hide files
    assert res.returncode == 0, f"pytest --collect-only failed ({res.returncode}):\n{res.stdout}"
    return {Path(m[1]) for ln in res.stdout.splitlines() if (m := COUNT_LINE.match(ln.strip()))}


def _uncollected_dirs(root: Path) -> set[Path]:
    return {f.parent for f in _test_files(root) - _collected(root)}


def test_every_folder_with_test_files_is_collected() -> None:
    assert _test_files(REPO), "no test files found: the walk is broken"
    missing = _uncollected_dirs(REPO)
    assert not missing, (
        f"test files in {', '.join(sorted(map(str, missing)))} are never collected: "
        "see norecursedirs in pyproject.toml"
    )


def _project(tmp_path: Path, pytest_options: dict[str, object]) -> Path:
    """A project with tests/test_top.py and tests/build/test_stage.py."""
    (tmp_path / "tests" / "build").mkdir(parents=True)
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in pytest_options.items()]  # JSON: valid TOML
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    (tmp_path / "tests" / "test_top.py").write_text("def test_top():\n    pass\n")
    (tmp_path / "tests" / "build" / "test_stage.py").write_text("def test_stage():\n    pass\n")
    return tmp_path


def test_kto_config_collects_a_build_folder_the_default_would_skip(tmp_path: Path) -> None:
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "norecursedirs" in ours, "pyproject.toml leaves norecursedirs to pytest's default"
    options = {k: ours[k] for k in ("testpaths", "norecursedirs")}
    assert _uncollected_dirs(_project(tmp_path / "kto", options)) == set()
    # the same project on pytest's default norecursedirs: the check above names the folder
    default = {"testpaths": ours["testpaths"]}
    assert _uncollected_dirs(_project(tmp_path / "default", default)) == {Path("tests/build")}
