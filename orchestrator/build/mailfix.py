"""Recover a patch from a mail that is not a clean mbox.

Two shapes reach kto in practice (fixtures in tests/data/mails/): a web-archive copy (subject
on the first line, `From:`/`Date:` lines, leading whitespace of diff lines stripped) and a lore mbox
whose newlines were lost, with the patch quoted (`> `) in a reply and quoted-printable soft
breaks. Both lose whitespace, so what comes out is marked `mangled`: it is applied with
`--ignore-whitespace` and a failure says the copy was mangled and where to get the original.
"""

from __future__ import annotations

import quopri
import re
from dataclasses import dataclass

_SUBJECT = re.compile(
    r"((?:Re:\s*)?\[PATCH[^\]]*\][^\n]*?)(?=\s+(?:From|Date|In-Reply-To|Cc|To|Message-I[Dd]|Content-[A-Za-z-]+|Mime-Version):|\n|$)"
)
_HEADER_IN_LINE = r"(?:^|\s){name}:\s*(.*?)(?=\s+[A-Z][A-Za-z-]+:\s|$)"


@dataclass
class Recovered:
    message: str  # an RFC 2822 message git am can read
    subject: str
    how: str  # what was wrong with the input


def _header(text: str, name: str) -> str:
    m = re.search(_HEADER_IN_LINE.format(name=re.escape(name)), text, re.M)
    return m.group(1).strip() if m else ""


def _unflatten_quoted(text: str) -> str:
    """A newline-lost, `> `-quoted, quoted-printable body back into lines."""
    text = re.sub(r"=\s(?=\S)", "", text)  # QP soft line breaks whose newline became a space
    text = quopri.decodestring(text.encode("utf-8", errors="replace")).decode(
        "utf-8", errors="replace"
    )
    # Each quoted line started with '>' after a (lost) newline.
    parts = re.split(r"(?:^|\s)>(?= |$|\s)", text)
    return "\n".join(p[1:] if p.startswith(" ") else p for p in parts)


def _repair_hunks(lines: list[str]) -> list[str]:
    """Give context lines back the leading space that the archive stripped."""
    out: list[str] = []
    in_hunk = False
    for ln in lines:
        if ln.startswith("diff --git "):
            in_hunk = False
        elif ln.startswith("@@"):
            in_hunk = True
        elif in_hunk:
            if ln.startswith("--") and ln.strip() in ("--", "-- "):
                in_hunk = False  # signature separator
            elif not ln or ln[0] not in "+- \\":
                ln = " " + ln
        out.append(ln)
    return out


def recover_patch_mail(text: str) -> Recovered | None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "diff --git" not in text:
        return None
    flat = text.count("\n") < 5 and len(text) > 500
    how = "web-archive copy (leading whitespace lost)"
    if flat:
        how = "mail with lost newlines"
        head, _, body = text.partition(" > ")
        if re.search(r"(?:^|\s)>\s*diff --git ", text):
            how += ", patch quoted in a reply"
            body = _unflatten_quoted(" > " + body)
        else:
            body = re.sub(r"\s(?=diff --git |--- a/|\+\+\+ b/|@@ )", "\n", body)
    else:
        head, body = text[:2000], text
    m = _SUBJECT.search(head if flat else text[:2000])
    subject = m.group(1).strip() if m else "recovered patch"
    subject = re.sub(r"^Re:\s*", "", subject, flags=re.I)
    author = _header(head, "From") or "unknown <unknown@localhost>"
    if "<" not in author and "@" not in author:
        author = f"{author} <unknown@localhost>"
    date = _header(head, "Date")
    msgid = ""
    mid = re.search(r"(?:In-Reply-To|Message-I[dD]):\s*<([^>\s]+)>", head)
    if mid:
        msgid = mid.group(1)
    lines = body.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.startswith("diff --git ")), 0)
    # Commit message: what stands before the first `---` separator (or the diff).
    msg_lines = lines[:start]
    if not flat:
        msg_lines = [ln for ln in msg_lines if not re.match(r"(From|Date|\[PATCH)", ln)]
    sep = next((i for i, ln in enumerate(msg_lines) if ln.strip() == "---"), len(msg_lines))
    description = "\n".join(msg_lines[:sep]).strip()
    diff = "\n".join(_repair_hunks(lines[start:])).rstrip() + "\n"
    bare = re.sub(r"^\[[^\]]*\]\s*", "", subject)
    headers = [
        "From kto-recovered Mon Sep 17 00:00:00 2001",
        f"From: {author}",
        f"Subject: [PATCH] {bare}",
    ]
    if date:
        headers.append(f"Date: {date}")
    if msgid:
        headers.append(f"Message-Id: <{msgid}>")
    message = "\n".join(headers) + "\n\n" + (description or subject) + "\n---\n" + diff
    return Recovered(message, subject, how)
