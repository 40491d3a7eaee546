"""The layout is a contract: which stage may import which, and what `kto report` loads."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"

# Every package and top-level module of orchestrator/, bottom to top: each imports only
# units ranked below it (and itself). Utilities, then the data every stage shares (records),
# then the stages, the job that runs them, the renderers, the drivers and the command line.
RANKS = (
    "__init__",  # the package's face: __version__
    "errors",
    "paths",
    "digest",
    "progress",
    "atomic",
    "locks",
    "orphan",
    "config",
    "proc",
    "jail",  # bubblewrap parts shared by the build sandbox and the decoder
    "git",  # the one git wrapper: nothing a repository configures runs from kto's calls
    "records",
    "parser",
    "symbolize",
    "build",
    "guest",
    "vm",
    "job",
    "bugs",
    "results",
    "matrix",
    "bisect",
    "bot",  # after a night: auto-bisect, culprit mails, fix tests
    "commands",
    "cli",
)
RANK = {name: i for i, name in enumerate(RANKS)}


def _imports(path: Path) -> set[str]:
    """Every orchestrator unit a file imports, function-level imports included."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (use orchestrator.<stage>...)"
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[0] == "orchestrator"}


def _unit(module: str) -> str:
    """The ranked unit a dotted module (or a name imported from it) belongs to."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "__init__"  # `from orchestrator import __version__`


def _unit_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def violations(path: Path, unit: str) -> list[str]:
    """The imports of `path` (a file of `unit`) that reach a unit ranked at or above it."""
    own = RANK[unit]
    return [
        f"{unit} ({path.name}) imports {mod}: {_unit(mod)} is ranked above {unit}"
        for mod in sorted(_imports(path))
        if _unit(mod) != unit and RANK[_unit(mod)] >= own
    ]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_and_module_is_ranked() -> None:
    units = {_unit_of(p) for p in _modules()}
    assert units <= set(RANK), f"not in RANKS (add them where they belong): {units - set(RANK)}"
    assert set(RANK) <= units, f"ranked but gone: {set(RANK) - units}"


def test_each_unit_imports_only_units_ranked_below_it() -> None:
    bad = [v for p in _modules() for v in violations(p, _unit_of(p))]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("unit", "source", "caught"),
    [
        ("records", "from orchestrator.job.runner import run_job\n", True),
        ("results", "def f():\n    from orchestrator.matrix.history import classify\n", True),
        ("build", "from orchestrator import progress\nimport orchestrator.symbolize.elf\n", False),
        ("vm", "import orchestrator.vm.qemu\nfrom orchestrator.job import runner\n", True),
        ("parser", "from orchestrator import __version__\n", False),
    ],
)
def test_the_checker_catches_an_import_that_runs_up(
    tmp_path: Path, unit: str, source: str, caught: bool
) -> None:
    bad = tmp_path / "x.py"
    bad.write_text(source)
    assert bool(violations(bad, unit)) is caught, violations(bad, unit)


def test_nothing_imports_commands() -> None:
    bad = [
        f"{p.relative_to(PACKAGE)} imports {m}"
        for p in _modules()
        if p.parent.name != "commands" and p.name != "cli.py"
        for m in _imports(p)
        if m.startswith("orchestrator.commands")
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("command", ["report", "report-mail", "compare"])
def test_reports_never_load_pexpect_or_the_build(command: str, tmp_path: Path) -> None:
    # A real (empty) run directory, so the command runs to the end in the child.
    code = f"""
import sys
from orchestrator.cli import main
from orchestrator.records.runrecord import new_run_dir
run = new_run_dir("t", root=__import__("pathlib").Path({str(tmp_path)!r}))
argv = {{"report": ["report", str(run)], "report-mail": ["report", str(run), "--mail"],
        "compare": ["compare", str(run), str(run)]}}[{command!r}]
rc = main(argv)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pexpect", "ptyprocess", "tuxmake",
    "paramiko") or m.startswith(("orchestrator.vm", "orchestrator.build", "orchestrator.guest")))
print("HEAVY", heavy)
sys.exit(rc)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout


def test_a_command_boot_loads_only_what_it_uses() -> None:
    # `kto boot KERNEL -- CMD` is kto's cost over bare QEMU: the modules for tests,
    # SSH, YAML parsing and decoding load when a job uses them, not at import.
    code = """
import sys
import orchestrator.cli, orchestrator.commands.boot, orchestrator.job.runner
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("yaml", "paramiko")
    or m.startswith(("orchestrator.symbolize", "orchestrator.guest.ssh",
                     "orchestrator.guest.workload", "orchestrator.build.kernel")))
print("HEAVY", heavy)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout


def test_qemu_starts_before_the_modules_a_command_boot_needs_later(tmp_path: Path) -> None:
    # What loads before QEMU is spawned delays the guest (issue 12: kto's share of a boot);
    # test specs, workloads, the console parser and the finding decoder load after it.
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"\0" * 512)  # never booted: the spawn is intercepted
    code = f"""
import os, sys
import pexpect
def spawn(*a, **k):
    late = sorted(m for m in sys.modules if m.split(".")[0] in ("yaml", "paramiko",
        "tempfile", "platform", "hashlib") or m.startswith(("orchestrator.guest.testspec",
        "orchestrator.guest.workload", "orchestrator.guest.monitor", "orchestrator.parser",
        "orchestrator.symbolize", "orchestrator.build.kernel")))
    print("SPAWN", a[0], "EARLY", late, flush=True)
    os._exit(0)
pexpect.spawn = spawn
from orchestrator.cli import main
sys.exit(main(["boot", {str(kernel)!r}, "--arch", "x86_64", "--", "true"]))
"""
    env = {**os.environ, "KTO_RESULTS": str(tmp_path / "results")}
    for _ in range(2):  # the first may build the base initramfs (reading the test specs)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert "SPAWN qemu-system-x86_64" in res.stdout, res.stdout + res.stderr
    assert "EARLY []" in res.stdout, res.stdout
