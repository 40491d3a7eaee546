"""What kto needs to know about a vmlinux before decoding it, read from its ELF headers.

Only the file header, the section headers and the notes: no symbol or DWARF parsing (the
toolchain's nm and addr2line do that). Reading the section table answers "has this kernel
debug info?" once per vmlinux, up front, instead of noticing `??:0` on every frame; the
GNU build id tells whether the vmlinux in a (reused) build directory is still the one a
kernel was built with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

SHT_NOTE = 7
SHF_ALLOC = 0x2
NT_GNU_BUILD_ID = 3
# Sections addr2line needs for file:line (.debug_info alone names functions, not lines).
DEBUG_LINE_SECTIONS = (".debug_line", ".zdebug_line")


class NotElf(ValueError):
    """The file is not an ELF object (or is truncated)."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    is64: bool
    little_endian: bool
    machine: int  # e_machine: EM_X86_64 62, EM_AARCH64 183, EM_SPARCV9 43
    sections: tuple[Section, ...] = field(repr=False)
    build_id: str | None = None

    @property
    def section_names(self) -> set[str]:
        return {s.name for s in self.sections}

    @property
    def has_debug_line(self) -> bool:
        return any(s.name in DEBUG_LINE_SECTIONS and s.size > 0 for s in self.sections)

    def in_loaded_section(self, address: int) -> bool:
        return any(
            s.flags & SHF_ALLOC and s.addr <= address < s.addr + s.size for s in self.sections
        )


def read_elf(path: Path) -> ElfInfo:
    """Header, section table and build id of an ELF file; NotElf if it is none."""
    with path.open("rb") as fh:
        ident = fh.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise NotElf(f"{path}: not an ELF file")
        is64 = ident[4] == 2
        little = ident[5] == 1
        end = "<" if little else ">"
        # The rest of the ELF header; the two classes differ only in the address width.
        hdr_fmt, sh_fmt = ("HHIQQQIHHHHHH", "IIQQQQIIQQ") if is64 else ("HHIIIIIHHHHHH", "I" * 10)
        fields = struct.unpack(end + hdr_fmt, fh.read(struct.calcsize(end + hdr_fmt)))
        machine, shoff = fields[1], fields[5]
        shentsize, shnum, shstrndx = fields[10], fields[11], fields[12]
        sh_fmt = end + sh_fmt
        if shoff == 0 or shnum == 0:
            return ElfInfo(path, is64, little, machine, ())
        fh.seek(shoff)
        table = fh.read(shentsize * shnum)
        if len(table) < shentsize * shnum:
            raise NotElf(f"{path}: truncated section table")
        size = struct.calcsize(sh_fmt)
        raw = [
            struct.unpack(sh_fmt, table[i * shentsize : i * shentsize + size]) for i in range(shnum)
        ]
        strtab = raw[shstrndx] if shstrndx < shnum else None
        names = b""
        if strtab is not None:
            fh.seek(strtab[4])
            names = fh.read(strtab[5])
        sections = tuple(Section(_cstr(names, r[0]), r[1], r[2], r[3], r[4], r[5]) for r in raw)
        build_id = None
        for s in sections:
            if s.type == SHT_NOTE and build_id is None:
                fh.seek(s.offset)
                build_id = _build_id(fh.read(s.size), end)
    return ElfInfo(path, is64, little, machine, sections, build_id)


def _cstr(blob: bytes, offset: int) -> str:
    stop = blob.find(b"\0", offset)
    return blob[offset : stop if stop >= 0 else len(blob)].decode(errors="replace")


def _build_id(notes: bytes, end: str) -> str | None:
    """The NT_GNU_BUILD_ID descriptor of a note section, as hex (the kernel's `.notes` holds
    several notes: Xen, Linux ones; only the GNU one is the build id)."""
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack(end + "III", notes[pos : pos + 12])
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
        if ntype == NT_GNU_BUILD_ID and name == b"GNU":
            return notes[name_end : name_end + descsz].hex()
        if desc_end <= pos:
            break
        pos = desc_end
    return None


def build_id(path: Path) -> str | None:
    """The GNU build id of an ELF file; None when it has none or is not ELF."""
    try:
        return read_elf(path).build_id
    except (OSError, NotElf, struct.error):
        return None
