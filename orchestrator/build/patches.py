"""Patch series: from an mbox (lore thread, picked with b4), a directory of .patch files,
or a git range; applied with `git am -3` on a fresh branch.

A series that does not apply is a verdict about the series (PatchApplyError naming the patch,
its n/m, the file), never a traceback, and the tree is left clean.
"""

from __future__ import annotations

import email.header
import email.utils
import hashlib
import mailbox
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.build import mailfix
from orchestrator.build.trees import Tree
from orchestrator.errors import PatchApplyError, UserError
from orchestrator.git import Git
from orchestrator.proc import require_tool, run

WORK_BRANCH = "kto/work"
MBOX_FROM = "From kto Mon Sep 17 00:00:00 2001\n"  # an mbox's separator line, for git am
_NM = re.compile(r"\[[^\]]*?\b(\d+)/(\d+)\s*\]")
_DIFF_FILES = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


@dataclass
class Patch:
    subject: str
    index: int  # n of n/m (1-based), from the subject when it says so
    total: int
    message_id: str | None
    author: str
    text: str  # one RFC 2822 message, as git am wants it
    mangled: str = ""  # why the copy is not pristine (recovered from a broken mail), if so

    @property
    def nm(self) -> str:
        return f"{self.index}/{self.total}"

    def mbox(self) -> str:
        """The patch as one mbox message, as `git am` reads a file."""
        return self.text if self.text.startswith("From ") else MBOX_FROM + self.text

    def diff(self) -> str:
        pos = self.text.find("\ndiff --git ")
        return self.text[pos + 1 :] if pos >= 0 else ""

    @property
    def files(self) -> list[str]:
        """The files the patch touches (both names of a rename), in diff order: a reply
        about a finding threads under the patch that touched the guilty file."""
        out: list[str] = []
        for m in _DIFF_FILES.finditer(self.diff()):
            for name in m.groups():
                if name not in out:
                    out.append(name)
        return out


@dataclass
class Series:
    source: str  # what the user gave
    kind: str  # "none" | "mbox" | "dir" | "git-range"
    patches: list[Patch] = field(default_factory=list)

    @property
    def hash(self) -> str:
        """Stable over the diffs (not the mail headers): the same code gives the same key."""
        if not self.patches:
            return "none"
        h = hashlib.sha256()
        for p in self.patches:
            h.update(_normalise_diff(p.diff()).encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "hash": self.hash,
            "patches": [
                {**{k: v for k, v in asdict(p).items() if k != "text"}, "files": p.files}
                for p in self.patches
            ],
        }


def _normalise_diff(diff: str) -> str:
    # `index abc..def` lines differ between format-patch runs of the same change.
    return "\n".join(ln for ln in diff.splitlines() if not ln.startswith("index "))


def _decode(value: str | None) -> str:
    if not value:
        return ""
    parts = email.header.decode_header(value)
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(chunk.decode(charset or "utf-8", errors="replace"))
        else:
            out.append(chunk)
    return " ".join("".join(out).split())


def _patch_from_message(
    msg: mailbox.mboxMessage | email.message.Message, pos: int, n: int
) -> Patch:
    subject = _decode(msg.get("Subject"))
    m = _NM.search(subject)
    index, total = (int(m.group(1)), int(m.group(2))) if m else (pos, n)
    msgid = (msg.get("Message-Id") or msg.get("Message-ID") or "").strip().strip("<>") or None
    author = _decode(msg.get("From"))
    return Patch(subject, index, total, msgid, author, msg.as_string())


def _read_mbox(path: Path) -> list[Patch]:
    box = mailbox.mbox(str(path), create=False)
    msgs = [m for m in box if "diff --git" in _payload_text(m)]
    return [_patch_from_message(m, i + 1, len(msgs)) for i, m in enumerate(msgs)]


def _payload_text(msg: email.message.Message) -> str:
    if msg.is_multipart():
        return "".join(_payload_text(p) for p in msg.get_payload())  # type: ignore[arg-type]
    payload = msg.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(errors="replace")
    return str(msg.get_payload())


