"""Progress output on stderr: phases with elapsed time, so long work never looks stuck."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def say(msg: str) -> None:
    """A progress line. Advisory: when stderr is gone (a pipe whose reader died, say), the
    work goes on without it, not with a traceback halfway through a matrix."""
    global _quiet
    if _quiet:
        return
    try:
        print(f"kto: {msg}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: stderr closed
        _quiet = True


def fmt_secs(secs: float) -> str:
    if secs < 60:
        return f"{secs:.1f}s"
    m, s = divmod(int(secs), 60)
    return f"{m}m{s:02d}s"


@contextmanager
def phase(
    name: str,
    timings: dict[str, float] | None = None,
    key: str | None = None,
    ticker: Callable[[], str] | None = None,
    every: float = 30.0,
) -> Iterator[None]:
    """Announce a phase, tick every `every` s (with `ticker()` detail), record its duration."""
    say(f"{name} ...")
    start = time.monotonic()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            detail = ticker() if ticker else ""
            say(f"  {name}: {fmt_secs(time.monotonic() - start)} elapsed {detail}".rstrip())

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        thread.join(1.0)  # gone at once: kto's quick exit needs no other thread alive
        elapsed = time.monotonic() - start
        if timings is not None:
            timings[key or name] = round(elapsed, 3)
        say(f"{name}: {'done' if ok else 'failed'} in {fmt_secs(elapsed)}")
