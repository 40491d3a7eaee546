"""A QEMU guest on a pty: every console byte to disk, lines to the parser, timeouts, hangs.

The guest is spawned with pexpect in its own session (process group). Raw bytes go to
console.log untouched; console.timing.tsv maps each line's byte offset to host time. When
the guest stops making progress, SysRq (via a serial BREAK: Ctrl-A b on QEMU's stdio mux)
asks the kernel for blocked tasks, all tasks and all CPUs' stacks before the guest is killed,
so a hang ends with evidence.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import signal
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pexpect

from orchestrator import progress
from orchestrator.errors import InfraError
from orchestrator.guest import protocol as gp
from orchestrator.records.layout import CONSOLE, CONSOLE_TIMING
from orchestrator.records.outcome import ConsoleOutcome, Timeouts

SYSRQ_KEYS = "wtl"  # blocked tasks, all tasks, all CPUs' backtraces
SYSRQ_ANSWER = b"sysrq: "
REBOOT_LINES = ("reboot: Restarting system", "Rebooting in ")
DEFAULT_MAX_MB = 256  # console.log cap (KTO_CONSOLE_MAX_MB): a flooding guest fills no disk
TAIL_KEPT = 4 << 20
READ_SIZE = 65536
# A serial console arrives a few bytes per write: waiting this long once the pty is readable
# lets a line or more gather, so a boot costs kto a few hundred wake-ups instead of thousands
# (CPU the guest's vCPUs want). Lines are timed at most this much late; EOF is not delayed.
# A read of BACKLOG bytes or more (a pty hands out ~4 KiB at most) means the console is
# flooding: no wait then, kto reads as fast as the guest writes.
COALESCE_S = 0.01
BACKLOG = 1024


QEMU_UID = 64322  # KTO_QEMU_UID: QEMU's own uid when kto is root (not the build sandbox's)
_FD_BASE = 100  # where the job's files are in QEMU's fd table (/proc/self/fd/N in its argv)


def qemu_uid() -> int | None:
    if os.geteuid() != 0:
        return None
    try:
        return int(os.environ.get("KTO_QEMU_UID", QEMU_UID))
    except ValueError:
        return QEMU_UID


def unprivileged(
    argv: list[str], job_dir: Path | None = None
) -> tuple[list[str], Callable[[], None] | None]:
    """When kto runs as root, QEMU does not: it runs as QEMU_UID with no capabilities and no
    groups (but /dev/kvm's, when it boots with KVM and the group may use it), and sees the
    job's files only as descriptors kto opened for it: the kernel and initrd read-only, the
    status channel's file (made QEMU's) for writing; nothing else of kto's cache or home.
    The argv kto records (the reproducer) keeps the paths."""
    uid = qemu_uid()
    # Only QEMU itself: a test's stand-in (tests/fakeqemu) reads files of the test's own.
    if uid is None or not Path(argv[0]).name.startswith("qemu-system-"):
        return argv, None
    out = list(argv)
    reads: list[tuple[int, str]] = []
    writes: list[tuple[int, str]] = []
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-kernel", "-initrd"):
            fd = _FD_BASE + len(reads) + len(writes)
            reads.append((fd, argv[i + 1]))
            out[i + 1] = f"/proc/self/fd/{fd}"
        elif arg == "-chardev" and argv[i + 1].startswith("file,"):
            opts = argv[i + 1].split(",")
            for j, opt in enumerate(opts):
                if opt.startswith("path="):
                    fd = _FD_BASE + len(reads) + len(writes)
                    path = opt.removeprefix("path=")
                    Path(path).touch()
                    os.chown(path, uid, uid)  # QEMU reopens it through /proc/self/fd
                    writes.append((fd, path))
                    opts[j] = f"path=/proc/self/fd/{fd}"
            out[i + 1] = ",".join(opts)
    if job_dir is not None:  # `ps` still tells which job a QEMU is (its paths are fds now)
        out[1:1] = ["-name", "guest=kto:" + str(job_dir).replace(",", ",,")]
    groups = []
    if "kvm" in argv and os.path.exists("/dev/kvm"):
        st = os.stat("/dev/kvm")
        if st.st_mode & 0o060 == 0o060:
            groups.append(st.st_gid)

    def drop() -> None:  # in the child, before exec: still root until the last three calls
        for fd, path in reads:
            os.dup2(os.open(path, os.O_RDONLY), fd, inheritable=True)
        for fd, path in writes:
            os.dup2(os.open(path, os.O_WRONLY | os.O_APPEND), fd, inheritable=True)
        os.setgroups(groups)
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return out, drop


class Interrupted(InfraError):
    """SIGINT/SIGTERM reached kto while a guest was running: the job is an ERROR (exit 3)."""


class ConsoleSession:
    def __init__(
        self,
        argv: list[str],
        outdir: Path,
        timeouts: Timeouts,
        on_line: Callable[[str], None] | None = None,
        echo: bool = False,
        on_test_end: Callable[[int], bool] | None = None,
        should_stop: Callable[[float, float], str | None] | None = None,
        on_spawn: Callable[[], object] | None = None,
    ) -> None:
        self.argv = argv
        self.outdir = outdir
        self.timeouts = timeouts
        self.on_line = on_line
        self.on_test_end = on_test_end  # host work while the guest waits (SSH), before poweroff
        # (now, last output) -> why the verdict is known and the guest can go (job/fatal.py)
        self.should_stop = should_stop
        # Called once QEMU runs, before its console is read: set-up the console does not
        # wait for overlaps QEMU's own start-up.
        self.on_spawn = on_spawn
        self.echo = echo
        self.outcome = ConsoleOutcome()
        self._partial = b""
        self._offset = 0
        self._start = 0.0
        self._last_output = 0.0
        self._phase_deadline = 0.0
        self._last_check = 0.0
        # console.log keeps the first max_log bytes and the last TAIL_KEPT of the rest.
        self.max_log = int(float(os.environ.get("KTO_CONSOLE_MAX_MB", DEFAULT_MAX_MB)) * (1 << 20))
        self._tail = bytearray()
        self._log: BinaryIO | None = None
        self._timing: Any = None
        self._child: pexpect.spawn | None = None
        self._poll: select.poll | None = None
        self._backlog = False  # the last read was BACKLOG bytes or more: more is waiting
        self._stop: str | None = None  # set when kto must stop the guest without a hang
        self._interrupted = False
        self._holding = False  # QEMU is starting: a stop signal waits (_spawn)
        self._held: int | None = None

    # -- process ---------------------------------------------------------------------------
    def _spawn(self) -> None:
        """Start QEMU as self._child. A SIGINT/SIGTERM waits until it is held there: one
        raised between pexpect's fork and the assignment would leave a QEMU kto cannot stop.
        (A flag, not a signal mask: another thread of kto's would take a masked signal.)"""
        argv, preexec = unprivileged(self.argv, self.outdir)
        self._held = None
        self._holding = True
        try:
            child = pexpect.spawn(
                argv[0],
                argv[1:],
                echo=False,
                timeout=None,
                dimensions=(50, 250),
                preexec_fn=preexec,
            )
            self._child = child
            tty.setraw(child.child_fd)  # no \n -> \r\n games: console.log gets QEMU's bytes
            # pexpect sleeps 0.1 s twice in close() by default; QEMU has exited by then.
            child.delayafterclose = child.ptyproc.delayafterclose = 0.0
            child.delayafterterminate = child.ptyproc.delayafterterminate = 0.0
        finally:
            self._holding = False
        if self._held is not None:
            self._on_signal(self._held)

    def _on_signal(self, signum: int, _frame: object = None) -> None:
        if self._holding:
            self._held = signum
            return
        if self._interrupted:
            return  # a second signal while the first one stops QEMU: that goes on
        self._interrupted = True
        why = f"interrupted by {signal.Signals(signum).name}"
        # Said here, not where it is caught: the signal can land anywhere in the session
        # (while QEMU starts, while it is stopped), and a job that does not say it was
        # stopped is kept by `kto matrix --resume` as a finished run.
        self.outcome.killed = why
        raise Interrupted(why, hint="the guest was stopped; its console.log and job.json are kept")

    def _kill(self, grace: float = 0.0) -> None:
        """Stop QEMU: after `grace` s of waiting for it to exit on its own, SIGTERM, SIGKILL."""
        child = self._child
        if child is None:
            return
        deadline = time.monotonic() + grace
        while child.isalive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not child.isalive():
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 3
        while child.isalive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if child.isalive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            # A big guest takes a moment to die even after SIGKILL; pexpect's close() would
            # give up on it and leave a zombie with no exit status.
            deadline = time.monotonic() + 5
            while child.isalive() and time.monotonic() < deadline:
                time.sleep(0.01)

    def _read(self, timeout: float) -> bytes | None:
        """The console bytes that came within `timeout` s: b"" if none did, None at EOF.

        poll + os.read on the pty, COALESCE_S after it became readable (pexpect's
        read_nonblocking costs several times more per call: two selects, a waitpid, a
        decoder). EOF is what pexpect calls EOF: the pty closed (EIO on Linux), or nothing to
        read and QEMU gone."""
        assert self._child is not None
        fd = self._child.child_fd
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
        events = self._poll.poll(math.ceil(timeout * 1000))
        if not events:
            return b"" if self._child.isalive() else None
        if not self._backlog and not events[0][1] & select.POLLHUP:  # HUP: QEMU is gone
            time.sleep(COALESCE_S)
        data = b""
        try:
            data = os.read(fd, READ_SIZE)
            # A flood: what else is there already, up to READ_SIZE (one chunk for the
            # console.log and its tail, not one per pty buffer).
            while BACKLOG <= len(data) < READ_SIZE and self._poll.poll(0):
                more = os.read(fd, READ_SIZE - len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            if exc.errno == errno.EIO:
                return data or None
            raise
        self._backlog = len(data) >= BACKLOG
        return data or None

    # -- console bytes -----------------------------------------------------------------------
    def _consume(self, data: bytes) -> None:
        assert self._log is not None
        now = time.monotonic()
        self._last_output = now
        if self.outcome.bytes + len(data) <= self.max_log:
            self._log.write(data)
        else:  # a flooding guest: bounded disk, every line still goes to the parser
            keep = max(0, self.max_log - self.outcome.bytes)
            self._log.write(data[:keep])
            # Trimmed in bulk: cutting to TAIL_KEPT at every read copies 4 MiB per read,
            # which in a flood of small reads took the CPU QEMU needed.
            self._tail += data[keep:]
            if len(self._tail) > 2 * TAIL_KEPT:
                del self._tail[:-TAIL_KEPT]
            self.outcome.dropped_bytes += len(data) - keep
        self.outcome.bytes += len(data)
        if self.echo:
            os.write(2, data)
        self._split(data, now)

    def _split(self, data: bytes, now: float) -> None:
        """Complete lines of the console go to the timing index and to `_line`."""
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        for raw in lines:
            if self._offset < self.max_log:
                self._timing.write(f"{now - self._start:.3f}\t{self._offset}\n")
            self._offset += len(raw) + 1
            self._line(raw.decode("utf-8", errors="replace").rstrip("\r"), now)

    def _line(self, line: str, now: float) -> None:
        o = self.outcome
        o.lines += 1
        o.last_lines = [*o.last_lines[-19:], line]
        if self.on_line:
            self.on_line(line)
        if gp.MARKER not in line:
            if SYSRQ_ANSWER.decode() in line and o.sysrq_sent:
                o.sysrq_answered = True
            if any(r in line for r in REBOOT_LINES):
                o.rebooted = True
            return
        if gp.BOOT_OK in line and not o.boot_ok:
            o.boot_ok = True
            o.boot_seconds = round(now - self._start, 3)
            self._phase_deadline = now + self.timeouts.test
        elif m := gp.TEST_START_RE.search(line):
            o.test_started = True
            self._test_start = now
            self._phase_deadline = now + self.timeouts.test
            progress.say(f"guest: test {m.group(1)} started")
        elif m := gp.TEST_END_RE.search(line):
            o.test_rc = int(m.group(2))
            o.test_seconds = round(now - getattr(self, "_test_start", now), 3)
            if self.on_test_end:
                if not self.on_test_end(o.test_rc):
                    self._stop = "the host's work after the test failed"
                now = self._last_output = time.monotonic()
            self._phase_deadline = now + self.timeouts.poweroff
        elif gp.POWEROFF in line:
            o.poweroff_marker = True

    # -- hang handling -----------------------------------------------------------------------
    def _drain(self, seconds: float, quiet: float | None = None) -> None:
        """Read the console for `seconds` at most, or until it was silent for `quiet`."""
        assert self._child is not None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data = self._read(0.2)
            if data is None:
                return
            if not data:
                if quiet is not None and time.monotonic() - self._last_output >= quiet:
                    return
                continue
            self._consume(data)

    def _capture_evidence(
        self, per_key: float = 4.0, quiet: float = 1.0, last_quiet: float = 2.0
    ) -> None:
        """Ask the kernel for stacks (SysRq over a serial BREAK) before the guest is killed:
        `per_key` s at most for each answer, less once the console was `quiet` that long.
        A dump streams without pauses (no gap over 50 ms inside a 460-line Show State under
        TCG): waiting out 4 s per key cost a stuck guest 12 s. The next key's answer queues
        behind an unfinished one, so only the last key, after which QEMU is stopped, waits
        `last_quiet`."""
        assert self._child is not None
        self.outcome.sysrq_sent = True
        for i, key in enumerate(SYSRQ_KEYS):
            if not self._child.isalive():
                return
            self._child.send(b"\x01b")  # QEMU mux: send BREAK on the serial line
            time.sleep(0.2)
            self._child.send(key.encode())
            self._last_output = time.monotonic()  # the answer's silence counts from here
            self._drain(per_key, last_quiet if i == len(SYSRQ_KEYS) - 1 else quiet)

    def _check_timeouts(self, now: float) -> str | None:
        o = self.outcome
        t = self.timeouts
        if now - self._last_output > t.silence:
            return f"no console output for {t.silence:.0f} s"
        if not o.boot_ok and now - self._start > t.boot:
            return f"userspace not reached within {t.boot:.0f} s (boot timeout)"
        if o.boot_ok and now > self._phase_deadline:
            if o.test_rc is not None:
                return f"guest did not power off within {t.poweroff:.0f} s after the test"
            return f"test did not finish within {t.test:.0f} s (test timeout)"
        return None

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> ConsoleOutcome:
        self.outdir.mkdir(parents=True, exist_ok=True)
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in old:
            signal.signal(s, self._on_signal)
        self._start = self._last_output = time.monotonic()
        try:
            with (
                open(self.outdir / CONSOLE, "wb") as log,
                open(self.outdir / CONSOLE_TIMING, "w") as timing,
            ):
                self._log, self._timing = log, timing
                timing.write("seconds\tbyte_offset\n")
                eof = False
                try:
                    self._spawn()
                    if self.on_spawn:
                        self.on_spawn()
                    eof = self._loop()
                finally:
                    # At EOF QEMU is exiting by itself: give it time, so a clean power-off
                    # is not recorded as "killed by SIGTERM".
                    self._kill(grace=10.0 if eof else 0.0)
                    if self._partial:  # an unterminated last line is a line too
                        self._split(b"\n", time.monotonic())
                    if self.outcome.dropped_bytes:
                        del self._tail[:-TAIL_KEPT]
                        dropped = self.outcome.dropped_bytes - len(self._tail)
                        log.write(
                            f"\n[kto: console.log capped at {self.max_log} bytes: {dropped} "
                            f"bytes not kept; the last {len(self._tail)} follow]\n".encode()
                        )
                        log.write(self._tail)
                    self._finish()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return self.outcome

    def _loop(self) -> bool:
        """Read until EOF (True) or until kto stops a stuck guest (False)."""
        assert self._child is not None
        while True:
            data = self._read(0.5)
            if data is None:
                return True
            now = time.monotonic()
            if data:
                self._consume(data)
                if self._stop:
                    self.outcome.stopped = self._stop
                    return False
                if now - self._last_check < 0.25:
                    continue  # a console that never pauses is still checked 4 times a second
            self._last_check = now
            if reason := self._check_timeouts(now):
                progress.say(
                    f"guest: {reason}; asking the kernel for stacks (SysRq "
                    f"{', '.join(SYSRQ_KEYS)}) before stopping it"
                )
                self._capture_evidence()
                self.outcome.killed = reason
                return False
            if self.should_stop and (why := self.should_stop(now, self._last_output)):
                progress.say(f"guest: {why}; SysRq {', '.join(SYSRQ_KEYS)}, then stopping it")
                self._capture_evidence(per_key=2.0, quiet=0.7)
                self.outcome.ended_early = why
                return False

    def _finish(self) -> None:
        child = self._child
        if child is None:
            return
        with contextlib.suppress(pexpect.ExceptionPexpect):
            child.close(force=True)
        self.outcome.qemu_exit = child.exitstatus
        self.outcome.qemu_signal = child.signalstatus
        self.outcome.seconds = round(time.monotonic() - self._start, 3)