def _b4_pick(mbox: Path, workdir: Path) -> list[Patch]:
    """Let b4 pick the newest complete revision from a thread, in n/m order."""
    b4 = require_tool("b4")
    res = run(
        [b4, "--offline-mode", "am", "-m", mbox, "-o", workdir, "-n", "series", "--no-cover"],
        check=False,
        env={"XDG_CACHE_HOME": str(workdir / "cache"), "XDG_DATA_HOME": str(workdir / "data")},
    )
    out = workdir / "series.mbx"
    if res.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        return []
    return _read_mbox(out)


def _is_mbox(data: bytes) -> bool:
    return data.startswith(b"From ") and data.count(b"\n") > 3


def load_mail(path: Path, workdir: Path) -> list[Patch]:
    data = path.read_bytes()
    if _is_mbox(data):
        patches = _b4_pick(path, workdir)
        if patches:
            return patches
        patches = _read_mbox(path)
        if patches:
            return patches
    # Not a clean mbox: a web-archive copy or a mail whose newlines were lost.
    recovered = mailfix.recover_patch_mail(data.decode("utf-8", errors="replace"))
    if recovered is None:
        raise UserError(
            f"{path}: no patch found (no `diff --git` in any message)",
            hint="give an mbox of the series (`b4 am -o- MSGID > series.mbx`), a directory "
            "of .patch files, or a git range A..B",
        )
    msg = email.message_from_string(recovered.message)
    patch = _patch_from_message(msg, 1, 1)
    patch.text = recovered.message
    patch.mangled = recovered.how
    return [patch]


def load_dir(path: Path) -> list[Patch]:
    series_file = path / "series"
    if series_file.exists():
        names = [
            ln.split("#", 1)[0].split()[0]
            for ln in series_file.read_text().splitlines()
            if ln.split("#", 1)[0].strip()
        ]
        files = [path / n for n in names]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise UserError(f"{series_file}: lists missing patch file(s): {', '.join(missing)}")
    else:
        files = sorted(f for f in path.iterdir() if f.suffix in (".patch", ".diff", ".mbx", ".eml"))
    if not files:
        raise UserError(f"{path}: no .patch files and no `series` file in this directory")
    patches: list[Patch] = []
    for f in files:
        text = f.read_text(errors="replace")
        if not text.startswith("From "):
            text = MBOX_FROM + text
        found = _read_mbox_text(text)
        if not found and series_file.exists():
            raise UserError(f"{f}: listed in {series_file} but not a patch (no `diff --git`)")
        patches.extend(found)  # without a series file, a cover letter is skipped
    if not patches:
        raise UserError(f"{path}: none of the files holds a patch (no `diff --git`)")
    n = len(patches)
    for i, p in enumerate(patches, 1):
        if not _NM.search(p.subject):
            p.index, p.total = i, n
    return patches


def _read_mbox_text(text: str) -> list[Patch]:
    with tempfile.NamedTemporaryFile("w", suffix=".mbox", delete=False) as tmp:
        tmp.write(text)
    try:
        return _read_mbox(Path(tmp.name))
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def load_git_range(rng: str, tree: Tree) -> list[Patch]:
    res = tree.git("format-patch", "--stdout", "--no-signature", rng, check=False)
    if res.returncode != 0:
        raise UserError(
            f"git range {rng!r} is not valid in {tree.repo}: {res.stderr.strip()}",
            hint="give A..B with commits that exist in the tree given by --tree",
        )
    if not res.stdout.strip():
        raise UserError(f"git range {rng!r} is empty in {tree.repo}")
    return _read_mbox_text(res.stdout)


def load_series(spec: str | None, tree: Tree) -> Series:
    if not spec:
        return Series("", "none")
    path = Path(spec).expanduser()
    with tempfile.TemporaryDirectory(prefix="kto-series-") as tmp:
        if path.is_dir():
            return Series(str(path.resolve()), "dir", load_dir(path))
        if path.is_file():
            return Series(str(path.resolve()), "mbox", load_mail(path, Path(tmp)))
    if ".." in spec:
        return Series(spec, "git-range", load_git_range(spec, tree))
    raise UserError(
        f"--patches {spec!r}: no such file or directory, and not a git range A..B",
        hint="give an mbox file, a directory of .patch files, or a git range",
    )


