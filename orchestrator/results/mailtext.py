"""The text rules every mail kto writes follows (reply mails, the bot's culprit reports,
digests, fix-test replies): prose wrapped at 76 columns, log lines verbatim after one space
(never wrapped, and never a line `git am`/b4 would take for a patch: `diff -`, `Index: `,
`---` + space), aligned `key: value` fields, and a body that goes as 7bit/8bit unless a line
is longer than SMTP's 998 octets (then quoted-printable, which the reader's client undoes).
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from orchestrator import __version__

WIDTH = 76
SMTP_LINE = 998


@dataclass(frozen=True)
class Identity:
    """The user's own name and address (`git config user.name/user.email`)."""

    name: str | None = None
    email: str | None = None

    @property
    def address(self) -> str | None:
        if not self.email:
            return None
        return email.utils.formataddr((self.name or "", self.email))

    @property
    def domain(self) -> str:
        return (self.email or "kto@localhost").rpartition("@")[2]


def wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False) or [""]


def field(key: str, value: Any) -> list[str]:
    head = f"{key + ':':<11}"
    return textwrap.wrap(
        str(value),
        WIDTH,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_long_words=False,
        break_on_hyphens=False,
    )


def verbatim(line: str) -> str:
    """A log or command line as it was, one space in (safe from patch detection)."""
    return " " + line if line else ""


def slug(title: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return s[:50].rstrip("-") or "finding"


def msgid(value: str | None) -> str | None:
    """A Message-Id as a header carries it: in angle brackets."""
    return f"<{value.strip().strip('<>')}>" if value else None


def new_message(identity: Identity, key: str) -> EmailMessage:
    """A message with From, Message-ID (stable for `key`: writing it again gives the same
    id, so a resent file threads the same way), Date and User-Agent."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = identity.address or "kto <kto@localhost>"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<kto.{digest}@{identity.domain}>"
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["User-Agent"] = f"kto {__version__}"
    return msg


def set_body(msg: EmailMessage, text: str) -> None:
    longest = max(len(line.encode()) for line in text.split("\n"))
    cte = "quoted-printable" if longest > SMTP_LINE else "7bit" if text.isascii() else "8bit"
    msg.set_content(text, cte=cte)


def signature() -> list[str]:
    return ["", "-- ", f"kto {__version__}: this report was written by kto, not sent by it."]


# What git mailinfo (git am, b4) takes for the start of a patch, or mbox for a new message.
_PATCH_START = re.compile(r"^(diff -|Index: |---(\s*$| \S)|From )")


def safe_lines(lines: Iterable[str]) -> list[str]:
    """Every line as it is, but one that git mailinfo would take for the start of a patch
    (`diff -`, `Index: `, `--- ` + name, a lone `---`) or mbox for a new message (`From `)
    moves one space in. A title, a subject or a fragment could be any of them."""
    return [" " + line if _PATCH_START.match(line) else line for line in lines]


def finish(lines: list[str]) -> str:
    """A body's lines, signed, made safe from patch detection, as one text."""
    return "\n".join(safe_lines([*lines, *signature()])) + "\n"
