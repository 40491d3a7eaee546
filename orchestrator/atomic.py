"""Write files so a reader never sees half of one: temp file in the same dir, then rename.

A write that fails (a full or read-only file system, a quota) is an infrastructure error
naming the file, never a traceback: the old file, if any, is left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from orchestrator.errors import InfraError


def write_bytes(path: Path, data: bytes, durable: bool = True, head: Path | None = None) -> None:
    """durable=False skips the fsync: still atomic for readers, not across a power cut.

    head: a file whose bytes come before `data`, copied by shutil (sendfile on Linux), not
    read into memory (a boot's initrd is the cached base archive plus a small job archive)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_beside(path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        if head is not None:
            os.close(fd)
            try:
                shutil.copyfile(head, tmp)
            except OSError as exc:
                if exc.filename != str(head):
                    raise
                raise InfraError(f"cannot read {head}: {exc.strerror or exc}") from exc
            fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new file ".NAME.RANDOM" in path's directory, open for writing (what
    tempfile.mkstemp makes; the tempfile module costs every kto start ~1 ms of imports)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}")
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(path.parent))


def write_error(path: Path, exc: OSError) -> InfraError:
    """A failed write as kto reports it: which file, why, what to do (exit 3)."""
    why = exc.strerror or str(exc)
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free space on the file system of {path.parent} (df -h {path.parent})"
    elif exc.errno == errno.EROFS:
        hint = f"{path.parent} is on a read-only file system: set KTO_RESULTS / KTO_CACHE"
    elif exc.errno == errno.EACCES:
        hint = f"make {path.parent} writable, or set KTO_RESULTS / KTO_CACHE elsewhere"
    return InfraError(f"cannot write {path}: {why}", hint=hint)


def write_text(path: Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode(), durable)


def write_json(path: Path, obj: Any, durable: bool = True) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", durable)
