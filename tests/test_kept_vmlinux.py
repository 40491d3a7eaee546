"""Each cached kernel keeps its own vmlinux: the shared build dir's next link must not
change what an earlier kernel's findings are decoded with."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.build.kernel import debug_facts, keep_vmlinux
from orchestrator.symbolize.elf import build_id


def link(build_dir: Path, value: int) -> None:
    src = build_dir / "v.c"
    src.write_text(f"int main(void) {{ return {value}; }}\n")
    subprocess.run(["gcc", "-g", "-Wl,--build-id", "-o", build_dir / "vmlinux", src], check=True)


def test_the_kept_vmlinux_survives_a_relink_of_the_build_dir(tmp_path: Path) -> None:
    build_dir, out = tmp_path / "build", tmp_path / "out"
    build_dir.mkdir()
    out.mkdir()
    link(build_dir, 1)
    kept = keep_vmlinux(build_dir, out)
    assert kept == out / "vmlinux"
    first = build_id(kept)
    facts = debug_facts(kept, tmp_path / "final" / "vmlinux", build_dir, tmp_path)
    assert facts["vmlinux"] == str(tmp_path / "final" / "vmlinux")
    assert facts["build_id"] == first and facts["debug_info"] is True
    link(build_dir, 2)  # the next series' build in the same dir
    assert build_id(build_dir / "vmlinux") != first
    assert build_id(kept) == first


def test_no_vmlinux_no_decoding_inputs(tmp_path: Path) -> None:
    assert keep_vmlinux(tmp_path, tmp_path / "out") is None
    facts = debug_facts(None, tmp_path / "vmlinux", tmp_path, tmp_path)
    assert facts["vmlinux"] is None and facts["debug_info"] is False


def test_the_oldest_kept_vmlinux_files_go_beyond_the_cap(tmp_path: Path) -> None:
    import os

    from orchestrator.build.builddirs import prune_kept_vmlinux

    paths = []
    for n in range(4):
        entry = tmp_path / f"key{n}"
        entry.mkdir()
        (entry / "vmlinux").write_bytes(b"x" * 8192)
        os.utime(entry / "vmlinux", (1000 + n, 1000 + n))
        paths.append(entry / "vmlinux")
    size = paths[0].stat().st_blocks * 512
    # Room for two; the newest is the one being kept.
    removed = prune_kept_vmlinux(tmp_path, keep=paths[3], cap=2 * size)
    assert removed == paths[:2]
    assert [p.exists() for p in paths] == [False, False, True, True]
