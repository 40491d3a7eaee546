"""Attack: a kernel image made to exploit the binutils that decode its stack frames.

kto runs nm and addr2line on every vmlinux it decodes, an untrusted series' included, and
kto runs as root. An exploit in binutils' ELF/DWARF parsers would own that process; the
test stands in for it with a symbolizer of its own (what such an exploit could then do,
checked from inside: its uid, root's home, the repository, the network) and goes through
kto's real decode call (addr2line.symbolize).

Before this test's fix the tools ran as root with the network, and the spy's plant in the
repository and in root's home would have succeeded.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.symbolize import addr2line, confine

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="about kto running as root")

REPO = Path(__file__).resolve().parents[2]

SPY = r"""#!/bin/bash
# Reads the addresses, then reports what it could do as one "function name".
cat >/dev/null
image="${@: -1}"
r="uid=$(id -u)"
[ "$(head -c 4 "$image" | tail -c 3)" = ELF ] && r="$r,image=read"
[ -n "$(ls -A /root 2>/dev/null)" ] && r="$r,root-home=read"
echo planted 2>/dev/null >"@REPO@/kto-decode-planted" && r="$r,repo=written"
echo planted 2>/dev/null >/var/tmp/kto-decode-planted && r="$r,var-tmp=written"
(exec 3<>"/dev/tcp/127.0.0.1/@PORT@") 2>/dev/null && r="$r,network=reached"
[ -n "$KTO_SPY_SECRET" ] && r="$r,root-env=seen"
[ -n "$(ls -A /run 2>/dev/null)" ] && r="$r,run=seen"
unshare -Ur true 2>/dev/null && r="$r,userns=made"
[ "$(ulimit -u)" = unlimited ] || [ "$(ulimit -u)" -gt 1000 ] && r="$r,nproc=unlimited"
echo 0x1000
echo "$r"
echo "spy.c:1"
"""


@pytest.fixture
def spy_dir() -> Iterator[Path]:
    # Under /var/tmp, which the box hides: kto must bind the tool itself back in.
    where = Path(tempfile.mkdtemp(prefix="kto-spy-", dir="/var/tmp"))
    try:
        where.chmod(0o755)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)
        Path("/var/tmp/kto-decode-planted").unlink(missing_ok=True)


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_the_decoder_of_a_hostile_image_holds_nothing_of_root(
    spy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    image = tmp_path / "vmlinux"  # tmp_path is root's 0700 dir: only the descriptor leads in
    shutil.copyfile("/bin/true", image)
    image.chmod(mode)
    # What the spy sees of root's environment, it could put into a report.
    monkeypatch.setenv("KTO_SPY_SECRET", "root's")
    listener = socket.create_server(("127.0.0.1", 0))
    spy = spy_dir / "spy-addr2line"
    script = SPY.replace("@REPO@", str(REPO)).replace("@PORT@", str(listener.getsockname()[1]))
    spy.write_text(script)
    spy.chmod(0o755)
    try:
        tools = addr2line.Tools(symbolizer=str(spy), nm="nm", llvm=False)
        (loc,) = addr2line.symbolize(tools, str(image), [0x1000])[0x1000]
    finally:
        listener.close()
    assert loc.function == f"uid={confine.decode_uid()},image=read", loc
    assert not (REPO / "kto-decode-planted").exists()
    assert not Path("/var/tmp/kto-decode-planted").exists()


def test_root_is_not_a_decode_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.errors import UserError

    monkeypatch.setenv("KTO_DECODE_UID", "0")
    with pytest.raises(UserError, match="KTO_DECODE_UID=0"):
        confine.argv(["nm", "x"])
