"""symbolize_findings: every frame of a job's findings -> file:line (inlines, source text),
the guilty frame's file, and who maintains it.

The steps, each once per job rather than once per frame:

1. the vmlinux's ELF headers: no `.debug_line` means no file:line anywhere, said once
   ("frames not decoded: vmlinux has no debug info") instead of `??:0` per frame; a build
   id other than the one recorded at build time means the (reused) build directory was
   relinked since, and decoding would name the wrong lines;
2. its function symbols (one nm): `func+0xoff/0xsize` -> link address + offset. A report
   never needs runtime addresses, so KASLR does not matter;
3. one symbolizer process for all addresses (`addr2line -a -f -i`).

Return addresses are looked up one byte back (`addr - 1`) unless the frame is precise (a
faulting pc, the WARN site) or the arch's return addresses are the call itself (sparc64).
A return address is the instruction *after* the call: it can belong to the next source line,
to another inlined block, or past the end of the function when the call was its last
instruction (a call to a noreturn function): `addr - 1` is always inside the call
instruction. syzkaller and gdb do the same; the kernel's decode_stacktrace.sh (6.1) does
not, and misattributes such frames.

Whatever fails here is a note in the finding, never an exception into the job: a verdict
does not depend on symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.arch import ArchProfile
from orchestrator.errors import KtoError
from orchestrator.parser.frames import canonical
from orchestrator.symbolize import addr2line, elf
from orchestrator.symbolize.maintainers import find_maintainers
from orchestrator.symbolize.report_frames import ReportFrame, parse_frames
from orchestrator.symbolize.source import SourceLines, relative_path
from orchestrator.symbolize.symbols import SymbolTable, load_symbols

NO_DEBUG_INFO = "frames not decoded: vmlinux has no debug info"


@dataclass(frozen=True)
class DebugInputs:
    """What decoding needs besides the arch: where the kernel's vmlinux and source are."""

    vmlinux: Path | None
    source_dir: Path | None = None
    build_dir: Path | None = None
    commit: str | None = None  # the commit the kernel was built from (source text)
    trusted_commit: str | None = None  # the tree's base, before the series (get_maintainer)
    build_id: str | None = None  # the vmlinux's build id when the kernel was built


def _trusted_base(record: dict[str, Any]) -> str | None:
    """The base commit whose get_maintainer.pl decoding may run: only a trusted tree's
    (build/trust.py). A record from before trust was recorded has no `trust`: its trees
    were kto's named ones."""
    trust = record.get("trust")
    if isinstance(trust, dict):
        # Records of the first trust version said it only in the reason (build/trust.py).
        why = str(trust.get("reason") or "")
        if not trust.get("tree_trusted", "not declared trusted" not in why):
            return None
    return (record.get("inputs") or {}).get("base_commit")


def inputs_from_build_record(record: dict[str, Any] | None) -> DebugInputs:
    """From build.json: its `debug` section (kto builds since issue 16) and inputs."""
    record = record or {}
    debug = record.get("debug") or {}
    inputs = record.get("inputs") or {}

    def path(value: Any) -> Path | None:
        return Path(value) if value else None

    return DebugInputs(
        vmlinux=path(debug.get("vmlinux")),
        source_dir=path(debug.get("source_dir") or inputs.get("worktree")),
        build_dir=path(debug.get("build_dir")),
        commit=inputs.get("head_commit"),
        trusted_commit=_trusted_base(record),
        build_id=debug.get("build_id"),
    )


def _problem(inputs: DebugInputs) -> tuple[str | None, elf.ElfInfo | None]:
    """Why nothing can be decoded (None: it can), and the vmlinux's ELF facts."""
    vmlinux = inputs.vmlinux
    if vmlinux is None:
        return "frames not decoded: no vmlinux recorded for this kernel", None
    if not vmlinux.is_file():
        return f"frames not decoded: {vmlinux} is gone", None
    try:
        info = elf.read_elf(vmlinux)
    except (OSError, elf.NotElf) as exc:
        return f"frames not decoded: {exc}", None
    if inputs.build_id and info.build_id and info.build_id != inputs.build_id:
        return (
            f"frames not decoded: {vmlinux} was relinked since this kernel was built "
            f"(build id {info.build_id[:12]}, the kernel's {inputs.build_id[:12]})",
            info,
        )
    if not info.has_debug_line:
        return NO_DEBUG_INFO, info
    return None, info


def _address(frame: ReportFrame, symbols: SymbolTable | None) -> int | None:
    if frame.module:
        return None  # in a module's own object, not in vmlinux
    if frame.function and symbols is not None:
        sym = symbols.lookup(frame.function, frame.size)
        if sym is not None and frame.offset is not None:
            return sym.address + frame.offset
    if frame.function is None:
        return frame.address
    return None


def _lookup(frame: ReportFrame, address: int, profile: ArchProfile) -> int:
    if frame.precise or profile.target.return_address_is_call or address == 0:
        return address
    return address - 1


class _Decoder:
    def __init__(self, inputs: DebugInputs, source: SourceLines) -> None:
        self.prefixes = [p for p in (inputs.source_dir, inputs.build_dir) if p is not None]
        self.prefixes += [p.resolve() for p in self.prefixes]
        self.source = source

    def location(self, loc: addr2line.Location) -> dict[str, Any]:
        file = relative_path(loc.file, self.prefixes) if loc.file else None
        return {
            "function": loc.function,
            "file": file,
            "line": loc.line,
            "source": self.source.line(file, loc.line),
        }