_FAILED_FILE = re.compile(r"error: (?:patch failed: )?([^\s:]+)(?::\d+)?: ?(.*)")


def _explain_am_failure(output: str) -> tuple[str | None, str]:
    """(file, reason) from `git am` output."""
    file = None
    reason = ""
    for line in output.splitlines():
        line = line.strip()
        m = re.match(r"error: patch failed: (\S+?):\d+", line)
        if m:
            file = file or m.group(1)
            continue
        m = re.match(r"error: sha1 information is lacking or useless \((\S+)\)", line)
        if m:  # no 3-way fallback possible: the blob the patch names is not in this tree
            file = file or m.group(1)
            continue
        m = re.match(
            r"error: (\S+): (does not exist in index|patch does not apply|already exists.*)", line
        )
        if m:
            file = file or m.group(1)
            reason = reason or m.group(2)
            continue
        m = re.match(r"CONFLICT \(content\): Merge conflict in (\S+)", line)
        if m:
            file = file or m.group(1)
            reason = "merge conflict (git am -3 could not resolve it)"
            continue
        m = re.match(
            r"(error|fatal): (corrupt patch at line \d+|.*patch fragment without header.*"
            r"|No changes.*|.*Patch is empty.*)",
            line,
        )
        if m:
            reason = reason or m.group(2)
    return file, reason or "patch does not apply"


def apply_series(tree: Tree, series: Series, workdir: Path) -> str:
    """Check out a fresh branch at the tree's base and `git am -3` the series; return HEAD.

    The caller holds the tree lock. On failure the tree is reset to the base commit.
    """
    git = tree.git
    _reset(git, tree.base_commit)
    if not series.patches:
        return tree.base_commit
    workdir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, p in enumerate(series.patches, 1):
        f = workdir / f"{i:04d}.patch"
        f.write_text(p.mbox())
        files.append(str(f))
    mangled = [p for p in series.patches if p.mangled]
    opts = ["--ignore-whitespace"] if mangled else []
    res = git("am", "-3", "--keep-cr", *opts, *files, check=False)
    if res.returncode == 0:
        return git.out("rev-parse", "HEAD")
    output = res.stdout + "\n" + res.stderr
    applied = len(re.findall(r"^Applying: ", res.stdout, re.M))
    failed = series.patches[max(applied - 1, 0)] if applied else series.patches[0]
    file, reason = _explain_am_failure(output)
    _reset(git, tree.base_commit)
    where = f" in {file}" if file else ""
    mid = f" <{failed.message_id}>" if failed.message_id else ""
    if failed.mangled:
        fetch = f"`b4 am {failed.message_id}`" if failed.message_id else "lore"
        reason += (
            f" (this copy was recovered from a {failed.mangled}; "
            f"get the original patch with {fetch})"
        )
    raise PatchApplyError(
        f'patch {failed.nm} "{bare_subject(failed.subject)}"{mid} does not apply to '
        f"{tree.name} ({tree.describe}){where}: {reason}",
        hint=f"rebase the series onto {tree.name}, or choose the tree it was written for "
        f"with --tree/--ref; `git am` said:\n    " + "\n    ".join(_am_said(output)),
    )


# git am's advice on continuing by hand does not apply: kto has already aborted the series.
_AM_ADVICE = (
    "When you have resolved",
    "If you prefer to skip",
    "To restore the original",
    "hint: Use 'git am --show-current-patch",
)


def _am_said(output: str) -> list[str]:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith(_AM_ADVICE)][-8:]


def bare_subject(subject: str) -> str:
    """The subject without its [PATCH n/m] prefix (or a Re: before it)."""
    return re.sub(r"^\s*(re:\s*)?\[[^\]]*\]\s*", "", subject, flags=re.I)


def _reset(git: Git, base: str) -> None:
    # Leave no half-applied state from a previous (possibly killed) run.
    rebase_apply = git.repo / git.out("rev-parse", "--git-path", "rebase-apply")
    if rebase_apply.exists():
        git("am", "--abort", check=False)
        shutil.rmtree(rebase_apply, ignore_errors=True)
    git("checkout", "-q", "-f", "-B", WORK_BRANCH, base)
    git("clean", "-q", "-fd")
