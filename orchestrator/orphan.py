"""Die with the parent: a `kto job` or `kto build` started by a driver stops when the
driver is gone, even after a SIGKILL that gave the driver no chance to stop it.

The drivers start each task in its own session (so a Ctrl-C on the terminal reaches only
the driver, which stops tasks in order); the price is that nothing kills a task whose
driver was SIGKILLed. A thread watches the parent pid; when the task is re-parented it
SIGTERMs its own process group (make and its compilers; a console session stops its QEMU on
SIGTERM and writes the job's record).
"""

from __future__ import annotations

import os
import signal
import threading
import time

from orchestrator import progress


def die_with_parent(interval: float = 1.0) -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                progress.say(f"the driver (pid {parent}) is gone: stopping this task")
                os.killpg(os.getpgrp(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="kto-die-with-parent", daemon=True).start()
