"""The layout is a contract: which stage may import which, and what `kto report` loads."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"

# A stage's modules never import the stages listed for it.
FORBIDDEN = {
    "parser": ("vm", "build", "guest", "job", "results", "commands"),
    "results": ("vm", "build", "guest", "commands"),
    "config": ("vm", "build", "guest", "job", "results", "commands"),
    "vm": ("build", "commands"),
    # Decoding reads a vmlinux and a tree; it never builds, boots or writes results.
    "symbolize": ("vm", "build", "guest", "job", "results", "commands"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (use orchestrator.<stage>...)"
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("orchestrator")}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_import_direction(stage: str) -> None:
    bad = []
    for path in sorted((PACKAGE / stage).rglob("*.py")):
        for mod in _imports(path):
            parts = mod.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[stage]:
                bad.append(f"{path.relative_to(PACKAGE)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_commands() -> None:
    bad = [
        f"{p.relative_to(PACKAGE)} imports {m}"
        for p in _modules()
        if p.parent.name != "commands" and p.name != "cli.py"
        for m in _imports(p)
        if m.startswith("orchestrator.commands")
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from orchestrator.vm.session import ConsoleSession\n")
    assert "orchestrator.vm.session" in _imports(bad)


@pytest.mark.parametrize("command", ["report", "report-mail", "compare"])
def test_reports_never_load_pexpect_or_the_build(command: str, tmp_path: Path) -> None:
    # A real (empty) run directory, so the command runs to the end in the child.
    code = f"""
import sys
from orchestrator.cli import main
from orchestrator.results.runrecord import new_run_dir
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
