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

from . import atomic, guest_protocol, progress
from .errors import ConfigError, InfraError, MissingDependency, UserError
from .locks import file_lock
from .paths import cache_dir, guest_tests_dir
from .proc import require_tool, run
from .profiles import ArchProfile, known_arches

# Bump when the archive layout changes, so old cached archives are not reused.
LAYOUT_VERSION = "1"
# Bump when the busybox cross-build steps change, so a cached busybox is rebuilt.
BUSYBOX_RECIPE = "2"
HELPER_CFLAGS = ("-static", "-O2", "-Wall")
TEST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED_TESTS = ("command", "boot")  # job names /init handles itself

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
# guest tests (guest-tests/<name>/test.yaml)


@dataclass(frozen=True)
class GuestTest:
    name: str
    description: str
    arches: tuple[str, ...]
    timeout_s: int
    dir: Path

    def files(self) -> list[Path]:
        """Files packed as they are (everything but hidden files and C sources), sorted."""
        return sorted(
            p
            for p in self.dir.rglob("*")
            if p.is_file()
            and p.suffix != ".c"
            and not any(part.startswith(".") for part in p.relative_to(self.dir).parts)
        )

    def helpers(self) -> list[Path]:
        """C sources compiled into static helpers (top level of the test folder)."""
        return sorted(self.dir.glob("*.c"))


def _load_test_file(path: Path) -> GuestTest:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read test description: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    name = data.get("name")
    if name != path.parent.name:
        raise ConfigError(f"{path}: `name` is {name!r}, must match the folder name")
    if not TEST_NAME_RE.match(name) or name in RESERVED_TESTS:
        raise ConfigError(f"{path}: `name` {name!r} is reserved or not a plain word")
    arches = data.get("arches")
    if not isinstance(arches, list) or not arches:
        raise ConfigError(f"{path}: `arches` must be a non-empty list")
    unknown = sorted(set(map(str, arches)) - set(known_arches()))
    if unknown:
        raise ConfigError(f"{path}: `arches` has unknown arch(es) {', '.join(unknown)}")
    timeout = data.get("timeout_s")
    if not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(f"{path}: `timeout_s` must be a positive integer (seconds)")
    extra = set(data) - {"name", "description", "arches", "timeout_s"}
    if extra:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")
    return GuestTest(name, str(data.get("description", "")), tuple(arches), timeout, path.parent)


def list_tests(arch: str | None = None) -> list[GuestTest]:
    """Every folder of guest-tests/ with a test.yaml (that supports `arch`, if given)."""
    tests = [_load_test_file(p) for p in sorted(guest_tests_dir().glob("*/test.yaml"))]
    return [t for t in tests if arch is None or arch in t.arches]


def load_test(name: str) -> GuestTest:
    path = guest_tests_dir() / name / "test.yaml"
    if not TEST_NAME_RE.match(name) or not path.is_file():
        known = ", ".join(t.name for t in list_tests()) or "none"
        raise UserError(f"unknown guest test {name!r}", hint=f"known tests: {known}")
    return _load_test_file(path)


def test_timeout(name: str) -> int | None:
    """The test's own time limit in seconds (test.yaml `timeout_s`); None for command jobs."""
    if name in RESERVED_TESTS:
        return None
    return load_test(name).timeout_s


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


def _tool(name: str, package: str) -> str:
    try:
        return require_tool(name)
    except MissingDependency as exc:
        raise MissingDependency(f"`{name}`", package) from exc


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
        run([_tool("dpkg-deb", "dpkg"), "-x", deb, tmp])
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
    _tool(f"{prefix}gcc", profile.build.cc_package)
    dpkg_source = _tool("dpkg-source", "dpkg-dev")
    make = _tool("make", "make")
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
        for name in ("BOOT_OK", "TEST_START", "TEST_END", "POWEROFF", "JOB_FILE")
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
    cc = _tool(profile.build.cc, profile.build.cc_package)
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
    profile: ArchProfile, busybox: bytes, init: bytes, tests: list[GuestTest], cc_version: str
) -> str:
    h = hashlib.sha256()

    def put(*parts: str | bytes) -> None:
        for p in parts:
            b = p.encode() if isinstance(p, str) else p
            h.update(b"%d:" % len(b) + b)

    put(LAYOUT_VERSION, profile.name, profile.qemu.initrd_compression, busybox, init)
    for t in tests:
        put("test", t.name)
        for f in t.files():
            put(str(f.relative_to(t.dir)), oct(_mode(f)), f.read_bytes())
        for c in t.helpers():
            put("helper", c.name, c.read_bytes(), cc_version, *HELPER_CFLAGS)
    return h.hexdigest()[:16]


def _archive(profile: ArchProfile, busybox: bytes, init: bytes, tests: list[GuestTest]) -> bytes:
    ar = Archive()
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


def build_base_initramfs(profile: ArchProfile, tests: Sequence[str] | None = None) -> Path:
    """The cached base archive for the arch: busybox, /init, the tests and their helpers."""
    chosen = _select_tests(profile.name, tests)
    busybox = busybox_for(profile).read_bytes()
    init = render_init()
    needs_cc = any(t.helpers() for t in chosen)
    cc_version = _compiler(profile)[1] if needs_cc else ""
    key = _cache_key(profile, busybox, init, chosen, cc_version)
    suffix = ".cpio.gz" if profile.qemu.initrd_compression == "gzip" else ".cpio"
    path = initramfs_dir() / f"{profile.name}-{key}{suffix}"
    if path.is_file():
        return path
    data = compress(_archive(profile, busybox, init, chosen), profile.qemu.initrd_compression)
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


def job_script(test: str, command: str | None = None, shell: bool = False, args: str = "") -> str:
    if not TEST_NAME_RE.match(test):
        raise UserError(f"guest test name {test!r}: use letters, digits, '.', '_' or '-'")
    values = {
        "KTO_TEST": test,
        "KTO_CMD": command or "",
        "KTO_SHELL": "1" if shell else "",
        "KTO_ARGS": args,
    }
    assert tuple(values) == guest_protocol.JOB_VARS
    lines = ["# kto job, sourced by /init (written by orchestrator/initramfs.py)"]
    lines += [f"{k}={sh_quote(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def job_archive(
    test: str, command: str | None = None, shell: bool = False, args: str = ""
) -> bytes:
    """A small uncompressed newc archive holding the job file, appended to the base."""
    ar = Archive()
    ar.file(guest_protocol.JOB_FILE, job_script(test, command, shell, args).encode())
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
