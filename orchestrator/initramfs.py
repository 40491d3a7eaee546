"""The guest side's initramfs: busybox + /init + guest-tests/, per arch, cached by content.

A base archive per (arch, inputs) is built once and cached; each boot appends a tiny
uncompressed cpio holding the job file (guest_protocol.JOB_FILE). The kernel unpacks
concatenated archives in order, compressed or not, as long as each starts 4-byte aligned.

The cpio writer is pure Python (newc format), so no root is needed for /dev/console, and
deterministic (fixed mtimes, owners, inode order), so equal inputs give equal bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import atomic, guest_protocol, guestsshd, progress
from .errors import ConfigError, InfraError, MissingDependency, UserError
from .locks import file_lock
from .paths import cache_dir, guest_tests_dir
from .proc import require_tool, run
from .profiles import ArchProfile
from .workloads import (  # the test description (test.yaml) is owned by workloads.py
    RESERVED_TESTS,
    TEST_NAME_RE,
    GuestTest,
    list_tests,
    load_test,
    test_timeout,
)

__all__ = ["RESERVED_TESTS", "GuestTest", "list_tests", "load_test", "test_timeout"]

# Bump when the archive layout changes, so old cached archives are not reused.
LAYOUT_VERSION = "2"
# Bump when the busybox cross-build steps change, so a cached busybox is rebuilt.
BUSYBOX_RECIPE = "2"
HELPER_CFLAGS = ("-static", "-O2", "-Wall")

# --------------------------------------------------------------------------------------------
# newc cpio writer


@dataclass(frozen=True)
class Entry:
    """One archive member. `name` has no leading slash; `mode` includes the file type bits."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _newc_member(ino: int, entry: Entry) -> bytes:
    name = entry.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        0,  # mtime: fixed, for reproducible bytes
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # check (only used by the crc format)
    )
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    head = header + name
    return head + _pad4(len(head)) + entry.data + _pad4(len(entry.data))


def newc(entries: Iterable[Entry]) -> bytes:
    """A complete newc archive (with trailer) of `entries`, in the given order."""
    parts = [_newc_member(ino, e) for ino, e in enumerate(entries, start=1)]
    parts.append(_newc_member(0, Entry("TRAILER!!!", 0)))
    return b"".join(parts)


