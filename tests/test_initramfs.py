"""The guest side: newc writer, /init rendering, job files, busybox per arch, helpers, boots."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.config.arch import load_profile
from orchestrator.errors import ConfigError, MissingDependency, UserError
from orchestrator.guest import busybox, cpio, debsrc, initramfs, testspec
from orchestrator.guest import protocol as guest_protocol
from orchestrator.paths import cache_dir, guest_tests_dir

ARCHES = ["x86_64", "arm64", "sparc64"]
# conftest isolates KTO_CACHE per test; what `make setup` fetched lives in the real one.
REAL_CACHE = cache_dir()


def read_newc(data: bytes) -> list[dict]:
    """A small independent newc reader: the members up to (not including) the trailer."""
    out, pos = [], 0
    while True:
        assert data[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_at = pos + 110
        name = data[name_at : name_at + namesize - 1].decode()
        data_at = (name_at + namesize + 3) & ~3
        body = data[data_at : data_at + filesize]
        pos = (data_at + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append(
            {"name": name, "ino": f[0], "mode": f[1], "uid": f[2], "mtime": f[5], "data": body}
            | {"rdev": (f[9], f[10])}
        )


def sample_archive() -> bytes:
    ar = cpio.Archive()
    ar.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    ar.file("etc/motd", b"hello\n" * 3)
    ar.symlink("bin/sh", "tool")
    ar.dir("tmp", 0o1777)
    ar.file("odd-size", b"x")  # exercises padding
    return ar.to_bytes()


# --------------------------------------------------------------------------- cpio writer


def test_newc_reader_round_trip_and_parents_first() -> None:
    members = read_newc(sample_archive())
    names = [m["name"] for m in members]
    assert names == ["bin", "bin/tool", "etc", "etc/motd", "bin/sh", "tmp", "odd-size"]
    by = {m["name"]: m for m in members}
    assert stat.S_ISDIR(by["bin"]["mode"]) and stat.S_IMODE(by["tmp"]["mode"]) == 0o1777
    assert by["bin/tool"]["data"] == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(by["bin/tool"]["mode"]) == 0o755
    assert stat.S_ISLNK(by["bin/sh"]["mode"]) and by["bin/sh"]["data"] == b"tool"
    assert {m["uid"] for m in members} == {0} and {m["mtime"] for m in members} == {0}
    assert len({m["ino"] for m in members}) == len(members)


def test_system_cpio_extracts_the_archive(tmp_path: Path) -> None:
    cpio = shutil.which("cpio")
    if cpio is None:
        pytest.skip("cpio is not installed (make setup installs it)")
    subprocess.run([cpio, "-idm", "--quiet"], input=sample_archive(), cwd=tmp_path, check=True)
    assert (tmp_path / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(tmp_path / "bin" / "tool", os.X_OK)
    assert os.readlink(tmp_path / "bin" / "sh") == "tool"
    assert (tmp_path / "etc" / "motd").read_text() == "hello\n" * 3
    assert (tmp_path / "odd-size").read_bytes() == b"x"


def test_device_nodes_as_cpio_lists_them() -> None:
    ar = cpio.Archive()
    ar.chardev("dev/console", 5, 1)
    ar.chardev("dev/null", 1, 3, 0o666)
    data = ar.to_bytes()
    by = {m["name"]: m for m in read_newc(data)}
    assert stat.S_ISCHR(by["dev/console"]["mode"]) and by["dev/console"]["rdev"] == (5, 1)
    assert by["dev/null"]["rdev"] == (1, 3)
    if shutil.which("cpio"):
        listing = subprocess.run(
            ["cpio", "-tv", "--quiet"], input=data, capture_output=True, check=True
        ).stdout.decode()
        console = next(ln for ln in listing.splitlines() if ln.endswith("dev/console"))
        assert console.startswith("crw-------") and "5,   1" in console


def test_writer_is_deterministic_and_aligned() -> None:
    assert sample_archive() == sample_archive()
    assert len(sample_archive()) % 4 == 0
    with pytest.raises(ValueError):
        cpio.Archive().file("/abs", b"")


def test_gzip_is_reproducible_and_padded() -> None:
    raw = sample_archive()
    gz = initramfs.compress(raw, "gzip")
    assert gz == initramfs.compress(raw, "gzip")
    assert len(gz) % 4 == 0
    assert gzip.decompress(gz) == raw  # the zero padding is allowed after a gzip member
    assert initramfs.compress(raw, "none") is raw
    with pytest.raises(ConfigError):
        initramfs.compress(raw, "zstd")


# --------------------------------------------------------------------------- /init, jobs


def test_init_markers_come_from_guest_protocol() -> None:
    text = initramfs.render_init().decode()
    assert f"MARK_BOOT_OK='{guest_protocol.BOOT_OK}'" in text
    assert f"MARK_TEST_START='{guest_protocol.TEST_START}'" in text
    assert f"MARK_TEST_END='{guest_protocol.TEST_END}'" in text
    assert f"MARK_POWEROFF='{guest_protocol.POWEROFF}'" in text
    assert f"JOB=/{guest_protocol.JOB_FILE}" in text
    assert not re.search(r"@@\w+@@", text)
    # Every variable the protocol defines is read by /init.
    for var in guest_protocol.JOB_VARS:
        assert f"${var}" in text or f'"${var}"' in text


def test_init_is_valid_shell(tmp_path: Path) -> None:
    script = tmp_path / "init"
    script.write_bytes(initramfs.render_init())
    shells = [s for s in ("/bin/busybox", shutil.which("sh")) if s and Path(s).exists()]
    for sh in shells:
        argv = [sh, "sh", "-n", str(script)] if sh.endswith("busybox") else [sh, "-n", str(script)]
        res = subprocess.run(argv, capture_output=True, text=True)
        assert res.returncode == 0, f"{sh}: {res.stderr}"


NASTY = [
    "echo 'single' \"double\" $HOME `id` \\ back",
    "it's",
    "'",
    "''''",
    "a\nb\n\nc",
    "printf '%s\\n' \"$((6*7))\"; exit 3",
    "",
    "ünïcode ✓",
]


@pytest.mark.parametrize("command", NASTY)
def test_job_file_quotes_survive_sh(tmp_path: Path, command: str) -> None:
    (tmp_path / "job.sh").write_text(
        initramfs.job_script("command", command=command, args="-v 'x y'")
    )
    shells = ["sh"] + (["/bin/busybox"] if Path("/bin/busybox").exists() else [])
    for sh in shells:
        prefix = [sh, "sh"] if sh.endswith("busybox") else [sh]

        def sourced(script: str, prefix: list[str] = prefix) -> str:
            res = subprocess.run([*prefix, "-c", f". ./job.sh; {script}"], cwd=tmp_path,
                                 capture_output=True, check=True)  # fmt: skip
            return res.stdout.decode()

        assert sourced('printf %s "$KTO_CMD"') == command, sh
        # word-split like a command line, quotes are not re-parsed
        assert sourced('printf "%s|" $KTO_ARGS') == "-v|'x|y'|"


def test_job_file_variables_and_archive() -> None:
    text = initramfs.job_script("smoke", shell=True)
    assert [ln.split("=")[0] for ln in text.splitlines()[1:]] == list(guest_protocol.JOB_VARS)
    assert "KTO_SHELL='1'" in text and "KTO_TEST='smoke'" in text
    members = read_newc(initramfs.job_archive("smoke", args="--fast"))
    assert [m["name"] for m in members] == ["kto", guest_protocol.JOB_FILE]
    assert b"KTO_ARGS='--fast'" in members[1]["data"]


@pytest.mark.parametrize("bad", ["", "../etc", "a b", "x;y"])
def test_job_rejects_bad_test_names(bad: str) -> None:
    with pytest.raises(UserError):
        initramfs.job_script(bad)


def test_job_rejects_nul() -> None:
    with pytest.raises(UserError, match="NUL"):
        initramfs.job_script("command", command="a\0b")


def test_initrd_is_base_plus_job(tmp_path: Path) -> None:
    profile = load_profile("x86_64")
    base = tmp_path / "base.cpio.gz"
    base.write_bytes(initramfs.compress(sample_archive(), "gzip"))
    job = initramfs.job_archive("smoke")
    out = initramfs.initrd_for(profile, base, job, tmp_path / "out" / "initrd.img")
    data = out.read_bytes()
    assert data == base.read_bytes() + job
    assert (len(data) - len(job)) % 4 == 0  # the kernel wants the job archive aligned
    with pytest.raises(UserError, match="not a none"):
        initramfs.initrd_for(load_profile("sparc64"), base, job, tmp_path / "x")
    with pytest.raises(UserError, match="cannot read"):
        initramfs.initrd_for(profile, tmp_path / "missing", job, tmp_path / "y")


def test_write_with_a_head_file(tmp_path: Path) -> None:
    from orchestrator import atomic
    from orchestrator.errors import InfraError

    head = tmp_path / "head"
    head.write_bytes(b"abc" * 100000)
    atomic.write_bytes(tmp_path / "out", b"tail", durable=True, head=head)
    assert (tmp_path / "out").read_bytes() == b"abc" * 100000 + b"tail"
    with pytest.raises(InfraError, match=r"cannot read .*missing"):
        atomic.write_bytes(tmp_path / "out", b"tail", head=tmp_path / "missing")
    assert (tmp_path / "out").read_bytes().endswith(b"tail")  # the old file is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head", "out"]  # no temp left


def test_a_temp_name_in_use_is_never_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import atomic

    names = iter([b"\x01" * 6, b"\x01" * 6, b"\x02" * 6])
    monkeypatch.setattr(atomic.os, "urandom", lambda n: next(names))
    taken = tmp_path / f".out.{'01' * 6}"
    taken.write_bytes(b"another writer's")
    atomic.write_bytes(tmp_path / "out", b"mine")
    assert (tmp_path / "out").read_bytes() == b"mine"
    assert taken.read_bytes() == b"another writer's"  # its name came up twice: skipped


# --------------------------------------------------------------------------- guest tests


def test_guest_tests_load_and_smoke_runs_everywhere() -> None:
    smoke = testspec.load_test("smoke")
    assert set(smoke.arches) == set(ARCHES)
    assert [p.name for p in smoke.helpers()] == ["hello.c"]
    assert "run.sh" in [p.name for p in smoke.files()]
    for arch in ARCHES:
        assert "smoke" in [t.name for t in testspec.list_tests(arch)]
    with pytest.raises(UserError, match="unknown guest test"):
        testspec.load_test("no-such-test")


def _fake_guest_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "guest-tests"
    shutil.copytree(guest_tests_dir() / "init", root / "init")
    monkeypatch.setattr(initramfs, "guest_tests_dir", lambda: root)
    monkeypatch.setattr(testspec, "guest_tests_dir", lambda: root)
    return root


def test_bad_test_yaml_names_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_guest_tests(tmp_path, monkeypatch)
    (root / "t1").mkdir()
    (root / "t1" / "test.yaml").write_text("name: t1\narches: [x86_64, vax]\ntimeout_s: 5\n")
    with pytest.raises(ConfigError, match=r"t1/test.yaml: `arches` has unknown arch\(es\) vax"):
        testspec.load_test("t1")
    (root / "t1" / "test.yaml").write_text("name: t1\narches: [x86_64]\ntimeout_s: 0\n")
    with pytest.raises(ConfigError, match="timeout_s"):
        testspec.load_test("t1")


def test_helper_compile_failure_names_file_and_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not shutil.which("gcc") or not Path("/bin/busybox").exists():
        pytest.skip("gcc / busybox-static not installed: run make setup")
    root = _fake_guest_tests(tmp_path, monkeypatch)
    t = root / "broken"
    t.mkdir()
    (t / "test.yaml").write_text("name: broken\narches: [x86_64]\ntimeout_s: 5\n")
    (t / "run.sh").write_text("./bad\n")
    (t / "bad.c").write_text("int main(void) { return undeclared_thing; }\n")
    with pytest.raises(UserError) as exc:
        initramfs.build_base_initramfs(load_profile("x86_64"))
    msg = str(exc.value)
    assert str(t / "bad.c") in msg and "undeclared_thing" in msg and "gcc" in msg


def test_missing_cross_compiler_names_the_package(tmp_path: Path) -> None:
    profile = load_profile("arm64")
    build = dataclasses.replace(profile.build, cc="no-such-gcc", cc_package="gcc-vax-linux-gnu")
    with pytest.raises(MissingDependency, match="gcc-vax-linux-gnu"):
        initramfs._compiler(dataclasses.replace(profile, build=build))


def test_unsupported_arch_for_a_test_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_guest_tests(tmp_path, monkeypatch)
    (root / "x86only").mkdir()
    (root / "x86only" / "test.yaml").write_text("name: x86only\narches: [x86_64]\ntimeout_s: 5\n")
    with pytest.raises(UserError, match="does not support sparc64"):
        initramfs._select_tests("sparc64", ["x86only"])
    assert initramfs._select_tests("sparc64", None) == []


def test_static_elf_check() -> None:
    with pytest.raises(Exception, match="not a 64-bit ELF"):
        debsrc.check_static_elf(b"#!/bin/sh\n" + b"\0" * 64, 62, "script")
    if Path("/bin/busybox").exists():
        data = Path("/bin/busybox").read_bytes()
        debsrc.check_static_elf(data, 62, "busybox")
        with pytest.raises(Exception, match="wrong arch"):
            debsrc.check_static_elf(data, 183, "busybox")
    if Path("/bin/ls").exists():
        with pytest.raises(Exception, match="dynamically linked"):
            debsrc.check_static_elf(Path("/bin/ls").read_bytes(), 62, "ls")


# --------------------------------------------------------------------------- busybox, base


@pytest.fixture
def setup_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real cache, where `make setup` put the arm64 .deb and the busybox source."""
    monkeypatch.setenv("KTO_CACHE", str(REAL_CACHE))
    return REAL_CACHE


