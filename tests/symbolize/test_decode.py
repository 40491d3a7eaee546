"""Decoding real stacks: a tiny -g -O2 program built for every kto arch with its cross gcc,
its call sites found in the toolchain's own disassembly, written out as that arch's kernel
prints a trace, and decoded by symbolize_findings to file:line (with the inlined frame)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.config.arch import load_profile
from orchestrator.symbolize import addr2line, decode
from orchestrator.symbolize.decode import NO_DEBUG_INFO, symbolize_findings

DATA = Path(__file__).resolve().parents[1] / "data" / "symbolize"
SOURCE = DATA / "frames.c"
ARCHES = ("x86_64", "arm64", "sparc64")


def marker_line(marker: str) -> int:
    lines = SOURCE.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if f"/* {marker} */" in text)


def tool(arch: str, name: str) -> str:
    path = shutil.which(f"{load_profile(arch).target.triplet}-{name}")
    if path is None:
        pytest.skip(f"no {arch} {name} installed (make setup installs the cross toolchains)")
    return path


@dataclass
class Program:
    arch: str
    dir: Path
    binary: Path
    symbols: dict[str, tuple[int, int]]  # name -> (address, size)
    calls: dict[tuple[str, str], tuple[int, int]]  # (caller, callee) -> (call, next insn)

    def frame(self, func: str, address: int) -> str:
        start, size = self.symbols[func]
        return f"{func}+{address - start:#x}/{size:#x}"


def build(arch: str, tmp: Path, *extra: str) -> Program:
    """frames.c compiled in `tmp` (so the debug info names tmp/frames.c), nm + objdump read."""
    src = tmp / "frames.c"
    shutil.copy(SOURCE, src)
    binary = tmp / f"frames.{arch}"
    subprocess.run([tool(arch, "gcc"), "-g", "-O2", *extra, "-o", binary, src], check=True)
    nm = subprocess.run(
        [tool(arch, "nm"), "-S", binary], check=True, capture_output=True, text=True
    ).stdout
    symbols = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            symbols[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    dis = subprocess.run(
        [tool(arch, "objdump"), "-d", "--no-show-raw-insn", binary],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    calls: dict[tuple[str, str], tuple[int, int]] = {}
    func: str | None = None
    pending: tuple[tuple[str, str], int] | None = None
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <(\S+)>:$", line)
        if head:
            if pending is not None and func in symbols:
                # The call was the function's last instruction: it returns past the end.
                start, size = symbols[func]
                calls[pending[0]] = (pending[1], start + size)
            func, pending = head.group(1), None
            continue
        insn = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if not insn or func is None:
            continue
        addr = int(insn.group(1), 16)
        if pending is not None:
            calls[pending[0]] = (pending[1], addr)
            pending = None
        target = re.search(r"\b(?:call|bl)\s+[0-9a-f]+ <(\w+)>", insn.group(2))
        if target:
            pending = ((func, target.group(1)), addr)
    return Program(arch, tmp, binary, symbols, calls)


def report_for(p: Program) -> str:
    """The trace as the arch's kernel prints it: callee faulted, called by outer (through
    the inlined helper), called by last_call... (a shape, not a real call chain)."""
    callee = p.frame("callee", p.symbols["callee"][0])
    is_call = load_profile(p.arch).target.return_address_is_call
    # Trace entries: a return address (the instruction after the call), or on sparc64 the
    # call instruction itself (%i7), which is what its kernel prints.
    outer_call, outer_next = p.calls[("outer", "callee")]
    last_call, last_next = p.calls[("last_call", "die")]
    outer_at = outer_call if is_call else outer_next
    last_at = last_call if is_call else last_next
    outer, last = p.frame("outer", outer_at), p.frame("last_call", last_at)
    if p.arch == "x86_64":
        return (
            f"BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
            f"RIP: 0010:{callee}\nCall Trace:\n <TASK>\n {outer}\n {last}\n </TASK>\n"
        )
    if p.arch == "arm64":
        return (
            f"Unable to handle kernel NULL pointer dereference at virtual address 0\n"
            f"pc : {callee}\nlr : {outer}\nCall trace:\n {callee}\n {outer}\n {last}\n"
        )
    return (
        f"Unable to handle kernel NULL pointer dereference\nTPC: <{callee}>\nI7: <{outer}>\n"
        f"Call Trace:\n [{outer_at:016x}] {outer}\n [{last_at:016x}] {last}\n"
    )


def decode_program(p: Program, function: str = "outer") -> dict:
    finding = {"title": f"BUG in {function}", "function": function, "report": report_for(p)}
    profile = load_profile(p.arch)
    (out,) = symbolize_findings([finding], p.binary, p.dir, profile)
    return out["symbolized"]


@pytest.mark.parametrize("arch", ARCHES)
def test_frames_decode_to_file_line_with_the_inlined_frame(arch: str, tmp_path: Path) -> None:
    sym = decode_program(build(arch, tmp_path), "outer")
    assert sym["decoded"], sym["notes"]
    by_func: dict[str, list[dict]] = {}
    for f in sym["frames"]:
        by_func.setdefault(f["function"], []).append(f)

    # outer's return address lies in helper, inlined into outer: both levels, innermost first.
    for outer in by_func["outer"]:
        assert (outer["file"], outer["line"]) == ("frames.c", marker_line("OUTER_CALL")), outer
        assert [(i["function"], i["file"], i["line"]) for i in outer["inlined"]] == [
            ("helper", "frames.c", marker_line("HELPER_CALL"))
        ]
        assert "HELPER_CALL" in outer["inlined"][0]["source"]  # the source text is there
        assert "OUTER_CALL" in outer["source"]

    # The noreturn call is last_call's last instruction: its return address is past the end
    # of last_call, and only the one-byte-back lookup names the call's own line.
    (last,) = by_func["last_call"]
    assert (last["function"], last["file"], last["line"]) == (
        "last_call",
        "frames.c",
        marker_line("NORETURN_CALL"),
    )
    address, looked_up = int(last["address"], 16), int(last["looked_up"], 16)
    if load_profile(arch).target.return_address_is_call:
        assert looked_up == address  # sparc64: the trace holds the call itself
    else:
        assert looked_up == address - 1

    # The faulting pc is precise: looked up as is, at callee's entry (its first line or the
    # first statement, as the compiler placed the prologue).
    callee = by_func["callee"][0]
    assert callee["precise"] and callee["looked_up"] == callee["address"]
    assert callee["function"] == "callee" and callee["file"] == "frames.c"
    assert marker_line("CALLEE_BODY") - 2 <= callee["line"] <= marker_line("CALLEE_BODY")

    assert sym["guilty"]["function"] == "outer"
    assert (sym["guilty"]["file"], sym["guilty"]["line"]) == ("frames.c", marker_line("OUTER_CALL"))


def test_return_addresses_without_the_bias_would_name_the_wrong_code(tmp_path: Path) -> None:
    """Why decode.py looks one byte back: the raw return address of the noreturn call is
    outside last_call (x86_64 places the next function there)."""
    p = build("x86_64", tmp_path)
    _, after = p.calls[("last_call", "die")]
    start, size = p.symbols["last_call"]
    if after != start + size:
        pytest.skip("this compiler did not make the noreturn call the last instruction")
    tools = addr2line.find_tools("x86_64-linux-gnu")
    raw = addr2line.symbolize(tools, str(p.binary), [after])[after]
    assert (
        not raw or raw[-1].function != "last_call" or raw[-1].line != marker_line("NORETURN_CALL")
    )


def test_one_symbolizer_process_for_all_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = build("x86_64", tmp_path)
    calls: list[list[int]] = []
    real = addr2line.symbolize

    def counting(tools, binary, addresses):  # type: ignore[no-untyped-def]
        addresses = list(addresses)
        calls.append(addresses)
        return real(tools, binary, addresses)

    monkeypatch.setattr(decode.addr2line, "symbolize", counting)
    findings = [
        {"title": "a", "function": "outer", "report": report_for(p)},
        {"title": "b", "function": "callee", "report": report_for(p)},
    ]
    out = symbolize_findings(findings, p.binary, p.dir, load_profile("x86_64"))
    assert len(calls) == 1 and len(calls[0]) == 6  # 3 frames x 2 findings, one process
    assert all(f["symbolized"]["decoded"] for f in out)


@pytest.mark.parametrize("arch", ARCHES)
def test_no_debug_info_is_found_up_front_and_said_once(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = build(arch, tmp_path)
    subprocess.run([tool(arch, "strip"), "--strip-debug", p.binary], check=True)

    def never(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("a vmlinux without debug info is never handed to addr2line")

    monkeypatch.setattr(decode.addr2line, "symbolize", never)
    sym = decode_program(p)
    assert sym["notes"] == [NO_DEBUG_INFO]
    assert not sym["decoded"]
    # The frames are still there, with their addresses from the symbol table.
    outer = next(f for f in sym["frames"] if f["function"] == "outer")
    assert outer["file"] is None and int(outer["address"], 16) > p.symbols["outer"][0]


def test_a_stripped_binary_has_no_symbols_and_says_so(tmp_path: Path) -> None:
    p = build("x86_64", tmp_path)
    subprocess.run([tool("x86_64", "strip"), p.binary], check=True)
    sym = decode_program(p)
    assert NO_DEBUG_INFO in sym["notes"]
    assert any(n.startswith("no symbol table") for n in sym["notes"]), sym["notes"]
    assert all(f["address"] is None for f in sym["frames"])
    assert sym["guilty"]["function"] == "outer" and sym["guilty"]["file"] is None


def test_a_relinked_vmlinux_is_not_decoded(tmp_path: Path) -> None:
    p = build("x86_64", tmp_path)
    finding = {"title": "t", "function": "outer", "report": report_for(p)}
    (out,) = symbolize_findings(
        [finding], p.binary, p.dir, load_profile("x86_64"), build_id="00" * 20
    )
    assert not out["symbolized"]["decoded"]
    assert "relinked" in out["symbolized"]["notes"][0]


def test_no_vmlinux(tmp_path: Path) -> None:
    finding = {"title": "t", "function": "outer", "report": " outer+0x1/0x2\n"}
    (out,) = symbolize_findings([finding], None, None, load_profile("arm64"))
    assert out["symbolized"]["notes"] == ["frames not decoded: no vmlinux recorded for this kernel"]
    assert out["symbolized"]["frames"][0]["function"] == "outer"
    assert out["title"] == "t"  # the finding itself is untouched


@pytest.mark.integration
def test_a_real_kto_vmlinux_without_debug_info(tmp_path: Path) -> None:
    """kto's own x86_64 kernel (a build-cache hit in `make test`) with its debug info
    stripped, as a kernel built without configs/kconfig/debug-info.config would be."""
    from orchestrator.build.kernel import BuildRequest, build
    from orchestrator.symbolize.elf import read_elf

    built = build(BuildRequest(tree="debian-6.1", arch="x86_64"))
    plain = tmp_path / "vmlinux"
    subprocess.run(["objcopy", "--strip-debug", str(built.dir / "vmlinux"), str(plain)], check=True)
    assert read_elf(built.dir / "vmlinux").has_debug_line and not read_elf(plain).has_debug_line
    from tests.parser.parser_snippets import X86_WARNING

    finding = {"title": "WARNING in __mmdrop", "function": "__mmdrop", "report": X86_WARNING}
    (out,) = symbolize_findings([finding], plain, None, load_profile("x86_64"))
    sym = out["symbolized"]
    assert NO_DEBUG_INFO in sym["notes"]
    # The kernel's own symbol table still places the frames (these functions exist in 6.1).
    frames = {f["function"]: f for f in sym["frames"]}
    assert (
        frames["kthread"]["address"] and int(frames["kthread"]["address"], 16) > 0xFFFFFFFF80000000
    )
