"""Console line normalisation: host prefixes, mail quoting, timestamps, caller ids.

A console line may arrive as
  ``[  12.345] `` host-side prefix written by kto's console recorder (3 decimals),
  ``<4>``      syslog level,
  ``[   12.345678]`` kernel timestamp, optionally followed by ``[ T123]``/``[ C1]``
               (CONFIG_PRINTK_CALLER), which is the line's *context*,
  ``> > ``     mail quoting, possibly with the newlines lost so that a whole
               quoted log sits on one physical line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RAW_CHARS = 1 << 16  # a physical line (mails with lost newlines can be long)
MAX_LINE_CHARS = 4096  # a kernel line as stored in reports

# kto's recorder stamps host time with millisecond precision; the kernel always
# prints microseconds, so the number of decimals tells them apart.
_HOST_PREFIX = re.compile(r"\[ *\d+\.\d{1,3}\] ")
# Kernel console prefix; group 1 is the caller id ("T123"/"C1") when printed.
_CONSOLE_PREFIX = re.compile(
    r"(?:\*\* \d+ printk messages dropped \*\* )?(?:.* login: )?(?:<\d+>)?"
    r"\[ *\d+\.\d+\](?: ?\[ *([CT]\d+)\])? "
)
_SYSLOG_LEVEL = re.compile(r"<\d{1,2}>")
_QUESTIONABLE = re.compile(r"(?:\[<[0-9a-f]+>\])? \? ")
_QUOTE = re.compile(r"\s*(?:>\s?)+")
_QUOTED_KERNEL = re.compile(r"\s*(?:>\s?)+(?=\[ *\d+\.\d+\])")
# A quoted kernel line glued to the previous one: " > [  32.56] ..."
_GLUED_QUOTED = re.compile(r"\s(?:>\s?)+(?=\[ *\d+\.\d{6}\])")
_INNER_QUOTE = re.compile(r"\s+(?:>\s?)+(?=\S)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

CONSOLE = "console"  # context of timestamped lines without a caller id


@dataclass(slots=True)
class ConsoleLine:
    number: int  # 1-based line number in the log (physical line)
    text: str  # the kernel line: host prefix, quoting and control bytes removed
    context: str  # "" (no timestamp), CONSOLE, or the caller id ("T123", "C1")
    stripped: str  # text after the console prefix (when there is one)
    questionable: bool  # an unreliable "? func+0x..." frame


def clean(raw: str) -> str:
    """Drop the line end, NULs and other control bytes; cap the length."""
    if raw.endswith("\n"):
        raw = raw[:-1]
    if "\r" in raw:
        raw = raw.rstrip("\r").replace("\r", "")
    if len(raw) > MAX_RAW_CHARS:
        raw = raw[:MAX_RAW_CHARS]
    if _CONTROL.search(raw):
        raw = _CONTROL.sub("", raw.replace("\t", " "))
    return raw


def strip_host_prefix(text: str) -> str:
    m = _HOST_PREFIX.match(text)
    return text[m.end() :] if m else text


class QuoteState:
    """Undo mail quoting; remembers whether we are inside a quoted kernel log."""

    __slots__ = ("in_quoted_log",)

    def __init__(self) -> None:
        self.in_quoted_log = False

    def unquote(self, text: str) -> list[str]:
        """Return the kernel lines carried by one physical line (usually one)."""
        if ">" not in text:
            self.in_quoted_log = False
            return [text]
        pieces = _GLUED_QUOTED.split(text)
        if len(pieces) > 2:
            # Newlines were lost: each " > [ ts]" started a line; inner " > "
            # marks were line breaks inside a wrapped kernel line.
            self.in_quoted_log = True
            out = [_INNER_QUOTE.sub(" ", p).strip() for p in pieces[1:]]
            head = _QUOTE.sub(" ", pieces[0]).strip()
            return [head, *out] if head else out
        m = _QUOTED_KERNEL.match(text)
        if m:
            self.in_quoted_log = True
            return [text[m.end() :]]
        if self.in_quoted_log:
            m = _QUOTE.match(text)
            if m and m.end() > 0:
                return [text[m.end() :]]
        self.in_quoted_log = False
        return [text]


def split_context(number: int, text: str) -> ConsoleLine:
    """Split a kernel line into context and payload, the way report extraction needs."""
    m = _CONSOLE_PREFIX.match(text)
    if m is None:
        stripped = text
        if text.startswith("<"):
            lm = _SYSLOG_LEVEL.match(text)
            if lm:
                stripped = text[lm.end() :]
        return ConsoleLine(number, text, "", stripped, False)
    context = m.group(1) or CONSOLE
    stripped = text[m.end() :]
    questionable = False
    if stripped.startswith("? "):  # whitespace collapsed, e.g. by a mail client
        stripped = stripped[1:]
        questionable = True
    elif " ? " in stripped and "<EOI>" not in stripped:
        qm = _QUESTIONABLE.search(stripped)
        if qm:
            stripped = stripped[stripped.index(" ? ") + 2 :]
            questionable = True
    elif stripped.endswith(" (unreliable)"):  # powerpc
        stripped = stripped[:-13]
        questionable = True
    return ConsoleLine(number, text, context, stripped, questionable)