class Archive:
    """Collects members; parents are added before children (the kernel needs them first)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self._entries:
                self._entries[parent] = Entry(parent, stat.S_IFDIR | 0o755)

    def _add(self, entry: Entry) -> None:
        if entry.name.startswith("/") or not entry.name:
            raise ValueError(f"cpio member names are relative: {entry.name!r}")
        self._parents(entry.name)
        self._entries[entry.name] = entry

    def dir(self, name: str, perm: int = 0o755) -> None:
        self._add(Entry(name, stat.S_IFDIR | perm))

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._add(Entry(name, stat.S_IFREG | perm, data))

    def symlink(self, name: str, target: str) -> None:
        self._add(Entry(name, stat.S_IFLNK | 0o777, target.encode()))

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._add(Entry(name, stat.S_IFCHR | perm, rdev=(major, minor)))

    def to_bytes(self) -> bytes:
        return newc(self._entries.values())


# --------------------------------------------------------------------------------------------
# busybox per arch (guest-tests/init/busybox.yaml)


def init_dir() -> Path:
    return guest_tests_dir() / "init"


@cache
def _busybox_sources() -> dict[str, dict[str, Any]]:
    path = init_dir() / "busybox.yaml"
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of arch -> busybox source")
    return data


def required_applets() -> list[str]:
    text = (init_dir() / "applets.txt").read_text()
    return [ln.split("#")[0].strip() for ln in text.splitlines() if ln.split("#")[0].strip()]


def check_static_elf(data: bytes, machine: int, what: str) -> None:
    """Raise unless `data` is a static ELF executable for e_machine `machine`."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise InfraError(f"{what}: not a 64-bit ELF file")
    endian = "<" if data[5] == 1 else ">"
    (e_machine,) = struct.unpack_from(endian + "H", data, 18)
    if e_machine != machine:
        raise InfraError(f"{what}: ELF machine {e_machine}, expected {machine} (wrong arch)")
    (phoff,) = struct.unpack_from(endian + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP: dynamically linked, would not run in the initramfs
            raise InfraError(f"{what}: dynamically linked, needs a static binary")


def busybox_for(profile: ArchProfile) -> Path:
    """Path of a static busybox for the arch (fetched/unpacked/built once, then cached)."""
    spec = _busybox_sources().get(profile.name)
    if spec is None:
        raise ConfigError(f"{init_dir() / 'busybox.yaml'}: no busybox source for {profile.name}")
    source = spec.get("source")
    if source == "host":
        path = Path(spec["path"])
        if not path.is_file():
            raise MissingDependency(f"{path} (static busybox)", spec["package"])
    elif source == "deb":
        path = _busybox_from_deb(profile.name, spec)
    elif source == "build":
        path = _busybox_built(profile, spec)
    else:
        raise ConfigError(f"busybox.yaml: {profile.name}.source must be host, deb or build")
    check_static_elf(path.read_bytes(), int(spec["elf_machine"]), str(path))
    return path


def _newest(paths: Iterable[Path]) -> Path | None:
    found = sorted(paths)
    return found[-1] if found else None


def _busybox_from_deb(arch: str, spec: dict[str, Any]) -> Path:
    deb = _newest((cache_dir() / "debs").glob(spec["deb"]))
    if deb is None:
        raise MissingDependency(f"{cache_dir() / 'debs' / spec['deb']}", spec["package"])
    out = cache_dir() / "busybox" / arch / _slug(deb.name) / "busybox"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(prefix="kto-deb-") as tmp:
        run([require_tool("dpkg-deb", "dpkg"), "-x", deb, tmp])
        member = Path(tmp) / spec["member"]
        if not member.is_file():
            raise InfraError(f"{deb}: has no {spec['member']}")
        atomic.write_bytes(out, member.read_bytes())
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def _busybox_built(profile: ArchProfile, spec: dict[str, Any]) -> Path:
    """Cross-build busybox from Debian's source package once per (source, recipe)."""
    dsc = _newest((cache_dir() / "busybox" / "src").glob(spec["dsc"]))
    if dsc is None:
        raise MissingDependency(f"busybox source for {profile.name}", spec["package"])
    recipe = json.dumps([BUSYBOX_RECIPE, spec], sort_keys=True).encode()
    key = hashlib.sha256(dsc.read_bytes() + recipe).hexdigest()[:12]
    out = cache_dir() / "busybox" / profile.name / key / "busybox"
    if out.is_file():
        return out
    lock = cache_dir() / "locks" / f"busybox-{profile.name}.lock"
    with file_lock(lock, f"the {profile.name} busybox build"):
        if not out.is_file():  # another kto process may have built it meanwhile
            _cross_build_busybox(profile, spec, dsc, out)
    return out


def _dsc_version(dsc: Path) -> str:
    for line in dsc.read_text(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return dsc.stem


def _cross_build_busybox(profile: ArchProfile, spec: dict[str, Any], dsc: Path, out: Path) -> None:
    prefix = spec["cross_compile"]
    require_tool(f"{prefix}gcc", profile.build.cc_package)
    dpkg_source = require_tool("dpkg-source", "dpkg-dev")
    make = require_tool("make")
    jobs = str(os.cpu_count() or 1)
    timings: dict[str, float] = {}
    # A fixed build path (we hold the lock) and no timestamps, as in Debian's own build: the
    # same source gives the same binary, so the initramfs cache key is stable across hosts.
    tmp = out.parent.parent / "build"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {
        "KCONFIG_NOTIMESTAMP": "1",
        "BB_EXTRA_VERSION": f"Debian {_dsc_version(dsc)}, kto cross-build",
    }
    try:
        src = tmp / "src"
        name = f"busybox for {profile.name}: cross-build from {dsc.name} (once, cached)"
        with progress.phase(name, timings, key="total"):
            run([dpkg_source, "-x", dsc, src])
            # Debian's static flavour config, exactly as busybox-static on other arches.
            config = "".join((src / part).read_text() for part in spec["config"])
            (src / ".config").write_text(config)
            # oldconfig asks about nothing new for Debian's own config; answer defaults anyway.
            run([make, "-C", src, "oldconfig"], input="\n" * 5000, env=env)
            run(
                [make, "-C", src, f"-j{jobs}", f"CROSS_COMPILE={prefix}", "busybox"],
                env=env,
                timeout=3600,
            )
        data = (src / "busybox").read_bytes()
        check_static_elf(data, int(spec["elf_machine"]), f"{src / 'busybox'}")
        atomic.write_bytes(out, data)
        record = {"dsc": dsc.name, "recipe": spec, "env": env, "seconds": timings["total"]}
        record["built"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic.write_json(out.parent / "build.json", record)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# /init, helpers, base archive


def render_init() -> bytes:
    """guest-tests/init/init with the @@NAME@@ placeholders set from guest_protocol."""
    text = (init_dir() / "init").read_text()
    values = {
        name: getattr(guest_protocol, name)
        for name in (
            "BOOT_OK",
            "TEST_START",
            "TEST_END",
            "POWEROFF",
            "JOB_FILE",
            "STATUS_PORT",
            "HOLD_RELEASE",
            "NET_READY",
        )
    }
    for name, value in values.items():
        if "'" in value:
            raise ConfigError(f"guest_protocol.{name} must not contain a single quote")
        text = text.replace(f"@@{name}@@", value)
    left = re.findall(r"@@\w+@@", text)
    if left:
        raise ConfigError(f"{init_dir() / 'init'}: unknown placeholder(s) {', '.join(left)}")
    return text.encode()


def _compiler(profile: ArchProfile) -> tuple[str, str]:
    """(path, version line) of the arch's gcc; MissingDependency names its package."""
    cc = require_tool(profile.build.cc, profile.build.cc_package)
    version = run([cc, "--version"]).stdout.splitlines()[0].strip()
    return cc, version


def compile_helper(cc: str, source: Path, out: Path) -> None:
    res = run([cc, *HELPER_CFLAGS, "-o", out, source], check=False)
    if res.returncode != 0:
        raise UserError(
            f"guest helper {source} does not compile with {Path(cc).name} "
            f"(exit {res.returncode}):\n{(res.stderr or res.stdout).rstrip()}",
            hint="fix the C source; helpers are built with " + " ".join(HELPER_CFLAGS),
        )


def _select_tests(arch: str, tests: Sequence[str] | None) -> list[GuestTest]:
    if tests is None:
        return list_tests(arch)
    chosen = [load_test(name) for name in tests]
    for t in chosen:
        if arch not in t.arches:
            raise UserError(
                f"guest test {t.name!r} does not support {arch}",
                hint=f"its test.yaml lists arches: {', '.join(t.arches)}",
            )
    return chosen


def _mode(path: Path) -> int:
    return 0o755 if os.access(path, os.X_OK) else 0o644


def _cache_key(
    profile: ArchProfile,
    busybox: bytes,
    init: bytes,
    tests: list[GuestTest],
    cc_version: str,
    sshd: bytes = b"",
) -> str:
    h = hashlib.sha256()

    def put(*parts: str | bytes) -> None:
        for p in parts:
            b = p.encode() if isinstance(p, str) else p
            h.update(b"%d:" % len(b) + b)

    put(LAYOUT_VERSION, profile.name, profile.qemu.initrd_compression, busybox, init, sshd)
    for t in tests:
        put("test", t.name)
        for f in t.files():
            put(str(f.relative_to(t.dir)), oct(_mode(f)), f.read_bytes())
        for c in t.helpers():
            put("helper", c.name, c.read_bytes(), cc_version, *HELPER_CFLAGS)
    return h.hexdigest()[:16]


def _archive(
    profile: ArchProfile, busybox: bytes, init: bytes, tests: list[GuestTest], sshd: bytes = b""
) -> bytes:
    ar = Archive()
    # root for dropbear (static glibc reads these files directly, no NSS modules needed)
    ar.dir("etc")
    ar.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    ar.file("etc/group", b"root:x:0:\n")
    ar.dir("root", 0o700)
    ar.dir("root/.ssh", 0o700)
    ar.dir("etc/dropbear", 0o700)
    if sshd:
        ar.file("usr/sbin/dropbear", sshd, 0o755)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "root", "kto/tests"):
        ar.dir(d)
    ar.dir("tmp", 0o1777)
    # The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    ar.chardev("dev/console", 5, 1, 0o600)
    ar.chardev("dev/null", 1, 3, 0o666)
    ar.file("bin/busybox", busybox, 0o755)
    ar.symlink("bin/sh", "busybox")
    ar.file("init", init, 0o755)
    cc: str | None = None
    with tempfile.TemporaryDirectory(prefix="kto-helpers-") as tmp:
        for t in tests:
            base = f"kto/tests/{t.name}"
            ar.dir(base)
            for f in t.files():
                ar.file(f"{base}/{f.relative_to(t.dir).as_posix()}", f.read_bytes(), _mode(f))
            for c in t.helpers():
                cc = cc or _compiler(profile)[0]
                out = Path(tmp) / f"{t.name}-{c.stem}"
                compile_helper(cc, c, out)
                data = out.read_bytes()
                check_static_elf(data, int(_busybox_sources()[profile.name]["elf_machine"]), str(c))
                ar.file(f"{base}/{c.stem}", data, 0o755)
    return ar.to_bytes()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "none":
        return data
    if compression == "gzip":
        # mtime=0 keeps the bytes reproducible; the zero padding keeps an appended archive
        # 4-byte aligned, which the kernel's unpacker requires.
        gz = gzip.compress(data, compresslevel=9, mtime=0)
        return gz + _pad4(len(gz))
    raise ConfigError(f"initrd_compression {compression!r}: expected gzip or none")


def initramfs_dir() -> Path:
    return cache_dir() / "initramfs"


def build_base_initramfs(
    profile: ArchProfile, tests: Sequence[str] | None = None, sshd: bool = False
) -> Path:
    """The cached base archive for the arch: busybox, /init, the tests and their helpers,
    and dropbear when the guest is to be reached over SSH (`sshd`)."""
    chosen = _select_tests(profile.name, tests)
    busybox = busybox_for(profile).read_bytes()
    init = render_init()
    needs_cc = any(t.helpers() for t in chosen)
    cc_version = _compiler(profile)[1] if needs_cc else ""
    sshd_bin = guestsshd.dropbear_for(profile).read_bytes() if sshd else b""
    key = _cache_key(profile, busybox, init, chosen, cc_version, sshd_bin)
    suffix = ".cpio.gz" if profile.qemu.initrd_compression == "gzip" else ".cpio"
    path = initramfs_dir() / f"{profile.name}-{key}{suffix}"
    if path.is_file():
        return path
    data = compress(
        _archive(profile, busybox, init, chosen, sshd_bin), profile.qemu.initrd_compression
    )
    atomic.write_bytes(path, data)
    names = ", ".join(t.name for t in chosen) or "no tests"
    progress.say(f"initramfs {profile.name}: {path.name} ({len(data) // 1024} KiB; {names})")
    return path


# --------------------------------------------------------------------------------------------
# per-boot job


def sh_quote(value: str) -> str:
    """Always single-quoted (unlike shlex.quote), so the job file reads uniformly."""
    if "\0" in value:
        raise UserError("a guest command or argument cannot contain a NUL byte")
    return "'" + value.replace("'", "'\\''") + "'"


def job_script(
    test: str,
    command: str | None = None,
    shell: bool = False,
    args: str = "",
    net: bool = False,
    hold: int = 0,
) -> str:
    if not TEST_NAME_RE.match(test):
        raise UserError(f"guest test name {test!r}: use letters, digits, '.', '_' or '-'")
    values = {
        "KTO_TEST": test,
        "KTO_CMD": command or "",
        "KTO_SHELL": "1" if shell else "",
        "KTO_ARGS": args,
        "KTO_NET": "1" if net else "",
        "KTO_HOLD": str(hold) if hold else "",
    }
    assert tuple(values) == guest_protocol.JOB_VARS
    lines = ["# kto job, sourced by /init (written by orchestrator/initramfs.py)"]
    lines += [f"{k}={sh_quote(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def job_archive(
    test: str,
    command: str | None = None,
    shell: bool = False,
    args: str = "",
    net: bool = False,
    hold: int = 0,
    authorized_key: str | None = None,
) -> bytes:
    """A small uncompressed newc archive holding the job file, appended to the base."""
    ar = Archive()
    ar.file(guest_protocol.JOB_FILE, job_script(test, command, shell, args, net, hold).encode())
    if authorized_key:
        ar.file("root/.ssh/authorized_keys", authorized_key.encode() + b"\n", 0o600)
    return ar.to_bytes()


def initrd_for(profile: ArchProfile, base: Path, job: bytes, dest: Path) -> Path:
    """Write base + job to dest: one initrd the kernel unpacks as two archives."""
    try:
        data = base.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the base initramfs {base}: {exc}") from exc
    gzipped = data[:2] == b"\x1f\x8b"
    if gzipped != (profile.qemu.initrd_compression == "gzip"):
        raise UserError(
            f"{base}: not a {profile.qemu.initrd_compression} base initramfs for {profile.name}",
            hint="use build_base_initramfs(profile) for this arch",
        )
    if len(data) % 4:  # the appended archive must start 4-byte aligned
        data += _pad4(len(data))
    atomic.write_bytes(dest, data + job)
    return dest
