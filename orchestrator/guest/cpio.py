"""A newc cpio writer in pure Python: no root needed for /dev/console, deterministic bytes.

Fixed mtimes, owners and inode order, so equal inputs give equal archives (the initramfs
cache key is the content). The kernel unpacks concatenated archives in order, compressed or
not, as long as each starts 4-byte aligned.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One archive member. `name` has no leading slash; `mode` includes the file type bits."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def pad4(n: int) -> bytes:
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
    return head + pad4(len(head)) + entry.data + pad4(len(entry.data))


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
