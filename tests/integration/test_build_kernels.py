"""Real tuxmake builds of tiny kernels for all three arches (cached in ~/.cache/kto)."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from .kto_cli import KTO_ARGV, REPO, kto, kto_json

pytestmark = pytest.mark.integration


def _image_ok(arch: str, data: bytes) -> bool:
    if arch == "x86_64":
        return data[0x202:0x206] == b"HdrS"  # x86 boot protocol header
    if arch == "arm64":
        return data[0x38:0x3C] == b"ARM\x64"  # arm64 Image magic
    # sparc64: the uncompressed ELF image OpenBIOS loads (EM_SPARCV9 = 43), not gzip.
    return data[:4] == b"\x7fELF" and struct.unpack(">H", data[18:20])[0] == 43


@pytest.mark.parametrize("arch", ["x86_64", "arm64", "sparc64"])
def test_build_default_kernel_then_cache_hit(arch: str) -> None:
    rec = kto_json("build", "--arch", arch, "-q")
    out = Path(rec["inputs"]["repo"])
    assert out.is_dir()
    assert rec["status"] == "PASS" and rec["inputs"]["arch"] == arch
    assert rec["reproducer"] == f"kto build --tree debian-6.1 --arch {arch}"
    assert rec["inputs"]["series"]["hash"] == "none"
    assert rec["toolchain"]["version"]
    image = _artifact(rec)
    data = image.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rec["artifacts"]["kernel"]["sha256"]
    assert _image_ok(arch, data), f"{image} is not a bootable {arch} image"
    # The identical request again: a cache hit, nothing compiled.
    again = kto_json("build", "--arch", arch, "-q")
    assert again["cache_hit"] is True
    assert again["key"] == rec["key"]
    assert "build" not in " ".join(again["durations_this_request"])


def _artifact(rec: dict) -> Path:
    from orchestrator.build.cache import artifacts_root

    return artifacts_root() / rec["key"] / rec["artifacts"]["kernel"]["path"]


def test_patched_build_records_series() -> None:
    series = REPO / "kernels" / "series" / "kto-banner"
    rec = kto_json("build", "--arch", "x86_64", "--patches", str(series), "-q")
    s = rec["inputs"]["series"]
    assert s["kind"] == "dir" and s["hash"] != "none"
    assert [p["subject"] for p in s["patches"]] == [
        "[PATCH 1/1] init: print a kto-banner line before starting init"
    ]
    assert rec["inputs"]["head_commit"] != rec["inputs"]["base_commit"]
    assert "--patches" in rec["reproducer"]
    plain = kto_json("build", "--arch", "x86_64", "-q")
    assert plain["key"] != rec["key"]


def test_dropped_fragment_option_is_an_error(tmp_path: Path) -> None:
    frag = tmp_path / "vhe.config"
    frag.write_text("# gone since 5.x\nCONFIG_ARM64_VHE=y\n")
    res = kto("build", "--arch", "arm64", "--config", str(frag), "-q")
    assert res.returncode == 5, res.stderr
    assert "CONFIG_ARM64_VHE=y (from vhe.config line 2) ended up as not set" in res.stderr


def test_mangled_mail_series_does_not_apply_exit_4() -> None:
    mail = REPO / "tests" / "data" / "mails" / "web-archive-patch.txt"  # written for pre-5.7
    res = kto("build", "--arch", "sparc64", "--patches", str(mail), "-q")
    assert res.returncode == 4, res.stderr
    assert "mm/mmu_notifiers: look up the notifier list once in the young helpers" in res.stderr
    assert "Traceback" not in res.stderr


def test_two_builds_of_one_tree_take_turns(tmp_path: Path) -> None:
    # A fragment never seen before: both processes must configure (under the tree lock);
    # the final config equals the default one, so neither compiles.
    frag = tmp_path / "again.config"
    frag.write_text(f"# {uuid.uuid4()}\nCONFIG_PRINTK=y\n")
    argv = [
        *KTO_ARGV,
        "build",
        "--arch",
        "sparc64",
        "--json",
        "--config",
        str(frag),
    ]
    procs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert any("waiting for tree" in err for _, err in outs)


def test_bad_inputs_are_clear() -> None:
    res = kto("build", "--tree", "no-such-tree")
    assert res.returncode == 2 and "unknown tree 'no-such-tree'" in res.stderr
    res = kto("build", "--config", "no-such-fragment")
    assert res.returncode == 2 and "known fragments" in res.stderr


def test_cache_hit_records_this_requests_patches(tmp_path: Path) -> None:
    import shutil

    original = REPO / "kernels" / "series" / "kto-banner"
    first = kto_json("build", "--arch", "x86_64", "--patches", str(original), "-q")
    copy = tmp_path / "same-series"
    shutil.copytree(original, copy)
    again = kto_json("build", "--arch", "x86_64", "--patches", str(copy), "-q")
    assert again["cache_hit"] is True and again["key"] == first["key"]
    assert again["inputs"]["series"]["source"] == str(copy)
    assert str(copy) in again["reproducer"]


def test_a_new_mailed_series_builds_incrementally_in_its_own_dir(tmp_path: Path) -> None:
    """A series nobody built before gets a build dir of its own, copied from the trusted
    one, and only what it changed is compiled: the copy is seen at the trusted dir's path
    in the sandbox, so objtool (whose dependency files hold that absolute path) is not
    rebuilt, and with it every x86 object (a 9-minute build per series here, before)."""
    import difflib

    from orchestrator.build.cache import work_dir
    from orchestrator.build.trees import resolve_tree
    from orchestrator.build.trust import UNTRUSTED
    from orchestrator.git import Git

    kto_json("build", "--arch", "x86_64", "-q")  # the trusted kernel (cached)
    tree = resolve_tree("debian-6.1")
    original = Git(tree.repo).out("show", f"{tree.base_commit}:init/main.c") + "\n"
    fn = f"kto_test_{uuid.uuid4().hex[:12]}"
    changed = original + f"\nint {fn}(void);\nint {fn}(void)\n{{\n\treturn 7;\n}}\n"
    diff = "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True),
            changed.splitlines(keepends=True),
            "a/init/main.c",
            "b/init/main.c",
        )
    )
    d = tmp_path / "series"
    d.mkdir()
    (d / "0001-init.patch").write_text(
        f"From: Alice <alice@example.org>\nSubject: [PATCH] init: add {fn}\n\n---\n"
        f"diff --git a/init/main.c b/init/main.c\n{diff}"
    )
    rec = kto_json("build", "--arch", "x86_64", "--patches", str(d), "-q")
    assert rec["status"] == "PASS" and rec["cache_hit"] is False
    owner = work_dir("debian-6.1", "x86_64", UNTRUSTED, rec["inputs"]["series"]["hash"][:16])
    (own,) = owner.glob("configs/*/build")
    trusted = work_dir("debian-6.1", "x86_64") / "configs" / own.parent.name / "build"
    assert trusted.is_dir(), f"no trusted build dir {trusted} to seed from"

    def mtime(base: Path, rel: str) -> int:
        return (base / rel).stat().st_mtime_ns

    for kept in ("tools/objtool/objtool", "kernel/torture.o", "mm/mmu_notifier.o"):
        assert mtime(own, kept) == mtime(trusted, kept), f"{kept} was rebuilt"
    assert mtime(own, "init/main.o") > mtime(trusted, "init/main.o")  # the change was