def _need_setup(arch: str) -> None:
    spec = load_profile(arch).busybox
    present = {
        "host": lambda: Path(spec.path).exists(),
        "deb": lambda: any((REAL_CACHE / "debs").glob(spec.deb or "-")),
        "build": lambda: any((REAL_CACHE / "busybox" / "src").glob(spec.dsc or "-")),
    }[spec.source]
    if not present():
        pytest.skip(f"{arch} busybox source missing: `make setup` did not run")


@pytest.mark.parametrize("arch", ARCHES)
def test_busybox_for_each_arch_has_the_applets(arch: str, setup_cache: Path) -> None:
    _need_setup(arch)
    path = busybox.busybox_for(load_profile(arch))  # sparc64: cross-built once (~25 s)
    data = path.read_bytes()
    # Applet names are one NUL-separated string table in every busybox binary.
    missing = [a for a in initramfs.required_applets() if b"\0" + a.encode() + b"\0" not in data]
    assert not missing, f"{arch} busybox lacks applets: {missing}"
    if arch == "x86_64":
        listed = subprocess.run([path, "--list"], capture_output=True, text=True).stdout.split()
        assert set(initramfs.required_applets()) <= set(listed)


@pytest.mark.parametrize("arch", ARCHES)
def test_base_initramfs_content_cache_and_determinism(
    arch: str, setup_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_setup(arch)
    profile = load_profile(arch)
    busybox.busybox_for(profile)  # warm the shared busybox before timing anything
    # Build the base into a private cache dir twice: same bytes, second call a cache hit.
    private = tmp_path / "initramfs"
    monkeypatch.setattr(initramfs, "initramfs_dir", lambda: private)
    first = initramfs.build_base_initramfs(profile)
    data = first.read_bytes()
    mtime = first.stat().st_mtime_ns
    t0 = time.monotonic()
    again = initramfs.build_base_initramfs(profile)
    warm = time.monotonic() - t0
    assert again == first and again.stat().st_mtime_ns == mtime
    assert warm < 2.0
    first.unlink()
    assert initramfs.build_base_initramfs(profile).read_bytes() == data  # deterministic
    gz = profile.qemu.initrd_compression == "gzip"
    assert first.name.endswith(".cpio.gz" if gz else ".cpio")
    raw = gzip.decompress(data) if gz else data
    by = {m["name"]: m for m in read_newc(raw)}
    for name in ("init", "bin/busybox", "dev/console", "kto/tests/smoke/run.sh"):
        assert name in by, name
    assert by["dev/console"]["rdev"] == (5, 1)
    assert by["init"]["data"] == initramfs.render_init()
    machine = load_profile(arch).target.elf_machine
    debsrc.check_static_elf(by["kto/tests/smoke/hello"]["data"], machine, "hello")
    assert stat.S_IMODE(by["kto/tests/smoke/hello"]["mode"]) == 0o755


def test_base_memo_follows_the_inputs_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A boot whose inputs are unchanged skips the content hash; any changed, added or
    removed guest-tests file, or a changed busybox, gives the archive of the new content."""
    root = _fake_guest_tests(tmp_path, monkeypatch)
    (root / "t1").mkdir()
    (root / "t1" / "test.yaml").write_text("name: t1\narches: [x86_64]\ntimeout_s: 5\n")
    run_sh = root / "t1" / "run.sh"
    run_sh.write_text("#!/bin/sh\necho one\n")
    run_sh.chmod(0o755)
    monkeypatch.setattr(initramfs, "initramfs_dir", lambda: tmp_path / "initramfs")
    fake_busybox = tmp_path / "busybox"
    shutil.copyfile(load_profile("x86_64").busybox.path, fake_busybox)
    profile = load_profile("x86_64")
    bb = dataclasses.replace(profile.busybox, path=str(fake_busybox))
    profile = dataclasses.replace(profile, busybox=bb)

    def members() -> dict[str, bytes]:
        raw = gzip.decompress(initramfs.build_base_initramfs(profile).read_bytes())
        return {m["name"]: m["data"] for m in read_newc(raw)}

    assert members()["kto/tests/t1/run.sh"] == b"#!/bin/sh\necho one\n"
    hashed = []
    real_key = initramfs._cache_key
    monkeypatch.setattr(initramfs, "_cache_key", lambda *a: hashed.append(1) or real_key(*a))
    assert members()["kto/tests/t1/run.sh"] == b"#!/bin/sh\necho one\n"
    assert not hashed, "unchanged inputs: the memo answers, no content hash"
    run_sh.write_text("#!/bin/sh\necho two\n")  # same size: the mtime tells
    assert members()["kto/tests/t1/run.sh"] == b"#!/bin/sh\necho two\n"
    (root / "t1" / "data.txt").write_text("x\n")
    assert members()["kto/tests/t1/data.txt"] == b"x\n"
    (root / "t1" / "data.txt").unlink()
    assert "kto/tests/t1/data.txt" not in members()
    with fake_busybox.open("ab") as fh:
        fh.write(b"\0" * 4)
    assert members()["bin/busybox"].endswith(b"\0" * 4)
    # removing data.txt brought back the inputs of the second state: the memo knew them
    assert len(hashed) == 3


def test_base_archives_the_memo_forgot_are_evicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every change of guest-tests/ writes a new base archive: beyond the memo's entries the
    old ones go (after a grace for a concurrent boot), the ones it lists stay."""
    root = _fake_guest_tests(tmp_path, monkeypatch)
    (root / "t1").mkdir()
    (root / "t1" / "test.yaml").write_text("name: t1\narches: [x86_64]\ntimeout_s: 5\n")
    run_sh = root / "t1" / "run.sh"
    cache = tmp_path / "initramfs"
    monkeypatch.setattr(initramfs, "initramfs_dir", lambda: cache)
    monkeypatch.setattr(initramfs, "MEMO_ENTRIES", 2)
    profile = load_profile("x86_64")
    made = []
    for n in range(4):
        run_sh.write_text(f"#!/bin/sh\necho {n}\n")
        made.append(initramfs.build_base_initramfs(profile))
        os.utime(made[-1], (1, 1))  # long past the grace
    assert len(set(made)) == 4
    kept = {p.name for p in cache.glob("*.cpio*")}
    assert kept == {made[2].name, made[3].name}, "the memo's two newest stay, the rest go"
    # inside the grace an unlisted archive stays (a concurrent boot may be about to copy it)
    fresh = cache / made[0].name
    fresh.write_bytes(made[3].read_bytes())
    assert initramfs._evict_unlisted() == []
    assert initramfs._evict_unlisted(now=time.time() + initramfs.EVICT_GRACE_S + 1) == [fresh]


# --------------------------------------------------------------------------- real boots


def _kernel(arch: str) -> Path:
    from orchestrator.build.kernel import BuildRequest, build

    return build(BuildRequest(tree="debian-6.1", arch=arch)).kernel


def _qemu_argv(arch: str, kernel: Path, initrd: Path) -> list[str]:
    """The FEASIBILITY.md command line, spelled out here on purpose (independent of qemu.py)."""
    q = load_profile(arch).qemu
    argv = [q.binary, "-M", q.machine, "-cpu", q.cpu["tcg"], "-m", "1G", "-accel", "tcg"]
    if arch != "sparc64":  # sun4u has exactly one CPU and rejects -smp 2
        argv += ["-smp", "2"]
    append = f"console={q.console} {q.cmdline} rdinit=/init"
    argv += ["-kernel", str(kernel), "-initrd", str(initrd), "-append", append]
    return [*argv, "-nographic", "-no-reboot"]


@pytest.mark.integration
@pytest.mark.parametrize("arch", ARCHES)
def test_boot_runs_smoke_and_powers_off(arch: str, tmp_path: Path) -> None:
    profile = load_profile(arch)
    kernel = _kernel(arch)
    base = initramfs.build_base_initramfs(profile)
    initrd = initramfs.initrd_for(profile, base, initramfs.job_archive("smoke"), tmp_path / "i")
    t0 = time.monotonic()
    res = subprocess.run(
        _qemu_argv(arch, kernel, initrd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120 * profile.qemu.timeout_scale,
    )
    elapsed = time.monotonic() - t0
    console = res.stdout.decode(errors="replace")
    (tmp_path / "console.log").write_text(console)
    assert res.returncode == 0, console[-3000:]
    for marker in (
        guest_protocol.BOOT_OK,
        f"{guest_protocol.TEST_START} smoke",
        f"{guest_protocol.TEST_END} smoke rc=0",
        guest_protocol.POWEROFF,
    ):
        assert marker in console, f"{marker!r} missing:\n{console[-3000:]}"
    assert f"kto-hello: {arch} pid=" in console
    assert "Kernel panic" not in console
    print(f"{arch}: boot + smoke + poweroff in {elapsed:.2f} s")


@pytest.mark.integration
def test_boot_without_job_is_a_boot_smoke(tmp_path: Path) -> None:
    profile = load_profile("arm64")
    initrd = tmp_path / "base-only"
    initrd.write_bytes(initramfs.build_base_initramfs(profile).read_bytes())
    res = subprocess.run(
        _qemu_argv("arm64", _kernel("arm64"), initrd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    console = res.stdout.decode(errors="replace")
    assert res.returncode == 0
    assert f"{guest_protocol.TEST_END} boot rc=0" in console, console[-2000:]
    assert guest_protocol.POWEROFF in console
