"""The guest side's initramfs: busybox + /init + guest-tests/, per arch, cached by content.

A base archive per (arch, inputs) is built once and cached; each boot appends a tiny
uncompressed cpio holding the job file (guest.protocol.JOB_FILE). The kernel unpacks
concatenated archives in order, compressed or not, as long as each starts 4-byte aligned.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import atomic, progress
from orchestrator.config.arch import ArchProfile
from orchestrator.digest import hexdigest
from orchestrator.errors import ConfigError, KtoError, UserError
from orchestrator.guest import protocol as guest_protocol
from orchestrator.guest.busybox import busybox_for, busybox_path
from orchestrator.guest.cpio import Archive, pad4
from orchestrator.guest.debsrc import check_static_elf
from orchestrator.paths import cache_dir, guest_tests_dir
from orchestrator.proc import require_tool, run, tool_version

if TYPE_CHECKING:  # test specs are read only when the memo misses (see _memo_key)
    from orchestrator.guest.testspec import GuestTest

# Bump when the archive layout changes, so old cached archives are not reused.
LAYOUT_VERSION = "2"
HELPER_CFLAGS = ("-static", "-O2", "-Wall")


def init_dir() -> Path:
    return guest_tests_dir() / "init"


def required_applets() -> list[str]:
    text = (init_dir() / "applets.txt").read_text()
    return [ln.split("#")[0].strip() for ln in text.splitlines() if ln.split("#")[0].strip()]


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
            "HOST_KEY_FILE",
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
    return cc, tool_version(profile.build.cc, profile.build.cc_package)


def helper_defines(profile: ArchProfile) -> tuple[str, ...]:
    """What every guest helper is compiled with besides HELPER_CFLAGS: the arch's kto name
    and `uname -m` as C strings, from the profile, so a helper needs no per-arch #if (and a
    new arch no code) to know them."""
    return (
        f'-DKTO_ARCH="{profile.name}"',
        f'-DKTO_UNAME_MACHINE="{profile.target.uname_machine}"',
    )


def compile_helper(cc: str, source: Path, out: Path, defines: Sequence[str] = ()) -> None:
    res = run([cc, *HELPER_CFLAGS, *defines, "-o", out, source], check=False)
    if res.returncode != 0:
        raise UserError(
            f"guest helper {source} does not compile with {Path(cc).name} "
            f"(exit {res.returncode}):\n{(res.stderr or res.stdout).rstrip()}",
            hint="fix the C source; helpers are built with " + " ".join(HELPER_CFLAGS),
        )


def _select_tests(arch: str, tests: Sequence[str] | None) -> list[GuestTest]:
    from orchestrator.guest.testspec import list_tests, load_test

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
    import hashlib  # OpenSSL's SHA-256 for the 2 MB of busybox (a memo miss only)

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
            put(*helper_defines(profile))  # the profile's uname_machine is in the binary
    return h.hexdigest()[:16]


def _archive(
    profile: ArchProfile, busybox: bytes, init: bytes, tests: list[GuestTest], sshd: bytes = b""
) -> bytes:
    import tempfile  # a memo miss only: not loaded by a boot that reuses the archive

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
                compile_helper(cc, c, out, helper_defines(profile))
                data = out.read_bytes()
                check_static_elf(data, profile.target.elf_machine, str(c))
                ar.file(f"{base}/{c.stem}", data, 0o755)
    return ar.to_bytes()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "none":
        return data
    if compression == "gzip":
        import gzip  # only when the base archive is built

        # mtime=0 keeps the bytes reproducible; the zero padding keeps an appended archive
        # 4-byte aligned, which the kernel's unpacker requires.
        gz = gzip.compress(data, compresslevel=9, mtime=0)
        return gz + pad4(len(gz))
    raise ConfigError(f"initrd_compression {compression!r}: expected gzip or none")


def initramfs_dir() -> Path:
    return cache_dir() / "initramfs"


def build_base_initramfs(
    profile: ArchProfile, tests: Sequence[str] | None = None, sshd: bool = False
) -> Path:
    """The cached base archive for the arch: busybox, /init, the tests and their helpers,
    and dropbear when the guest is to be reached over SSH (`sshd`)."""
    sshd_path = None
    if sshd:
        from orchestrator.guest.dropbear import dropbear_for

        sshd_path = dropbear_for(profile)
    memo_key = _memo_key(profile, tests, sshd_path)
    if (known := _memo_lookup(memo_key)) is not None:
        return known
    chosen = _select_tests(profile.name, tests)
    busybox = busybox_for(profile).read_bytes()
    init = render_init()
    needs_cc = any(t.helpers() for t in chosen)
    cc_version = _compiler(profile)[1] if needs_cc else ""
    sshd_bin = sshd_path.read_bytes() if sshd_path else b""
    key = _cache_key(profile, busybox, init, chosen, cc_version, sshd_bin)
    suffix = ".cpio.gz" if profile.qemu.initrd_compression == "gzip" else ".cpio"
    path = initramfs_dir() / f"{profile.name}-{key}{suffix}"
    known_before = path.is_file()
    if not known_before:
        data = compress(
            _archive(profile, busybox, init, chosen, sshd_bin), profile.qemu.initrd_compression
        )
        atomic.write_bytes(path, data)
        names = ", ".join(t.name for t in chosen) or "no tests"
        progress.say(f"initramfs {profile.name}: {path.name} ({len(data) // 1024} KiB; {names})")
    _memo_store(memo_key, path)
    if not known_before:
        _evict_unlisted()
    return path


# The content key above reads and hashes busybox (2 MB), every test file and helper source,
# and parses every test.yaml: ~15 ms of each boot, 5-10 % of kto's own share of a 2 s boot.
# The memo maps what those inputs look like on disk (path, size, mtime, mode) to the archive
# built from them, so a boot whose inputs did not change skips all of that.
MEMO_FILE = "memo.json"
MEMO_ENTRIES = 64


def _stat_line(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}:{st.st_mode:o}"


def _memo_key(profile: ArchProfile, tests: Sequence[str] | None, sshd: Path | None) -> str:
    root = guest_tests_dir()
    lines = [
        LAYOUT_VERSION,
        profile.name,
        profile.qemu.initrd_compression,
        repr(None if tests is None else list(tests)),
        " ".join(HELPER_CFLAGS),
        " ".join(helper_defines(profile)),  # a profile's uname_machine is in the helpers
        _stat_line(busybox_path(profile)),
        _stat_line(sshd) if sshd else "no sshd",
        # the compiler of the helpers: a new gcc gives new helper binaries
        _stat_line(Path(cc)) if (cc := shutil.which(profile.build.cc)) else "no cc",
        hexdigest(render_init()),  # /init also holds guest.protocol's values
    ]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        lines += (_stat_line(Path(dirpath) / f) for f in sorted(filenames))
    return hexdigest("\n".join(lines).encode())[:24]


def _memo_read() -> dict[str, str]:
    try:
        memo = json.loads((initramfs_dir() / MEMO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _memo_lookup(key: str) -> Path | None:
    name = _memo_read().get(key)
    if not isinstance(name, str) or "/" in name:
        return None
    path = initramfs_dir() / name
    return path if path.is_file() else None


def _memo_store(key: str, path: Path) -> None:
    memo = {k: v for k, v in _memo_read().items() if k != key}
    memo[key] = path.name
    keep = dict(list(memo.items())[-MEMO_ENTRIES:])  # insertion order: newest last
    with contextlib.suppress(KtoError):  # a memo that cannot be written is only slower
        atomic.write_json(initramfs_dir() / MEMO_FILE, keep, durable=False)


# An archive no memo entry names any more (its inputs changed 64 input states ago) is only
# found again if those exact inputs come back; after this grace it is removed when a new base
# archive is written. The grace covers a concurrent boot between its content-key lookup and
# its copy of the archive.
EVICT_GRACE_S = 600


def _evict_unlisted(now: float | None = None) -> list[Path]:
    """Remove base archives the memo no longer lists: the cache holds at most MEMO_ENTRIES
    archives (2-5 MB each) however often guest-tests/ or busybox change."""
    listed = set(_memo_read().values())
    now = time.time() if now is None else now
    removed = []
    for path in initramfs_dir().glob("*.cpio*"):
        if path.name in listed or path.name.startswith("."):  # "."-names: atomic temp files
            continue
        with contextlib.suppress(OSError):  # gone already: another kto evicted it
            if now - path.stat().st_mtime > EVICT_GRACE_S:
                path.unlink()
                removed.append(path)
    return removed


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
    if not guest_protocol.TEST_NAME_RE.match(test):
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
    lines = ["# kto job, sourced by /init (written by orchestrator/guest/initramfs.py)"]
    lines += [f"{k}={sh_quote(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def job_archive(
    test: str,
    *,
    authorized_key: str | None = None,
    host_key: bytes | None = None,
    **job: Any,
) -> bytes:
    """A small uncompressed newc archive holding the job file (job_script(test, **job)),
    appended to the base.

    host_key: dropbear's host key file for this boot (guest/ssh.py make_host_key)."""
    ar = Archive()
    ar.file(guest_protocol.JOB_FILE, job_script(test, **job).encode())
    if authorized_key:
        ar.file("root/.ssh/authorized_keys", authorized_key.encode() + b"\n", 0o600)
    if host_key:
        ar.file(guest_protocol.HOST_KEY_FILE, host_key, 0o600)
    return ar.to_bytes()


def initrd_for(profile: ArchProfile, base: Path, job: bytes, dest: Path) -> Path:
    """Write base + job to dest: one initrd the kernel unpacks as two archives."""
    try:
        with open(base, "rb") as fh:
            magic = fh.read(2)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise UserError(f"cannot read the base initramfs {base}: {exc}") from exc
    gzipped = magic == b"\x1f\x8b"
    if gzipped != (profile.qemu.initrd_compression == "gzip"):
        raise UserError(
            f"{base}: not a {profile.qemu.initrd_compression} base initramfs for {profile.name}",
            hint="use build_base_initramfs(profile) for this arch",
        )
    # the appended archive must start 4-byte aligned; per boot, rebuilt from the cache
    atomic.write_bytes(dest, pad4(size) + job, durable=False, head=base)
    return dest
