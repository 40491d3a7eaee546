"""Inter-process file locks (flock), so two kto processes never share a tree or cache slot."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, what: str, quiet: bool = False, wait: bool = True) -> Iterator[None]:
    """Exclusive while the block runs. flock dies with its process, so a lock left by a
    killed kto is free at once. wait=False: a held lock is a UserError naming the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if not wait:
                from orchestrator.errors import UserError

                raise UserError(
                    f"{what} is in use by kto pid {holder}",
                    hint="wait for it to finish, or stop it first",
                ) from None
            if not quiet:
                print(f"kto: waiting for {what} (locked by pid {holder})", file=sys.stderr)
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not quiet:
                print(f"kto: got {what} after {time.monotonic() - start:.0f} s", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