def _frame_dict(
    frame: ReportFrame,
    address: int | None,
    lookup: int | None,
    locations: list[dict[str, Any]],
) -> dict[str, Any]:
    own = locations[-1] if locations else {}
    return {
        "report_line": frame.line,
        "text": frame.text,
        "kind": frame.kind,
        "function": frame.function,
        "offset": None if frame.offset is None else f"{frame.offset:#x}",
        "size": None if frame.size is None else f"{frame.size:#x}",
        "module": frame.module,
        "address": None if address is None else f"{address:#x}",
        "looked_up": None if lookup is None else f"{lookup:#x}",
        "precise": frame.precise,
        "reliable": frame.reliable,
        # The frame's own function (the outermost level); what was inlined into it at this
        # address comes first in `inlined`, innermost first, as addr2line -i prints it.
        "file": own.get("file"),
        "line": own.get("line"),
        "source": own.get("source"),
        "inlined": locations[:-1],
    }


def _base_name(function: str | None) -> str | None:
    """`foo.constprop.0` -> `foo` (the parser's titles use the plain name)."""
    return canonical(function.split(".", 1)[0]) if function else None


def guilty_frame(function: str | None, frames: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first reliable frame of the finding's guilty function, decoded or not.

    The parser names a frame by its canonical name (`foo` for `foo.isra.0` or `__x64_sys_foo`)
    and, for stalls and hangs, by the choke point a frame contains (`smp_call_function` for
    `smp_call_function_many`): an exact match first, then the first frame containing it.
    """
    if not function or function == "corrupted":
        return None
    reliable = [f for f in frames if f["reliable"] and f["function"]]
    for f in reliable:
        if function in (f["function"], _base_name(f["function"])):
            return f
    return next((f for f in reliable if function in f["function"]), None)


def symbolize_findings(
    findings: list[dict[str, Any]],
    vmlinux: Path | None,
    source_dir: Path | None,
    arch_profile: ArchProfile,
    *,
    build_dir: Path | None = None,
    commit: str | None = None,
    trusted_commit: str | None = None,
    build_id: str | None = None,
    maintainers: bool = True,
) -> list[dict[str, Any]]:
    """The findings (Finding.to_dict() dicts) with a `symbolized` section each."""
    inputs = DebugInputs(vmlinux, source_dir, build_dir, commit, trusted_commit, build_id)
    return symbolize_with(findings, inputs, arch_profile, maintainers=maintainers)


def symbolize_with(
    findings: list[dict[str, Any]],
    inputs: DebugInputs,
    profile: ArchProfile,
    *,
    maintainers: bool = True,
) -> list[dict[str, Any]]:
    parsed = [parse_frames(str(f.get("report") or "")) for f in findings]
    notes: list[str] = []
    problem, info = _problem(inputs)
    tools: addr2line.Tools | None = None
    symbols: SymbolTable | None = None
    if info is not None and ".symtab" not in info.section_names:
        notes.append(f"no symbol table: {info.path} is stripped (func+off cannot be placed)")
    elif info is not None:
        try:
            tools = addr2line.find_tools(profile.target.triplet)
            symbols = load_symbols(info.path, tools.nm)
        except KtoError as exc:
            notes.append(f"no symbol table: {exc.message.splitlines()[0]}")
    if problem:
        notes.append(problem)

    addresses = [[_address(fr, symbols) for fr in frames] for frames in parsed]
    lookups = [
        [
            None if a is None else _lookup(fr, a, profile)
            for fr, a in zip(frames, addrs, strict=True)
        ]
        for frames, addrs in zip(parsed, addresses, strict=True)
    ]
    decoded: dict[int, list[addr2line.Location]] = {}
    if problem is None and tools is not None and inputs.vmlinux is not None:
        try:
            decoded = addr2line.symbolize(
                tools, str(inputs.vmlinux), (a for row in lookups for a in row if a is not None)
            )
        except KtoError as exc:
            notes.append(f"frames not decoded: {exc.message.splitlines()[0]}")

    source = SourceLines(inputs.source_dir, inputs.commit)
    decoder = _Decoder(inputs, source)
    people_of: dict[str, dict[str, Any]] = {}
    out = []
    for finding, frames, addrs, looks in zip(findings, parsed, addresses, lookups, strict=True):
        fdicts = [
            _frame_dict(
                fr,
                a,
                lk,
                [decoder.location(loc) for loc in decoded.get(lk, [])] if lk is not None else [],
            )
            for fr, a, lk in zip(frames, addrs, looks, strict=True)
        ]
        own_notes = list(notes)
        modules = sorted({fr.module for fr in frames if fr.module})
        if modules:
            own_notes.append(f"frames in modules not decoded: {', '.join(modules)}")
        guilty = guilty_frame(finding.get("function"), fdicts)
        maint = None
        if guilty is not None and guilty["file"] and maintainers:
            file = guilty["file"]
            if file not in people_of:
                people_of[file] = find_maintainers(
                    inputs.source_dir, file, inputs.trusted_commit
                ).to_dict()
            maint = people_of[file]
        elif finding.get("function") not in (None, "corrupted") and guilty is None:
            own_notes.append(f"the guilty function {finding['function']} is not in the frames")
        out.append(
            {
                **finding,
                "symbolized": {
                    "decoded": bool(decoded) and any(f["file"] for f in fdicts),
                    "vmlinux": str(inputs.vmlinux) if inputs.vmlinux else None,
                    "build_id": info.build_id if info else None,
                    "tool": tools.name if tools else None,
                    "notes": own_notes,
                    "frames": fdicts,
                    "guilty": None
                    if guilty is None
                    else {
                        k: guilty[k] for k in ("function", "file", "line", "source", "report_line")
                    },
                    "maintainers": maint,
                },
            }
        )
    return out
