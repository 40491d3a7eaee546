"""Attack: a series whose Makefile opens sockets: TCP to a listener on the host's loopback
(what a local service, or a forward to the internet, would be) and a Unix socket under /run,
where root's daemons keep theirs. The sandbox has its own network namespace with no
interface up, and /run is private and empty: nothing connects.

Before issue 27 a patch directory was built without a sandbox: both connections were made."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration


def test_a_series_cannot_open_a_socket_to_the_host(tmp_path: Path) -> None:
    path = Path("/run") / f"kto-attack-{uuid.uuid4().hex}.sock"
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(4)
        tcp.settimeout(0.5)
        port = tcp.getsockname()[1]
        unix.bind(str(path))
        os.chmod(path, 0o777)
        unix.listen(4)
        unix.settimeout(0.5)
        connect_unix = (
            f"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{path}')\""
        )
        block = (
            "KTO_RESULT := $(shell "
            f"timeout 3 bash -c 'echo x > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo TCP; "
            f"timeout 3 {connect_unix} 2>/dev/null && echo UNIX; echo tried)\n"
        )
        try:
            res = hostile.build(hostile.series(tmp_path, block, "network"))
            got = hostile.said(res)
            for listener in (tcp, unix):
                with pytest.raises(TimeoutError):
                    listener.accept()  # nobody connected from the build
        finally:
            path.unlink(missing_ok=True)
    assert res.returncode == 5, res.stderr[-2000:]
    assert got == "tried", got
